// Command tail measures the Check path as Envoy loads it, with an independent HTTP/2 load
// generator: h2load (Debian's nghttp2-client) sends one pre-encoded, Envoy-shaped
// CheckRequest (a cached RS256 token with its scope) over 2 connections × 8 streams, as two
// Envoy workers do, to three servers in turn, each in its own process:
//
//   - floor: a do-nothing Check server (plain grpc-go, allows everything), the best any
//     enforcer can do on this machine; and the same with the heap floor tollgate's servers
//     keep (internal/gctune), to show what is left once the GC is alike;
//   - run:   the built `tollgate run` (embedded etcd and the control plane in the process);
//   - authz: the built `tollgate authz` alone, against an etcd in another process.
//
// Rounds alternate between the three so that the machine's drift hits each alike; the
// medians are printed with their ratio to the floor's (absolute numbers on a shared machine
// move by ±25%; ratios within one run do not). CPU per Check is the server process's user +
// system time from /proc over the requests h2load completed. It is a measurement, not a test.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/gctune"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
	"github.com/tollgate-gw/tollgate/test/bench/internal/h2bench"
)

const (
	issuer = "https://idp.bench"
	aud    = "coffeebar"
	method = "/envoy.service.auth.v3.Authorization/Check"
)

func main() {
	dur := flag.Duration("duration", 5*time.Second, "length of each timed run (after a 1 s warm-up)")
	rounds := flag.Int("rounds", 3, "runs of each server, interleaved (medians are printed)")
	conns := flag.Int("c", 2, "h2load connections")
	streams := flag.Int("m", 8, "h2load concurrent streams per connection")
	only := flag.String("only", "floor,floor-gc,run,authz", "servers to measure")
	profile := flag.String("profile", "", "write a CPU profile and an execution trace of each tollgate server's last round into this directory")
	keep := flag.Bool("keep", false, "keep the working directory (configurations, logs, h2load logs)")
	// Child roles: the bench starts itself as the floor server and as the separate etcd.
	floorAddr := flag.String("serve-floor", "", "internal: serve the do-nothing Check server on this address")
	floorGC := flag.Bool("floor-gc", false, "internal: the floor server keeps the same heap floor as tollgate")
	etcdDir := flag.String("serve-etcd", "", "internal: serve an etcd in this directory (with -etcd-client, -etcd-peer)")
	etcdClient := flag.String("etcd-client", "", "internal")
	etcdPeer := flag.String("etcd-peer", "", "internal")
	flag.Parse()
	switch {
	case *floorAddr != "":
		if *floorGC {
			defer gctune.Floor(gctune.DefaultFloor).Stop()
		}
		h2bench.ServeFloor(*floorAddr)
		return
	case *etcdDir != "":
		serveEtcd(*etcdDir, *etcdClient, *etcdPeer)
		return
	}
	if _, err := exec.LookPath("h2load"); err != nil {
		fmt.Fprintln(os.Stderr, "h2load not found: install Debian's nghttp2-client (make bench does)")
		os.Exit(1)
	}

	dir, cleanup := benchutil.WorkDir("tail", *keep)
	defer cleanup()
	bin := benchutil.Binary(dir)
	self, err := os.Executable()
	benchutil.Check(err)

	idp := benchutil.NewIssuer(issuer, aud)
	jwksURL := idp.JWKSURL
	req := extauthz.NewCheckRequest(extauthz.Request{
		Method: "GET", Path: "/coffeebar/v1/menu", Host: "gw.bench", Peer: "10.0.0.7:43210",
		Headers:           map[string]string{"authorization": "Bearer " + idp.Sign("read:menu"), "user-agent": "bench/1.0", "accept": "*/*", "x-request-id": "5f3c1a52-bench"},
		ContextExtensions: map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "GET /menu"},
	})
	body := filepath.Join(dir, "check.grpc")
	benchutil.Check(os.WriteFile(body, h2bench.Frame(req), 0o644))

	type server struct {
		name string
		addr string
		cmd  *exec.Cmd
	}
	var servers []server
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		want[s] = true
	}
	// The bench's API: one operation that needs a scope, no throttling tier (a tier would
	// turn most of the timed Checks into 429s after its first minute's quota).
	def := filepath.Join(dir, "menu.yaml")
	benchutil.Check(os.WriteFile(def, []byte(`openapi: 3.0.3
info: {title: Coffeebar, version: v1}
x-wso2-basePath: /coffeebar/{version}
x-wso2-production-endpoints: {urls: ["http://127.0.0.1:8081/coffeebar"]}
components:
  securitySchemes:
    oauth2: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp.bench/token", scopes: {read:menu: the menu}}}}
paths:
  /menu: {get: {security: [{oauth2: [read:menu]}], responses: {"200": {description: the menu}}}}
`), 0o644))
	admins := map[string]string{}
	config := func(name, etcd, authzAddr string) string {
		p := filepath.Join(dir, name+".yaml")
		srv := benchutil.Server{Authz: authzAddr}
		benchutil.WriteConfig(p, filepath.Join(dir, "data-"+name), etcd, &srv, fmt.Sprintf(`log: {level: warn}
issuers:
  - {name: bench, issuer: %q, audiences: [%s], jwksURL: %q, algorithms: [RS256]}
`, issuer, aud, jwksURL))
		admins["tollgate "+name] = srv.Admin
		return p
	}
	if want["floor"] {
		a := benchutil.Addr()
		servers = append(servers, server{"floor", a, h2bench.Start(dir, "floor", self, "-serve-floor", a)})
	}
	if want["floor-gc"] {
		a := benchutil.Addr()
		servers = append(servers, server{"floor, GC floor", a, h2bench.Start(dir, "floor-gc", self, "-serve-floor", a, "-floor-gc")})
	}
	if want["run"] {
		a := benchutil.Addr()
		cfg := config("run", "", a)
		servers = append(servers, server{"tollgate run", a, h2bench.Start(dir, "run", bin, "run", "--config", cfg, "-f", def)})
	}
	if want["authz"] {
		etcdAddr := benchutil.Addr()
		etcd := h2bench.Start(dir, "etcd", self, "-serve-etcd", filepath.Join(dir, "etcd"), "-etcd-client", etcdAddr, "-etcd-peer", benchutil.Addr())
		defer benchutil.Stop(etcd)
		a := benchutil.Addr()
		cfg := config("authz", "http://"+etcdAddr, a)
		benchutil.WaitTCP(etcdAddr)
		apply := exec.Command(bin, "apply", "--config", cfg, "-f", def)
		apply.Stderr = os.Stderr
		benchutil.Check(apply.Run())
		servers = append(servers, server{"tollgate authz", a, h2bench.Start(dir, "authz", bin, "authz", "--config", cfg)})
	}
	for _, s := range servers {
		defer benchutil.Stop(s.cmd)
		h2bench.WaitAllowed(s.name, s.addr, req)
	}

	results := map[string][]h2bench.Result{}
	for r := range *rounds {
		for _, s := range servers {
			name := strings.ReplaceAll(s.name, " ", "-")
			var profiled func()
			if a, ok := admins[s.name]; ok && *profile != "" && r == *rounds-1 {
				profiled = capture(a, filepath.Join(*profile, name), *dur)
			}
			res := h2bench.Load(dir, fmt.Sprintf("%s-%d", name, r), s.addr, h2bench.CheckMethod, s.cmd.Process.Pid, body, *conns, *streams, *dur)
			if profiled != nil {
				profiled()
			}
			if ok, why := h2bench.Allowed(s.addr, req); !ok { // the timed Checks were the allow path
				benchutil.Check(fmt.Errorf("%s denied the bench's request after a timed run: %s", s.name, why))
			}
			results[s.name] = append(results[s.name], res)
		}
	}

	fmt.Printf("\nCheck under h2load (%d connections × %d streams, %v × %d rounds, medians; one cached RS256 token with its scope):\n", *conns, *streams, *dur, *rounds)
	fmt.Printf("  %-16s %10s %9s %9s %9s %12s %9s %9s %10s\n", "server", "Checks/s", "p50", "p99", "p99.9", "CPU/Check", "×tput", "×p99", "+CPU")
	var floor h2bench.Result
	if f, ok := results["floor"]; ok {
		floor = h2bench.Median(f)
	}
	for _, s := range servers {
		m := h2bench.Median(results[s.name])
		fmt.Printf("  %-16s %10.0f %9s %9s %9s %12s", s.name, m.RPS, h2bench.US(m.P50), h2bench.US(m.P99), h2bench.US(m.P999), h2bench.US(m.CPU))
		if floor.RPS > 0 && s.name != "floor" {
			fmt.Printf(" %8.0f%% %8.2f× %+9.1fµs", 100*m.RPS/floor.RPS, float64(m.P99)/float64(floor.P99), float64(m.CPU-floor.CPU)/1e3)
		}
		fmt.Println()
	}
	fmt.Println("  (targets: throughput ≥ 93% of the floor's, p99 ≤ 1.2×, CPU per Check ≤ the floor's + 2 µs)")
}

// capture starts fetching a CPU profile and then an execution trace from a server's admin
// port while the timed part of a run goes on (after its warm-up); the returned func waits.
func capture(admin, prefix string, d time.Duration) func() {
	benchutil.Check(os.MkdirAll(filepath.Dir(prefix), 0o755))
	done := make(chan struct{})
	get := func(path, file string) { benchutil.Fetch("http://"+admin+path, file) }
	go func() {
		defer close(done)
		time.Sleep(1200 * time.Millisecond)
		secs := max(1, int(d.Seconds())-2)
		get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), prefix+".cpu.pprof")
		get("/debug/pprof/trace?seconds=0.5", prefix+".trace")
	}()
	return func() { <-done }
}
func serveEtcd(dir, client, peer string) {
	emb, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir, ClientAddr: client, PeerAddr: peer}, zap.NewNop())
	benchutil.Check(err)
	defer emb.Close()
	select {}
}
