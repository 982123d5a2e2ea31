package envoy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-gw/tollgate/xds/validate"
)

// envoyFiles are the Envoy bootstrap files under envoy/ and examples/ (named envoy*.yaml).
func envoyFiles(t *testing.T) []string {
	var out []string
	for _, root := range []string{".", filepath.Join("..", "examples")} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "envoy") && strings.HasSuffix(d.Name(), ".yaml") {
				out = append(out, p)
			}
			return nil
		})
	}
	if len(out) == 0 {
		t.Fatal("no Envoy files found")
	}
	return out
}

func TestEnvoyFilesAreValid(t *testing.T) {
	for _, f := range envoyFiles(t) {
		t.Run(f, func(t *testing.T) {
			b, err := parse(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Message(b); err != nil {
				t.Fatal(err)
			}
			// Cross references: every route's cluster exists.
			clusters := map[string]bool{}
			for _, c := range b.GetStaticResources().GetClusters() {
				clusters[c.GetName()] = true
			}
			if len(clusters) == 0 && b.GetDynamicResources() == nil {
				t.Fatal("no clusters and no dynamic resources")
			}
		})
	}
}

// The validator must catch what ValidateAll alone misses inside typed_config.
func TestValidationDescendsIntoTypedConfig(t *testing.T) {
	data, err := os.ReadFile("envoy-static.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(data), "stat_prefix: ingress_http", "stat_prefix: \"\"", 1)
	b := &bootstrapv3.Bootstrap{}
	j, _ := yaml.YAMLToJSON([]byte(broken))
	if err := protojson.Unmarshal(j, b); err != nil {
		t.Fatal(err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("ValidateAll was expected to miss this: %v", err)
	}
	if err := validate.Message(b); err == nil || !strings.Contains(err.Error(), "StatPrefix") {
		t.Fatalf("an empty stat_prefix inside typed_config was not caught: %v", err)
	}
}

// renderValid renders b and holds the result to Envoy's validation; it returns the
// bootstrap and its YAML.
func renderValid(t *testing.T, b Bootstrap) (*bootstrapv3.Bootstrap, []byte) {
	t.Helper()
	out, err := b.Render()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parseBytes(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := validate.Message(parsed); err != nil {
		t.Fatal(err)
	}
	return parsed, out
}

func TestRenderedBootstrapIsValid(t *testing.T) {
	for _, xds := range []string{"127.0.0.1:18000", "tollgate.internal:18000"} {
		b, out := renderValid(t, Bootstrap{NodeID: "envoy-1", Cluster: "edge", XDS: xds})
		if b.GetNode().GetId() != "envoy-1" || b.GetNode().GetCluster() != "edge" || b.GetDynamicResources().GetAdsConfig().GetApiType().String() != "GRPC" {
			t.Errorf("bootstrap %v", b)
		}
		delta, err := Bootstrap{NodeID: "envoy-1", Cluster: "edge", XDS: xds, Delta: true}.Render()
		if err != nil {
			t.Fatal(err)
		}
		d, err := parseBytes(delta)
		if err != nil || validate.Message(d) != nil || d.GetDynamicResources().GetAdsConfig().GetApiType().String() != "DELTA_GRPC" {
			t.Errorf("--delta bootstrap: %v %v", err, d.GetDynamicResources().GetAdsConfig())
		}
		// Fronts (endpoint sets across paths) reach their parts through internal listeners.
		if ext := b.GetBootstrapExtensions(); len(ext) != 1 || ext[0].GetName() != "envoy.bootstrap.internal_listener" {
			t.Errorf("bootstrap extensions %v", ext)
		}
		om := b.GetOverloadManager()
		var monitors, actions []string
		for _, m := range om.GetResourceMonitors() {
			monitors = append(monitors, m.GetName())
		}
		for _, a := range om.GetActions() {
			actions = append(actions, a.GetName())
		}
		if strings.Join(monitors, ",") != "envoy.resource_monitors.fixed_heap,envoy.resource_monitors.global_downstream_max_connections" ||
			strings.Join(actions, ",") != "envoy.overload_actions.shrink_heap,envoy.overload_actions.stop_accepting_requests" {
			t.Errorf("overload manager: monitors %v, actions %v", monitors, actions)
		}
		if !strings.Contains(string(out), "max_heap_size_bytes: 2147483648") || !strings.Contains(string(out), "max_active_downstream_connections: 50000") {
			t.Errorf("overload limits:\n%s", out)
		}
	}
	if _, err := (Bootstrap{NodeID: "x", Cluster: "y", XDS: "no-port"}).Render(); err == nil {
		t.Error("bad address accepted")
	}
}

func parse(path string) (*bootstrapv3.Bootstrap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseBytes(data)
}

func parseBytes(data []byte) (*bootstrapv3.Bootstrap, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{}
	return b, protojson.Unmarshal(j, b)
}

// `tollgate bootstrap --tls-*`: the control plane's cluster speaks TLS (h2 by ALPN), checks
// the control plane's certificate against the CA and its DNS SAN against the name it sends
// as SNI, and presents Envoy's certificate for mutual TLS; the result passes validation.
func TestBootstrapWithTLS(t *testing.T) {
	b, _ := renderValid(t, Bootstrap{NodeID: "envoy-1", Cluster: "edge", XDS: "cp.internal:18000", TLSCAFile: "/etc/envoy/ca.pem",
		TLSCertFile: "/etc/envoy/envoy.pem", TLSKeyFile: "/etc/envoy/envoy-key.pem"})
	ts := b.GetStaticResources().GetClusters()[0].GetTransportSocket()
	var up tlsv3.UpstreamTlsContext
	if ts.GetName() != "envoy.transport_sockets.tls" || ts.GetTypedConfig().UnmarshalTo(&up) != nil {
		t.Fatalf("transport socket %v", ts)
	}
	vc := up.GetCommonTlsContext().GetValidationContext()
	san := vc.GetMatchTypedSubjectAltNames()
	if up.GetSni() != "cp.internal" || vc.GetTrustedCa().GetFilename() != "/etc/envoy/ca.pem" || len(san) != 1 || san[0].GetMatcher().GetExact() != "cp.internal" ||
		up.GetCommonTlsContext().GetTlsCertificates()[0].GetPrivateKey().GetFilename() != "/etc/envoy/envoy-key.pem" ||
		up.GetCommonTlsContext().GetAlpnProtocols()[0] != "h2" {
		t.Errorf("TLS context %v", &up)
	}
	for _, bad := range []Bootstrap{
		{NodeID: "e", Cluster: "c", XDS: "10.0.0.1:18000", TLSCAFile: "/ca.pem"},                  // an IP without a name
		{NodeID: "e", Cluster: "c", XDS: "cp:18000", TLSCertFile: "/e.pem", TLSKeyFile: "/k.pem"}, // no CA
		{NodeID: "e", Cluster: "c", XDS: "cp:18000", TLSCAFile: "/ca.pem", TLSCertFile: "/e.pem"}, // a cert without its key
	} {
		if _, err := bad.Render(); err == nil {
			t.Errorf("%+v rendered", bad)
		}
	}
	plain, _ := Bootstrap{NodeID: "e", Cluster: "c", XDS: "cp:18000"}.Render()
	if strings.Contains(string(plain), "transport_socket") {
		t.Errorf("a plaintext bootstrap has a transport socket")
	}
}
