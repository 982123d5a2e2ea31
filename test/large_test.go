package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// writeBig writes a generated description of ops operations and about size bytes (YAML)
// into dir, named after the API, whose backend is 127.0.0.1:port.
func writeBig(t *testing.T, dir, name string, ops, size, port int) string {
	t.Helper()
	p := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(p, testutil.BigAPIYAML(name, ops, size, fmt.Sprintf("http://127.0.0.1:%d", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// `tollgate run -f` of a 5 MB, 1,000-operation description against an etcd started with
// etcd's default limits (1.5 MiB per request), as users run it against an etcd they do not
// configure: it is stored, every operation is served as a route over ADS, and decided by
// its own scope.
func TestRunServesALargeDefinitionFromADefaultEtcd(t *testing.T) {
	etcd := testutil.StartEtcd(t)
	dir := t.TempDir()
	big := writeBig(t, dir, "big", 1000, 5<<20, 9100)
	if fi, _ := os.Stat(big); fi.Size() < 5<<20 {
		t.Fatalf("the generated document is %d bytes", fi.Size())
	}
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, etcd.Endpoint())
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", big)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := connectEnvoy(t, ctx, p.xds, "big")
	e.waitFor("the 1,000 routes", 40*time.Second, func(c config) bool { return countOps(c.Routes, "big/v1") == 1000 })

	reader := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "op-6").stdout)
	other := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "op-7").stdout)
	for _, c := range []struct{ method, path, token, want string }{
		{"GET", "/big/v1/resource3/x", reader, "ALLOWED 200"},
		{"GET", "/big/v1/resource3/x", other, "DENIED 403"},
		{"PUT", "/big/v1/resource3/x", other, "ALLOWED 200"},
		{"GET", "/big/v1/resource499/x", "", "DENIED 401"},
	} {
		args := []string{"check", "--config", cfg, "--method", c.method, "--path", c.path}
		if c.token != "" {
			args = append(args, "-H", "Authorization: Bearer "+c.token)
		}
		if o := tollgate(t, args...); !strings.Contains(o.stdout, c.want) {
			t.Errorf("%s %s: want %s, got %s%s", c.method, c.path, c.want, o.stdout, o.stderr)
		}
	}
}

// `tollgate apply` of four 5 MB descriptions (20 MB in one apply) to a default etcd while
// a control plane and an enforcer run apart, as in production, and two Envoy-like ADS
// clients follow the control plane: nobody sees a partial set. Every listener, cluster,
// route-scope and route response an Envoy gets holds none or all four of the new APIs, and the
// enforcer's count of APIs goes from one to five with nothing in between.
func TestApplyOfALargeSetIsSeenWhole(t *testing.T) {
	etcd := testutil.StartEtcd(t)
	dir := t.TempDir()
	px, pa := newPorts(t), newPorts(t)
	cfgX := serverConfig(t, dir, "xds.yaml", px, etcd.Endpoint())
	cfgA := serverConfig(t, dir, "authz.yaml", pa, etcd.Endpoint())
	small := writeBig(t, dir, "small", 4, 4<<10, 9100)
	if o := tollgate(t, "apply", "--config", cfgX, "-f", small); o.code != 0 {
		t.Fatalf("apply: %s", o.stderr)
	}
	xds := startTollgate(t, "xds", "--config", cfgX)
	authz := startTollgate(t, "authz", "--config", cfgA)
	xds.waitUp()
	authz.waitUp()
	waitReady(t, "http://"+px.admin+"/readyz")
	waitReady(t, "http://"+pa.admin+"/readyz")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var files []string
	var names []string
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("set%d", i)
		names = append(names, name)
		files = append(files, "-f", writeBig(t, dir, name, 1000, 5<<20, 9101+i))
	}
	// partial records every response that names some but not all of the new APIs.
	var mu sync.Mutex
	var partial []string
	observe := func(who string) func(*discoveryv3.DiscoveryResponse) {
		return func(resp *discoveryv3.DiscoveryResponse) {
			switch resp.TypeUrl {
			case resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.ScopedRouteType, resourcev3.RouteType:
			default:
				return
			}
			var raw strings.Builder
			for _, r := range resp.Resources {
				raw.Write(r.Value)
			}
			n := 0
			for i, name := range names {
				if strings.Contains(raw.String(), "tollgate_scope/"+name) || strings.Contains(raw.String(), name+"/v1 GET ") ||
					strings.Contains(raw.String(), fmt.Sprintf("127.0.0.1_%d", 9101+i)) {
					n++
				}
			}
			if n != 0 && n != len(names) {
				mu.Lock()
				partial = append(partial, fmt.Sprintf("%s: a %s response (version %s) holds %d of the %d new APIs", who, resp.TypeUrl, resp.VersionInfo, n, len(names)))
				mu.Unlock()
			}
		}
	}
	var envoys []*envoy
	for _, id := range []string{"envoy-a", "envoy-b"} {
		e := connectEnvoy(t, ctx, px.xds, id)
		e.waitFor("the small API", 20*time.Second, func(c config) bool { return countOps(c.Routes, "small/v1") == 4 })
		e.mu.Lock()
		e.observe = observe(id)
		e.mu.Unlock()
		envoys = append(envoys, e)
	}
	// The enforcer's count of APIs, read as fast as it answers.
	seen := map[string]bool{}
	stop := make(chan struct{})
	polled := make(chan struct{})
	gauge := regexp.MustCompile(`(?m)^tollgate_apis (\S+)$`)
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := http.Get("http://" + pa.admin + "/metrics")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m := gauge.FindSubmatch(b); m != nil {
				mu.Lock()
				seen[string(m[1])] = true
				mu.Unlock()
			}
		}
	}()

	start := time.Now()
	if o := tollgate(t, append([]string{"apply", "--config", cfgX}, files...)...); o.code != 0 {
		t.Fatalf("applying 20 MB: %s", o.stderr)
	}
	applied := time.Since(start)
	for _, e := range envoys {
		e.waitFor("the four new APIs", 60*time.Second, func(c config) bool {
			for _, name := range names {
				if countOps(c.Routes, name+"/v1") != 1000 {
					return false
				}
			}
			return true
		})
	}
	served := time.Since(start)
	testutil.Eventually(t, "the enforcer to hold five APIs", func() bool { mu.Lock(); defer mu.Unlock(); return seen["5"] })
	close(stop)
	<-polled
	t.Logf("apply of 20 MB returned in %v; both Envoys held every route %v after it began", applied, served)
	mu.Lock()
	defer mu.Unlock()
	for _, p := range partial {
		t.Error(p)
	}
	var counts []string
	for v := range seen {
		counts = append(counts, v)
	}
	slices.Sort(counts)
	if !slices.Equal(counts, []string{"1", "5"}) {
		t.Errorf("the enforcer held %v APIs over the apply, want 1 then 5", counts)
	}
	for _, name := range names {
		if o := tollgate(t, "check", "--config", cfgA, "--method", "GET", "--path", "/"+name+"/v1/resource0/x"); !strings.Contains(o.stdout, "DENIED 401") {
			t.Errorf("%s: the enforcer does not decide it: %s%s", name, o.stdout, o.stderr)
		}
	}
}

// countOps counts the routes of api's operations ("api METHOD /path"; not the 405 routes
// "api /path (405)" nor the API's 404 route "api (404)").
func countOps(routes []string, api string) int {
	n := 0
	for _, s := range routes {
		if rest, ok := strings.CutPrefix(s, api+" "); ok && !strings.HasPrefix(rest, "/") && rest != "(404)" {
			n++
		}
	}
	return n
}
