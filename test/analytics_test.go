package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	grpcalsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/analytics"
	tgconfig "github.com/tollgate-gw/tollgate/internal/config"
)

const countedAPI = `openapi: 3.0.3
info: {title: Shop, version: v1}
servers: [{url: "http://127.0.0.1:8099/shop"}]
security: [{}]
paths:
  /items:
    get: {responses: {"200": {description: listed}}}
    post: {responses: {"201": {description: added}}}
  /items/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get: {responses: {"200": {description: one}}}
`

// logExpect is what the metrics must say after a stream, counted on the side.
type logExpect struct {
	requests, reqBytes, respBytes map[string]float64 // by api|operation|application|class|cluster
	errors                        map[string]float64 // by api|operation|flag
	durations, upstreams          map[string][]float64
	taken, intermediate           int
}

// Analytics as users run it: with `analytics.enabled` the listeners Envoy gets over ADS
// send their access logs to the enforcer's port, and a stream of 10,000 Envoy-shaped
// messages sent there (the first naming the node, as Envoy's do) becomes metrics equal to
// what was sent — counts, bytes and latency buckets per API, operation, application,
// class and cluster — and one JSON line per finished request.
func TestAccessLogsBecomeMetrics(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	lines := filepath.Join(dir, "requests.jsonl")
	appendConfig(t, cfg, fmt.Sprintf("analytics: {enabled: true, file: %s, applications: 5, flushInterval: 2s}\n", lines))
	shop := write(t, dir, "shop.yaml", countedAPI)
	srv := startTollgate(t, "run", "--config", cfg, "-f", shop)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := connectEnvoy(t, ctx, p.xds, "analytics")
	e.waitFor("the listeners", 20*time.Second, func(c config) bool { return len(c.Listeners) > 0 })
	checkAnalyticsLogger(t, e)

	conn, err := grpc.NewClient(p.authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := alsv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(27, 10000))
	want := logExpect{requests: map[string]float64{}, reqBytes: map[string]float64{}, respBytes: map[string]float64{},
		errors: map[string]float64{}, durations: map[string][]float64{}, upstreams: map[string][]float64{}}
	apps := map[string]bool{}
	for i := range 10000 {
		var es []*accesslogdata.HTTPAccessLogEntry
		for range 1 + r.IntN(3) {
			es = append(es, generatedEntry(r, &want, apps))
		}
		m := &alsv3.StreamAccessLogsMessage{LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{
			HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: es}}}
		if i == 0 {
			m.Identifier = &alsv3.StreamAccessLogsMessage_Identifier{Node: &corev3.Node{Id: "envoy-a", Cluster: "default"}, LogName: "tollgate"}
		}
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	t.Logf("sent 10,000 messages: %d finished requests, %d intermediate entries", want.taken, want.intermediate)

	fams := scrape(t, p.admin)
	compareCounters(t, fams, "tollgate_requests_total", []string{"api", "operation", "application", "class", "cluster"}, want.requests)
	compareCounters(t, fams, "tollgate_request_bytes_total", []string{"api", "operation", "application", "class", "cluster"}, want.reqBytes)
	compareCounters(t, fams, "tollgate_response_bytes_total", []string{"api", "operation", "application", "class", "cluster"}, want.respBytes)
	compareCounters(t, fams, "tollgate_request_errors_total", []string{"api", "operation", "flag"}, want.errors)
	compareHistograms(t, fams, "tollgate_request_duration_seconds", want.durations)
	compareHistograms(t, fams, "tollgate_upstream_duration_seconds", want.upstreams)
	compareCounters(t, fams, "tollgate_access_log_entries_total", []string{"result"},
		map[string]float64{"taken": float64(want.taken), "intermediate": float64(want.intermediate)})

	// A message that is not protobuf is refused, logged once and counted; the service
	// stays up for the next stream.
	bad, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs", grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.SendMsg([]byte{0x0a, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	bad.CloseSend()
	var resp []byte
	if err := bad.RecvMsg(&resp); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a malformed message: %v, want InvalidArgument", err)
	}
	again, err := alsv3.NewAccessLogServiceClient(conn).StreamAccessLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.CloseAndRecv(); err != nil {
		t.Errorf("a stream after the malformed one: %v", err)
	}
	compareCounters(t, scrape(t, p.admin), "tollgate_access_log_entries_total", []string{"result"},
		map[string]float64{"taken": float64(want.taken), "intermediate": float64(want.intermediate), "malformed": 1})

	// The JSON lines: one per finished request, flushed within a second.
	var got []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want.taken && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		got = readLines(t, lines)
	}
	if len(got) != want.taken {
		t.Fatalf("%d JSON lines, want %d", len(got), want.taken)
	}
	first := got[0]
	if first["envoy"] != "envoy-a" || first["time"] == "" || first["request_id"] != "req-0" {
		t.Errorf("first line %v", first)
	}
	for _, l := range got {
		if strings.Contains(fmt.Sprint(l["path"]), "?") {
			t.Fatalf("a query string reached the lines: %v", l)
		}
	}
}

