package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	} `json:"panels"`
}

// dashboardMetrics reads examples/grafana/tollgate.json: it must parse, every panel but the
// rows must query the templated Prometheus data source, and it returns the metric families
// its queries name (histograms by their family name).
func dashboardMetrics(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("../examples/grafana/tollgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 20 {
		t.Fatalf("dashboard %q (uid %q) has %d panels", d.Title, d.UID, len(d.Panels))
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] || !vars["api"] {
		t.Errorf("the dashboard lacks its datasource or api variable: %v", vars)
	}
	family := regexp.MustCompile(`\btollgate_[a-z0-9_]+`)
	used := map[string][]string{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: no query on the templated data source", p.Title)
		}
		if p.GridPos.W < 1 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H < 1 {
			t.Errorf("panel %q: grid position %+v", p.Title, p.GridPos)
		}
		for _, tg := range p.Targets {
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q: unbalanced query %s", p.Title, tg.Expr)
			}
			for _, m := range family.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if strings.HasSuffix(m, suffix) && strings.Contains(m, "seconds") {
						m = strings.TrimSuffix(m, suffix)
					}
				}
				used[m] = append(used[m], p.Title)
			}
		}
	}
	return used
}

// The Grafana dashboard parses, and every metric its queries name is exposed by a running
// Tollgate doing what the panels show: `tollgate run` with Redis throttling and analytics,
// the example APIs, Checks allowed, denied, throttled and validated, an Envoy that ACKs,
// another that NACKs, and Envoy's access logs.
func TestGrafanaDashboardQueriesWhatTollgateExposes(t *testing.T) {
	used := dashboardMetrics(t)
	doc := readmeMetrics(t)
	for m, panels := range used {
		if _, ok := doc[m]; !ok {
			t.Errorf("panels %v query %s, which the README's metrics table does not list", panels, m)
		}
	}

	dir := t.TempDir()
	p := newPorts(t)
	redis := testutil.StartRedis(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	idp := testutil.NewIdP(t, "https://idp.dash")
	appendConfig(t, cfg, fmt.Sprintf(`analytics: {enabled: true}
throttling: {backend: redis, redis: {addrs: [%s]}}
issuers: [{name: partner, issuer: %q, audiences: [coffeebar], jwksURL: %q, algorithms: [RS256]}]
`, redis.Addr, idp.Issuer, idp.JWKSURL()))
	ex := func(f string) string { a, _ := filepath.Abs("../examples/" + f); return a }
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", ex("coffeebar/coffeebar.yaml"), "-f", ex("coffeebar/orders-per-user.yaml"),
		"-f", ex("bookshelf/bookshelf.yaml"))
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")

	// Checks: allowed twice (the second from the token cache), denied, throttled, validated.
	tok := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "read:menu write:order").stdout)
	bearer := "Authorization: Bearer " + tok
	for range 2 {
		tollgate(t, "check", "--config", cfg, "--method", "GET", "--path", "/coffeebar/v1/menu", "-H", bearer)
	}
	tollgate(t, "check", "--config", cfg, "--method", "POST", "--path", "/coffeebar/v1/menu", "-H", bearer)
	tollgate(t, "check", "--config", cfg, "--method", "POST", "--path", "/bookshelf/v1/books", "-H", "content-type: application/json", "-d", `{"title": 7}`)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := connectEnvoy(t, ctx, p.xds, "envoy-dash")
	e.waitFor("the listeners", 20*time.Second, func(c config) bool { return len(c.Listeners) > 0 })
	nackingEnvoy(t, ctx, p.xds, "envoy-dash-nack", "bad listener")
	sendAccessLogs(t, ctx, p.authz)

	waitMetricLine(t, p.admin, `^tollgate_xds_client_versions\{.*state="nacked"`)
	waitMetricLine(t, p.admin, `^tollgate_requests_total\{`)
	waitMetricLine(t, p.admin, `^tollgate_jwks_age_seconds\{issuer="partner"\} [0-9]`)
	exposed := map[string]bool{}
	for name := range scrape(t, p.admin) {
		exposed[name] = true
	}
	var missing []string
	for m := range used {
		if !exposed[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard queries metrics a running Tollgate does not expose: %v", missing)
	}
}

// sendAccessLogs sends one Envoy-shaped message: a request the enforcer allowed, one no
// route matched, one with no healthy upstream.
func sendAccessLogs(t *testing.T, ctx context.Context, authz string) {
	t.Helper()
	conn, err := grpc.NewClient(authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := alsv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entry := func(route string, code uint32, flags *accesslogdata.ResponseFlags) *accesslogdata.HTTPAccessLogEntry {
		c := &accesslogdata.AccessLogCommon{RouteName: route, UpstreamCluster: "coffeebar", ResponseFlags: flags,
			TimeToLastDownstreamTxByte: durationpb.New(12 * time.Millisecond),
			TimeToFirstUpstreamTxByte:  durationpb.New(time.Millisecond), TimeToLastUpstreamRxByte: durationpb.New(10 * time.Millisecond),
			Metadata: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.ext_authz": {Fields: map[string]*structpb.Value{
				"client_id": structpb.NewStringValue("dash-app")}}}}}
		return &accesslogdata.HTTPAccessLogEntry{CommonProperties: c,
			Request:  &accesslogdata.HTTPRequestProperties{RequestHeadersBytes: 300},
			Response: &accesslogdata.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(code), ResponseBodyBytes: 900}}
	}
	if err := st.Send(&alsv3.StreamAccessLogsMessage{
		Identifier: &alsv3.StreamAccessLogsMessage_Identifier{Node: &corev3.Node{Id: "envoy-dash"}, LogName: "tollgate"},
		LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: []*accesslogdata.HTTPAccessLogEntry{
			entry("coffeebar/v1 GET /menu", 200, nil),
			entry("", 404, &accesslogdata.ResponseFlags{NoRouteFound: true}),
			entry("coffeebar/v1 GET /menu", 503, &accesslogdata.ResponseFlags{NoHealthyUpstream: true}),
		}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
}
