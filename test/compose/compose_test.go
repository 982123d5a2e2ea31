// Package compose tests examples/compose as far as a machine without Docker images can:
// the Compose file loads with the Compose specification's own Go library, everything it
// names exists, and the Envoy bootstrap it mounts is the one `tollgate bootstrap` prints and
// passes Envoy's validation.
package compose

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/xds/validate"
)

const dir = "../../examples/compose"

func load(t *testing.T) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(abs, "compose.yaml")}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("tollgate", true) })
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

// Every service, build, port, volume and file the Compose file names exists.
func TestComposeFile(t *testing.T) {
	p := load(t)
	want := []string{"etcd", "redis", "apply", "xds", "authz", "backend", "envoy"}
	for _, name := range want {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	for name, s := range p.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s has neither an image nor a build", name)
		}
		if b := s.Build; b != nil {
			if _, err := os.Stat(filepath.Join(b.Context, b.Dockerfile)); err != nil {
				t.Errorf("%s builds from %s: %v", name, filepath.Join(b.Context, b.Dockerfile), err)
			}
		}
		for dep := range s.DependsOn {
			if _, err := p.GetService(dep); err != nil {
				t.Errorf("%s depends on %s: %v", name, dep, err)
			}
		}
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", name, v.Source, err)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s mounts the undeclared volume %s", name, v.Source)
				}
			}
		}
		for _, port := range s.Ports {
			if port.Target == 0 || port.Published == "" {
				t.Errorf("%s publishes %+v", name, port)
			}
		}
	}
	envoy, _ := p.GetService("envoy")
	if !strings.HasPrefix(envoy.Image, "envoyproxy/envoy:v1.") || !strings.Contains(envoy.Image, "@sha256:") {
		t.Errorf("Envoy's image %s is not pinned by version and digest", envoy.Image)
	}
	// The Tollgate roles read the mounted configuration, which loads and names the services.
	cfg, err := config.Load(filepath.Join(dir, "tollgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"apply", "xds", "authz"} {
		s, _ := p.GetService(name)
		if !slices.Contains(s.Command, "/config/tollgate.yaml") || !mounts(s, "/config/tollgate.yaml") {
			t.Errorf("%s does not run with the mounted configuration: %v", name, s.Command)
		}
	}
	if cfg.Etcd.Endpoints[0] != "etcd:2379" || cfg.XDS.AuthzAddress != "authz:9191" || cfg.Throttling.Redis.Addrs[0] != "redis:6379" {
		t.Errorf("the configuration does not name the Compose services: %+v", cfg)
	}
	// The examples the apply service stores are in the image (the Dockerfile copies examples/).
	apply, _ := p.GetService("apply")
	for i, arg := range apply.Command {
		if arg == "-f" {
			if _, err := os.Stat(filepath.Join("../..", apply.Command[i+1])); err != nil {
				t.Errorf("apply -f %s: %v", apply.Command[i+1], err)
			}
		}
	}
	// The examples name their backends on 127.0.0.1: Envoy shares the backend's network
	// namespace, where the backend serves every port they name, and Envoy's 8080 is published.
	backend, _ := p.GetService("backend")
	for _, port := range []string{"8081", "8082", "8083", "8084", "8085", "8086", "8087"} {
		if !strings.Contains(strings.Join(backend.Command, " "), "127.0.0.1:"+port) {
			t.Errorf("the backend does not listen on 127.0.0.1:%s", port)
		}
	}
	if envoy.NetworkMode != "service:backend" || len(backend.Ports) != 1 || backend.Ports[0].Target != 8080 {
		t.Errorf("Envoy is not in the backend's network namespace with 8080 published: %q %+v", envoy.NetworkMode, backend.Ports)
	}
}

func mounts(s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Target == target {
			return true
		}
	}
	return false
}

// The Envoy bootstrap examples/compose mounts is what `tollgate bootstrap` prints for it,
// and passes validation (every typed_config included).
func TestComposeEnvoyBootstrap(t *testing.T) {
	p := load(t)
	envoy, _ := p.GetService("envoy")
	var mounted string
	for _, v := range envoy.Volumes {
		if v.Target == "/etc/envoy/envoy.yaml" {
			mounted = v.Source
		}
	}
	b, err := os.ReadFile(mounted)
	if err != nil {
		t.Fatalf("the mounted bootstrap: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "tollgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tollgate")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	printed, err := exec.Command(bin, "bootstrap", "--config", filepath.Join(dir, "tollgate.yaml"), "--node-id", "envoy-1", "--xds", "xds:18000").Output()
	if err != nil {
		t.Fatalf("tollgate bootstrap: %v", err)
	}
	if string(printed) != string(b) {
		t.Errorf("examples/compose/envoy.yaml is not what `tollgate bootstrap --node-id envoy-1 --xds xds:18000` prints; write it again with that command")
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(j, &bs); err != nil {
		t.Fatalf("the bootstrap is not an Envoy bootstrap: %v", err)
	}
	if err := validate.Message(&bs); err != nil {
		t.Fatalf("the bootstrap does not validate: %v", err)
	}
	if bs.GetStaticResources().GetClusters()[0].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress() != "xds" {
		t.Errorf("the bootstrap does not point at the xds service")
	}
}
