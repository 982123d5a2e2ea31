package xds

import (
	"strconv"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
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
		for _, id := range []string{"envoy-1", "envoy-2", "envoy-3"} {
			h.Refused(&corev3.Node{Id: id, Cluster: "edge"}, resourcev3.RouteType, "v"+strconv.Itoa(v), "bad route")
		}
	}
	h.Refused(&corev3.Node{Id: "other", Cluster: "internal"}, resourcev3.RouteType, "v1", "bad route")
	if n := logs.Len(); n != 1001 {
		t.Errorf("%d refusals logged, want one per version and group (1001)", n)
	}
	if n := len(h.nacked); n != 2 {
		t.Errorf("the hooks remember %d refusals, want one per group and type (2)", n)
	}
}
