package xds

import (
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A refused version is logged once for its group, whichever of the group's Envoys refuses
// it; what the hooks remember to tell that stays one entry per group and type however many
// versions are refused.
func TestRefusalsAreLoggedOnceAndRememberedBounded(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	s := New(Config{}, zap.New(core), nil)
	h := s.hooks
	for v := range 1000 {
		for i, id := range []string{"envoy-1", "envoy-2", "envoy-3"} {
			h.Refused(uint64(i+1), &corev3.Node{Id: id, Cluster: "edge"}, resourcev3.RouteType, "v"+strconv.Itoa(v), "bad route")
		}
	}
	h.Refused(4, &corev3.Node{Id: "other", Cluster: "internal"}, resourcev3.RouteType, "v1", "bad route")
	if n := logs.Len(); n != 1001 {
		t.Errorf("%d refusals logged, want one per version and group (1001)", n)
	}
	if n := len(h.nacked); n != 2 {
		t.Errorf("the hooks remember %d refusals, want one per group and type (2)", n)
	}
}

// The connected clients are listed with their last answer to each type, and counted per
// group and per version ACKed or NACKed; a stream that ends leaves both.
func TestConnectedClientsAndTheirAnswers(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(Config{Groups: []string{"edge"}}, zap.NewNop(), reg)
	h := s.hooks
	envoy := func(id string) *corev3.Node { return &corev3.Node{Id: id, Cluster: "edge"} }
	for i, id := range []string{"envoy-1", "envoy-2", "envoy-3"} {
		if err := h.Node(uint64(i+1), envoy(id)); err != nil {
			t.Fatal(err)
		}
		h.Acked(uint64(i+1), envoy(id), resourcev3.ListenerType, "v1")
	}
	h.Node(4, &corev3.Node{Id: "grpc-1", Cluster: "edge", UserAgentName: "gRPC Go"})
	h.Acked(2, envoy("envoy-2"), resourcev3.ListenerType, "v2")
	h.Refused(3, envoy("envoy-3"), resourcev3.ListenerType, "v2", "bad listener")
	h.Node(5, nil) // a stream that names no node

	cs := s.Clients()
	if len(cs) != 5 || cs[0].Group != "default" || cs[1].Node != "envoy-1" || cs[4].Kind != kindGRPC {
		t.Fatalf("clients %+v", cs)
	}
	if a := cs[3].Answers; len(a) != 1 || a[0].Type != "Listener" || a[0].Acked || a[0].Version != "v2" || a[0].Error != "bad listener" {
		t.Errorf("envoy-3's answers %+v", a)
	}
	want := `
# HELP tollgate_xds_client_versions Connected clients by the version of each type they last answered, and whether they ACKed or NACKed it.
# TYPE tollgate_xds_client_versions gauge
tollgate_xds_client_versions{group="edge",state="acked",type="Listener",version="v1"} 1
tollgate_xds_client_versions{group="edge",state="acked",type="Listener",version="v2"} 1
tollgate_xds_client_versions{group="edge",state="nacked",type="Listener",version="v2"} 1
# HELP tollgate_xds_clients Clients (Envoys, proxyless gRPC) connected, by gateway group: distinct node ids.
# TYPE tollgate_xds_clients gauge
tollgate_xds_clients{group="default"} 1
tollgate_xds_clients{group="edge"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tollgate_xds_clients", "tollgate_xds_client_versions"); err != nil {
		t.Error(err)
	}
	for i := range 5 {
		h.Ended(uint64(i + 1))
	}
	if n := len(s.Clients()); n != 0 {
		t.Errorf("%d clients after every stream ended", n)
	}
	if n, err := testutil.GatherAndCount(reg, "tollgate_xds_clients", "tollgate_xds_client_versions"); err != nil || n != 0 {
		t.Errorf("%d series after every stream ended (%v)", n, err)
	}
}
