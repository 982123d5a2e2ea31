package xds

import (
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// A configuration that fails validation is not published, and the last good snapshot
// stays in force.
func TestInvalidConfigurationKeepsLastGood(t *testing.T) {
	s := New(Config{Build: build.Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080}, Groups: []string{"edge"}}, zap.NewNop(), prometheus.NewRegistry())
	a := &apimodel.API{Name: "a", Version: "v1", BasePath: "/a",
		Production: apimodel.Endpoints{URLs: []apimodel.Endpoint{{URL: "http://10.0.0.1:80"}}},
		Operations: []apimodel.Operation{{Method: "GET", Path: "/x"}}}
	if ps := a.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	s.SetCatalog(apimodel.NewCatalog([]*apimodel.API{a}))
	s.publish(t.Context())
	good, v1, err := s.Published("edge", resourcev3.ListenerType)
	if err != nil || len(good) != 1 {
		t.Fatalf("first snapshot: %v %v", good, err)
	}
	// An HTTPS listener whose certificate secret does not exist: Envoy would refuse it.
	s.cfg.Build.HTTPSPort = 8443
	s.SetCatalog(apimodel.NewCatalog([]*apimodel.API{a}))
	s.publish(t.Context())
	now, v2, _ := s.Published("edge", resourcev3.ListenerType)
	if v2 != v1 || len(now) != 1 {
		t.Fatalf("an invalid configuration replaced the good one: %d listeners, version %s → %s", len(now), v1, v2)
	}
	if v := s.table("edge", kindEnvoy, resourcev3.ListenerType).Version(); v != v1 {
		t.Fatalf("the cache serves version %s, want %s", v, v1)
	}
	if len(s.table("edge", kindEnvoy, resourcev3.ClusterType).Resources()) == 0 {
		t.Fatal("no clusters served")
	}
}
