package catalog_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/store"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// A broken definition written to etcd never replaces the last good one.
func TestBrokenDefinitionKeepsLastGood(t *testing.T) {
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	reg := prometheus.NewRegistry()
	r := catalog.New(zap.NewNop(), reg)
	go st.Follow(t.Context(), store.APIs, r, nil)

	good, err := os.ReadFile(filepath.Join("..", "..", "examples", "coffeebar", "coffeebar.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutAPIs(t.Context(), []store.Doc{{Name: "coffeebar", Version: "v1", Data: good}}); err != nil {
		t.Fatal(err)
	}
	tu.Eventually(t, "coffeebar loaded", func() bool { return r.Load().API("coffeebar/v1") != nil })

	broken := []string{
		"openapi: 3.0.3\ninfo: [\n", // bad YAML
		strings.Replace(string(good), "/order/{orderId}", "/order/{orderId", 1), // bad template
		strings.Replace(string(good), "title: Coffeebar", "title: Other", 1),    // name does not match its key
	}
	for i, b := range broken {
		if _, err := st.Put(t.Context(), "apis/coffeebar/v1", b); err != nil {
			t.Fatal(err)
		}
		tu.Eventually(t, "rejection counted", func() bool {
			return rejected(t, reg) == float64(i+1)
		})
		a := r.Load().API("coffeebar/v1")
		if a == nil || len(a.Operations) != 5 {
			t.Fatalf("broken definition %d replaced the good one: %+v", i, a)
		}
	}
	// Deleting the key removes the API.
	st.Client().Delete(t.Context(), st.APIKey("coffeebar", "v1"))
	tu.Eventually(t, "removal", func() bool { return r.Load().API("coffeebar/v1") == nil })
}

func rejected(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "tollgate_api_definitions_rejected_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}