func appendConfig(t *testing.T, file, text string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// checkAnalyticsLogger: each HTTP listener's connection manager has the http_grpc logger,
// to the enforcer's cluster, flushing at the configured interval.
func checkAnalyticsLogger(t *testing.T, e *envoy) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, l := range e.listeners {
		var hcm hcmv3.HttpConnectionManager
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, al := range hcm.AccessLog {
			if al.Name != "envoy.access_loggers.http_grpc" {
				continue
			}
			var c grpcalsv3.HttpGrpcAccessLogConfig
			if err := al.GetTypedConfig().UnmarshalTo(&c); err != nil {
				t.Fatal(err)
			}
			cc := c.GetCommonConfig()
			found = cc.GetGrpcService().GetEnvoyGrpc().GetClusterName() == "tollgate_authz" &&
				cc.GetTransportApiVersion() == corev3.ApiVersion_V3 && cc.GetBufferFlushInterval().AsDuration() == 2*time.Second
		}
		if !found {
			t.Errorf("listener %s has no http_grpc access logger to tollgate_authz: %v", name, hcm.AccessLog)
		}
	}
}

// generatedEntry makes one entry of the kinds Envoy sends — decided by the enforcer (its
// metadata), denied (the route's name only), no route, an API the catalogue lacks, a
// periodic entry — and counts what the metrics must then say.
func generatedEntry(r *rand.Rand, want *logExpect, apps map[string]bool) *accesslogdata.HTTPAccessLogEntry {
	ops := []string{"GET /items", "POST /items", "GET /items/{id}"}
	op := ops[r.IntN(len(ops))]
	app := fmt.Sprintf("app-%d", r.IntN(8))
	code := []uint32{200, 200, 200, 201, 401, 404, 429, 500, 503, 0}[r.IntN(10)]
	total := time.Duration(r.IntN(3000000)) * time.Microsecond
	c := &accesslogdata.AccessLogCommon{
		StartTime: timestamppb.New(time.Now()), TimeToLastDownstreamTxByte: durationpb.New(total),
		UpstreamCluster: "shop_backend", RouteName: "shop/v1 " + op,
		DownstreamRemoteAddress: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "10.0.0.1"}}},
	}
	upstream := -1.0
	if code != 0 && r.IntN(4) > 0 {
		first := time.Duration(r.IntN(2000)) * time.Microsecond
		last := first + time.Duration(r.IntN(2000000))*time.Microsecond
		c.TimeToFirstUpstreamTxByte, c.TimeToLastUpstreamRxByte = durationpb.New(first), durationpb.New(last)
		upstream = (last - first).Seconds()
	}
	api, label := "shop/v1", op
	switch k := r.IntN(10); {
	case k < 6: // decided: the enforcer's metadata
		c.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.ext_authz": {Fields: map[string]*structpb.Value{
			"api": structpb.NewStringValue("shop/v1"), "operation": structpb.NewStringValue(op),
			"client_id": structpb.NewStringValue(app), "subject": structpb.NewStringValue("user-" + app)}}}}
	case k < 8: // denied before metadata: the route's name
		app = ""
		c.ResponseFlags = &accesslogdata.ResponseFlags{UnauthorizedDetails: &accesslogdata.ResponseFlags_Unauthorized{}}
	case k < 9: // no route
		app, api, label, code = "", "", "", 404
		c.RouteName, c.UpstreamCluster = "", ""
		c.ResponseFlags = &accesslogdata.ResponseFlags{NoRouteFound: true}
	default: // an API the catalogue does not have
		app, api, label = "", "", ""
		c.RouteName = "gone/v9 GET /x"
		c.ResponseFlags = &accesslogdata.ResponseFlags{NoHealthyUpstream: true}
	}
	if r.IntN(20) == 0 {
		c.AccessLogType = accesslogdata.AccessLogType_DownstreamPeriodic
	}
	reqBytes, respBytes := uint64(r.IntN(5000)), uint64(r.IntN(50000))
	e := &accesslogdata.HTTPAccessLogEntry{CommonProperties: c,
		Request: &accesslogdata.HTTPRequestProperties{RequestMethod: corev3.RequestMethod_GET, Path: "/shop/items?key=k",
			RequestHeadersBytes: reqBytes / 2, RequestBodyBytes: reqBytes - reqBytes/2, RequestId: fmt.Sprintf("req-%d", want.taken)},
		Response: &accesslogdata.HTTPResponseProperties{ResponseHeadersBytes: respBytes / 3, ResponseBodyBytes: respBytes - respBytes/3}}
	if code != 0 {
		e.Response.ResponseCode = wrapperspb.UInt32(code)
	}
	if c.AccessLogType != accesslogdata.AccessLogType_NotSet {
		want.intermediate++
		return e
	}
	want.taken++
	if app != "" && !apps[app] {
		if len(apps) < 5 {
			apps[app] = true
		} else {
			app = "other"
		}
	}
	class := "0"
	if code != 0 {
		class = fmt.Sprintf("%dxx", code/100)
	}
	key := strings.Join([]string{api, label, app, class, c.UpstreamCluster}, "|")
	want.requests[key]++
	want.reqBytes[key] += float64(reqBytes)
	want.respBytes[key] += float64(respBytes)
	h := strings.Join([]string{api, label, class}, "|")
	want.durations[h] = append(want.durations[h], total.Seconds())
	if upstream >= 0 {
		want.upstreams[h] = append(want.upstreams[h], upstream)
	}
	switch {
	case c.ResponseFlags.GetNoRouteFound():
		want.errors[strings.Join([]string{api, label, "NR"}, "|")]++
	case c.ResponseFlags.GetNoHealthyUpstream():
		want.errors[strings.Join([]string{api, label, "UH"}, "|")]++
	case c.ResponseFlags.GetUnauthorizedDetails() != nil:
		want.errors[strings.Join([]string{api, label, "UAEX"}, "|")]++
	}
	return e
}

