package test

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	tgconfig "github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// proc is a running tollgate server command.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	up   chan struct{}
	done chan struct{}

	mu             sync.Mutex
	stderr, stdout []string
}

// startTollgate starts `tollgate ARGS...`; it is stopped when the test ends.
func startTollgate(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(binary, args...), up: make(chan struct{}), done: make(chan struct{})}
	stdout, _ := p.cmd.StdoutPipe()
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var readers sync.WaitGroup
	readers.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.stdout = append(p.stdout, sc.Text())
			p.mu.Unlock()
			if strings.Contains(sc.Text(), "Tollgate is up") {
				once.Do(func() { close(p.up) })
			}
		}
	})
	readers.Go(func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr = append(p.stderr, sc.Text())
			p.mu.Unlock()
		}
	})
	go func() { readers.Wait(); p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) waitUp() {
	p.t.Helper()
	select {
	case <-p.up:
	case <-p.done:
		p.t.Fatalf("%v exited: %s", p.cmd.Args, strings.Join(p.log(""), "\n"))
	case <-time.After(60 * time.Second):
		p.t.Fatalf("%v did not come up", p.cmd.Args)
	}
}

// stop sends SIGTERM, as a service manager would, and waits.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// log is the stderr lines containing substr.
func (p *proc) log(substr string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.stderr {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// makeRunArgs are the arguments `make run` gives `tollgate run`, read from the Makefile.
func makeRunArgs(t *testing.T) []string {
	t.Helper()
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^run:.*\n(?:\t.*\n)*?\t.*\./\$\(BIN\) run (.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile's run target is not `./$(BIN) run ...`")
	}
	var args []string
	for _, a := range strings.Fields(string(m[1])) {
		if strings.HasPrefix(a, "examples/") {
			a = "../" + a
		}
		args = append(args, a)
	}
	return args
}

// expected is what the control plane must serve for definition files: the route names
// of every operation, every cluster and every EDS assignment, as xds/build makes them.
func expected(t *testing.T, files []string) config {
	t.Helper()
	var apis []*apimodel.API
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if ratelimit.IsPolicy(data) {
			continue
		}
		res, err := openapi.Parse(f, data)
		if err != nil {
			t.Fatal(err)
		}
		apis = append(apis, res.API)
	}
	cfg, errs := build.Build(apis, nil, build.Options{AuthzAddress: "127.0.0.1:1", HTTPPort: 8080, RouteScopes: tgconfig.Default().XDS.RouteScopes})
	if len(errs) > 0 {
		t.Fatalf("the examples do not build: %v", errs)
	}
	var c config
	for _, r := range cfg.Routes {
		rc := r.(*routev3.RouteConfiguration)
		c.RouteTables = append(c.RouteTables, rc.Name)
		for _, vh := range rc.VirtualHosts {
			for _, rt := range vh.Routes {
				c.Routes = append(c.Routes, rt.Name)
			}
		}
	}
	for _, r := range cfg.Clusters {
		cl := r.(*clusterv3.Cluster)
		c.Clusters = append(c.Clusters, cl.Name)
		if cl.GetType() == clusterv3.Cluster_EDS {
			c.Endpoints = append(c.Endpoints, cmp.Or(cl.GetEdsClusterConfig().GetServiceName(), cl.Name))
		}
	}
	for _, r := range cfg.Listeners {
		c.Listeners = append(c.Listeners, r.(*listenerv3.Listener).Name)
	}
	for _, s := range []*[]string{&c.Listeners, &c.RouteTables, &c.Routes, &c.Clusters, &c.Endpoints} {
		*s = uniq(*s)
	}
	return c
}

// sameConfig reports how got differs from want in names (nil when it does not).
func sameConfig(got, want config) []string {
	var diff []string
	for _, k := range []struct {
		what      string
		got, want []string
	}{{"listeners", got.Listeners, want.Listeners}, {"route tables", got.RouteTables, want.RouteTables},
		{"routes", got.Routes, want.Routes}, {"clusters", got.Clusters, want.Clusters}, {"endpoints", got.Endpoints, want.Endpoints}} {
		if !slices.Equal(k.got, k.want) {
			diff = append(diff, fmt.Sprintf("%s: got %q, want %q", k.what, k.got, k.want))
		}
	}
	return diff
}

func filesOf(args []string) []string {
	var files []string
	for i, a := range args {
		if a == "-f" && i+1 < len(args) {
			files = append(files, args[i+1])
		}
	}
	return files
}

// ports are one server's addresses.
type ports struct{ authz, xds, admin, etcd, peer string }

func newPorts(t *testing.T) ports {
	return ports{testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)}
}

// serverConfig writes a tollgate.yaml for one server on p, with the embedded etcd or
// etcdEndpoint; adminExtra goes into the admin block.
func serverConfig(t *testing.T, dir, name string, p ports, etcdEndpoint string, adminExtra ...string) string {
	etcd := fmt.Sprintf("{embeddedClientAddr: %s, embeddedPeerAddr: %s}", p.etcd, p.peer)
	if etcdEndpoint != "" {
		etcd = fmt.Sprintf("{endpoints: [%s], dialTimeout: 1s, requestTimeout: 2s}", etcdEndpoint)
	}
	return write(t, dir, name, fmt.Sprintf(`dataDir: %s
etcd: %s
authz: {listen: %s}
xds: {listen: %s}
admin: {listen: %s%s}
log: {level: info, format: json}
`, filepath.Join(dir, "data-"+strings.TrimSuffix(name, ".yaml")), etcd, p.authz, p.xds, p.admin, strings.Join(adminExtra, "")))
}

func readyz(t *testing.T, admin string) (int, string) {
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
