package test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// nackingEnvoy opens an ADS stream as node id, takes the first listener response and
// refuses it with msg; it returns the version refused.
func nackingEnvoy(t *testing.T, ctx context.Context, addr, id, msg string) string {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: id, Cluster: "default", UserAgentName: "envoy"}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce,
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: msg}}); err != nil {
		t.Fatal(err)
	}
	return resp.VersionInfo
}

// waitMetricLine waits up to 15 s for /metrics to have a line matching re.
func waitMetricLine(t *testing.T, admin, re string) {
	t.Helper()
	r := regexp.MustCompile("(?m)" + re)
	var last string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if last = get(t, "http://"+admin+"/metrics"); r.MatchString(last) {
			return
		}
	}
	var xds []string
	for _, l := range strings.Split(last, "\n") {
		if strings.HasPrefix(l, "tollgate_xds_") {
			xds = append(xds, l)
		}
	}
	t.Fatalf("no metric line %s within 15 s; xds lines:\n%s", re, strings.Join(xds, "\n"))
}

// The Envoys connected are counted per group with the version of each type they ACKed or
// NACKed, and each group's snapshot has an age — read from a running `tollgate run` after
// real ADS streams ACK and NACK.
func TestConnectedEnvoysAreCountedWithTheirAnswers(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	shop := write(t, dir, "shop.yaml", countedAPI)
	srv := startTollgate(t, "run", "--config", cfg, "-f", shop)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := connectEnvoy(t, ctx, p.xds, "envoy-acks")
	e.waitFor("the listeners", 20*time.Second, func(c config) bool { return len(c.Listeners) > 0 })
	refused := nackingEnvoy(t, ctx, p.xds, "envoy-nacks", "listener 'http': unknown filter")

	waitMetricLine(t, p.admin, `^tollgate_xds_clients\{group="default"\} 2$`)
	waitMetricLine(t, p.admin, fmt.Sprintf(`^tollgate_xds_client_versions\{group="default",state="nacked",type="Listener",version="%s"\} 1$`, regexp.QuoteMeta(refused)))
	waitMetricLine(t, p.admin, fmt.Sprintf(`^tollgate_xds_client_versions\{group="default",state="acked",type="Listener",version="%s"\} 1$`, regexp.QuoteMeta(refused)))
	waitMetricLine(t, p.admin, `^tollgate_xds_client_versions\{group="default",state="acked",type="Cluster",version="[^"]+"\} 1$`)
	waitMetricLine(t, p.admin, `^tollgate_xds_snapshot_age_seconds\{group="default"\} [0-9.e+-]+$`)
}