func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(get(t, "http://"+admin+"/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func labelKey(m *dto.Metric, names []string) string {
	ls := map[string]string{}
	for _, l := range m.GetLabel() {
		ls[l.GetName()] = l.GetValue()
	}
	var parts []string
	for _, n := range names {
		parts = append(parts, ls[n])
	}
	return strings.Join(parts, "|")
}

// compareCounters: the family has exactly the series of want, with its values.
func compareCounters(t *testing.T, fams map[string]*dto.MetricFamily, name string, names []string, want map[string]float64) {
	t.Helper()
	got := map[string]float64{}
	for _, m := range fams[name].GetMetric() {
		got[labelKey(m, names)] = m.GetCounter().GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s{%s} = %v, want %v", name, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && v != 0 {
			t.Errorf("%s{%s} = %v, not sent", name, k, v)
		}
	}
}

// compareHistograms: per api|operation|class, the count, the sum and every bucket hold
// what was observed.
func compareHistograms(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string][]float64) {
	t.Helper()
	got := map[string]*dto.Histogram{}
	for _, m := range fams[name].GetMetric() {
		if m.GetHistogram().GetSampleCount() > 0 { // a series is made with its counters, observed or not
			got[labelKey(m, []string{"api", "operation", "class"})] = m.GetHistogram()
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d series, want %d", name, len(got), len(want))
	}
	for k, obs := range want {
		h := got[k]
		if h == nil {
			t.Errorf("%s{%s}: missing", name, k)
			continue
		}
		sum := 0.0
		for _, o := range obs {
			sum += o
		}
		if h.GetSampleCount() != uint64(len(obs)) || math.Abs(h.GetSampleSum()-sum) > 1e-6*max(1, sum) {
			t.Errorf("%s{%s}: count %d sum %v, want %d and %v", name, k, h.GetSampleCount(), h.GetSampleSum(), len(obs), sum)
		}
		if len(h.GetBucket()) < 10 {
			t.Errorf("%s{%s}: %d buckets", name, k, len(h.GetBucket()))
		}
		for _, b := range h.GetBucket() {
			n := uint64(0)
			for _, o := range obs {
				if o <= b.GetUpperBound() {
					n++
				}
			}
			if b.GetCumulativeCount() != n {
				t.Errorf("%s{%s} le=%v: %d, want %d", name, k, b.GetUpperBound(), b.GetCumulativeCount(), n)
			}
		}
	}
}

func readLines(t *testing.T, file string) []map[string]any {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %q: %v", file, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// The README's Observability section: its configuration snippets load as they are, and
// its table of JSON line fields is what the lines carry, in their order.
func TestREADMEObservability(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Observability\n")
	if !ok {
		t.Fatal("no Observability section in the README")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) < 2 {
		t.Fatalf("%d yaml blocks", len(blocks))
	}
	dir := t.TempDir()
	for i, m := range blocks {
		f := write(t, dir, fmt.Sprintf("snippet-%d.yaml", i), m[1])
		if _, err := tgconfig.Load(f); err != nil {
			t.Errorf("the README's snippet %d does not load: %v\n%s", i, err, m[1])
		}
	}
	var fields []string
	row := regexp.MustCompile("(?m)^\\| (`[a-z_]+`(?:, `[a-z_]+`)*) \\| ")
	_, table, _ := strings.Cut(section, "| field | from |")
	table, _, _ = strings.Cut(table, "\n\n")
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		for _, f := range strings.Split(m[1], ", ") {
			fields = append(fields, strings.Trim(f, "`"))
		}
	}
	if strings.Join(fields, " ") != strings.Join(analytics.LineFields, " ") {
		t.Errorf("the README's line fields\n%v\nare not the lines'\n%v", fields, analytics.LineFields)
	}
}
