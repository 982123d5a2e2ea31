package test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// tollgate run with xds.maxGroups: 2 serves the configured group and one more that a node
// names; a node naming a third has its stream ended with RESOURCE_EXHAUSTED, which the
// admin port counts and the log says, and the groups served go on being served.
func TestGatewayGroupsBeyondMaxGroupsAreRefused(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := write(t, dir, "tollgate.yaml", fmt.Sprintf(`dataDir: %s
etcd: {embeddedClientAddr: %s, embeddedPeerAddr: %s}
authz: {listen: %s}
xds: {listen: %s, groups: [default], maxGroups: 2}
admin: {listen: %s}
log: {level: info, format: json}
`, filepath.Join(dir, "data"), p.etcd, p.peer, p.authz, p.xds, p.admin))
	srv := startTollgate(t, "run", "--config", cfg, "-f", "../examples/coffeebar/coffeebar.yaml")
	srv.waitUp()

	env := connectEnvoy(t, t.Context(), p.xds, "envoy-default")
	env.waitFor("the default group's routes", 30*time.Second, func(c config) bool { return slices.Contains(c.Routes, "coffeebar/v1 GET /menu") })

	conn, err := grpc.NewClient(p.xds, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	clusters := func(group string) (*discoveryv3.DiscoveryResponse, error) {
		st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(t.Context())
		if err != nil {
			return nil, err
		}
		if err := st.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "envoy-" + group, Cluster: group, UserAgentName: "envoy"},
			TypeUrl: resourcev3.ClusterType}); err != nil {
			return nil, err
		}
		return st.Recv()
	}
	if r, err := clusters("edge"); err != nil || len(r.Resources) == 0 {
		t.Fatalf("the second group: %v, %v", r, err)
	}
	if _, err := clusters("third"); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "xds.maxGroups") {
		t.Fatalf("the third group's stream ended with %v, want RESOURCE_EXHAUSTED naming xds.maxGroups", err)
	}
	testutil.Eventually(t, "the admin port counts the groups", func() bool {
		m := get(t, "http://"+p.admin+"/metrics")
		return strings.Contains(m, "tollgate_xds_groups 2") && strings.Contains(m, "tollgate_xds_groups_refused_total 1")
	})
	if len(srv.log("beyond xds.maxGroups")) != 1 {
		t.Errorf("the refusal was logged %d times, want once:\n%s", len(srv.log("beyond xds.maxGroups")), strings.Join(srv.log("maxGroups"), "\n"))
	}
	// The groups served still are: a new node of one is served.
	if r, err := clusters("edge"); err != nil || len(r.Resources) == 0 {
		t.Errorf("a new node of a served group: %v, %v", r, err)
	}
	if !env.complete() {
		t.Error("the default group's Envoy lost its configuration")
	}
}
