package build

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/definitions"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/xds/validate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenOptions is the optional `golden:` document of a case: how the gateway is set up.
type goldenOptions struct {
	Golden struct {
		Group              string            `json:"group"`
		HTTPSPort          uint32            `json:"httpsPort"`
		ClientCertificates string            `json:"clientCertificates"`
		FaultFormat        string            `json:"faultFormat"`
		Discovery          map[string]string `json:"discovery"`
		Secrets            []string          `json:"secrets"`
		RouteScopes        bool              `json:"routeScopes"`
		Unscoped           string            `json:"unscoped"` // the API expected to keep one route table
		Analytics          bool              `json:"analytics"`
		Tracing            string            `json:"tracing"` // the collector, host:port
	} `json:"golden"`
}

// goldenCase is one input: testdata/<name>.yaml, or an example's definition.
type goldenCase struct{ name, file string }

func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	var out []goldenCase
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, f := range inputs {
		base := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if !strings.Contains(base, ".") {
			out = append(out, goldenCase{base, f})
		}
	}
	examples, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*", "*.yaml"))
	for _, f := range examples {
		if d := filepath.Base(filepath.Dir(f)); d == "compose" || d == "kubernetes" {
			continue // the Compose quick start and the Kubernetes manifests: no API
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !ratelimit.IsPolicy(data) && !strings.HasSuffix(f, ".cases.yaml") { // decision tests are not definitions
			out = append(out, goldenCase{"example-" + strings.TrimSuffix(filepath.Base(f), ".yaml"), f})
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d golden cases found", len(out))
	}
	return out
}

// What Envoy receives, per construct: testdata/<case>.yaml in (definitions, multi-document,
// and an optional `golden:` document of gateway settings), <case>.{listeners,routes,
// clusters,endpoints}.yaml out. Every output passes validate.Set (each message, inside every
// Any, and the references between them). `go test ./xds/build -update` rewrites them; the
// diff is what changes for Envoys.
func TestGolden(t *testing.T) {
	want := map[string]bool{}
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out := buildGolden(t, c.file)
			for kind, rs := range out {
				path := filepath.Join("testdata", c.name+"."+kind+".yaml")
				want[path] = true
				got := goldenYAML(t, rs)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				old, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./xds/build -update)", err)
				}
				if string(old) != string(got) {
					t.Errorf("%s differs from what the build makes now:\n%s\n(run go test ./xds/build -update and review the diff)", path, firstDiff(string(old), string(got)))
				}
			}
		})
	}
	// No golden file outlives its case.
	outputs, _ := filepath.Glob(filepath.Join("testdata", "*.*.yaml"))
	for _, f := range outputs {
		if !want[f] {
			if *update {
				os.Remove(f)
				continue
			}
			t.Errorf("%s has no case", f)
		}
	}
}

// buildGolden builds a case the way the control plane does for one gateway group.
func buildGolden(t *testing.T, file string) map[string][]types.Resource {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080}
	var g goldenOptions
	var apis []*apimodel.API
	for _, doc := range definitions.Split(file, data) {
		var top map[string]any
		if yaml.Unmarshal(doc.Data, &top) == nil && top["golden"] != nil {
			if err := yaml.UnmarshalStrict(doc.Data, &g); err != nil {
				t.Fatalf("%s: %v", doc.Name, err)
			}
			continue
		}
		res, err := openapi.Parse(doc.Name, doc.Data)
		if err != nil {
			t.Fatal(err)
		}
		apis = append(apis, res.API)
	}
	group := g.Golden.Group
	if group == "" {
		group = "default"
	}
	var served []*apimodel.API
	for _, a := range apis {
		if ForGroup(a, group) {
			served = append(served, a)
		}
	}
	o.HTTPSPort, o.ClientCertificates, o.FaultFormat, o.Discovery = g.Golden.HTTPSPort, g.Golden.ClientCertificates, g.Golden.FaultFormat, g.Golden.Discovery
	o.RouteScopes = g.Golden.RouteScopes
	if g.Golden.Analytics {
		o.Analytics = &Analytics{FlushInterval: time.Second}
	}
	if g.Golden.Tracing != "" {
		o.Tracing = &Tracing{Collector: g.Golden.Tracing, ServiceName: "envoy", Sampling: 1}
	}
	var secrets []store.Secret
	if o.HTTPSPort != 0 {
		secrets = append(secrets, store.Secret{Name: ServerCertSecret, CertPEM: []byte("cert"), KeyPEM: []byte("key")})
		if o.ClientCertificates != "" {
			secrets = append(secrets, store.Secret{Name: ClientCASecret, CA: []byte("ca")})
		}
	}
	for _, n := range g.Golden.Secrets {
		secrets = append(secrets, store.Secret{Name: n, CA: []byte("ca")})
	}
	// Nothing validate accepts is dropped: every API of the case is built.
	c, errs := Build(served, secrets, o)
	if len(errs) > 0 {
		t.Fatalf("the build left out what Parse accepted: %v", errs)
	}
	eds, errs := Endpoints(c.Sets, o.Discovery)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := validate.Set(msgs(c.Listeners), append(msgs(c.Routes), msgs(c.Scopes)...), msgs(c.Clusters), msgs(eds), msgs(c.Secrets)); err != nil {
		t.Fatal(err)
	}
	if c.Unscoped != g.Golden.Unscoped {
		t.Fatalf("routes kept in one table because of %q, want %q", c.Unscoped, g.Golden.Unscoped)
	}
	if err := validate.Set(msgs(c.GRPCListeners), msgs(c.GRPCRoutes), msgs(c.GRPCClusters), msgs(eds), nil); err != nil {
		t.Fatalf("what gRPC clients get: %v", err)
	}
	out := map[string][]types.Resource{
		"listeners": append(append([]types.Resource(nil), c.Listeners...), c.GRPCListeners...),
		"routes":    append(append([]types.Resource(nil), c.Routes...), c.GRPCRoutes...),
		"clusters":  c.Clusters,
		"endpoints": eds,
	}
	if len(c.Scopes) > 0 {
		out["scopes"] = c.Scopes
	}
	return out
}

// goldenYAML is resources as YAML, Anys expanded, keys sorted: stable across runs (protojson's
// own output is not byte-stable on purpose).
func goldenYAML(t *testing.T, rs []types.Resource) []byte {
	t.Helper()
	list := make([]json.RawMessage, 0, len(rs))
	for _, r := range rs {
		j, err := protojson.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, j)
	}
	j, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return ""
}
