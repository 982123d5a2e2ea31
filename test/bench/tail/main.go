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
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/gctune"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
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
		serveFloor(*floorAddr)
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
	benchutil.Check(os.WriteFile(body, frame(req), 0o644))

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
		servers = append(servers, server{"floor", a, start(dir, "floor", self, "-serve-floor", a)})
	}
	if want["floor-gc"] {
		a := benchutil.Addr()
		servers = append(servers, server{"floor, GC floor", a, start(dir, "floor-gc", self, "-serve-floor", a, "-floor-gc")})
	}
	if want["run"] {
		a := benchutil.Addr()
		cfg := config("run", "", a)
		servers = append(servers, server{"tollgate run", a, start(dir, "run", bin, "run", "--config", cfg, "-f", def)})
	}
	if want["authz"] {
		etcdAddr := benchutil.Addr()
		etcd := start(dir, "etcd", self, "-serve-etcd", filepath.Join(dir, "etcd"), "-etcd-client", etcdAddr, "-etcd-peer", benchutil.Addr())
		defer benchutil.Stop(etcd)
		a := benchutil.Addr()
		cfg := config("authz", "http://"+etcdAddr, a)
		benchutil.WaitTCP(etcdAddr)
		apply := exec.Command(bin, "apply", "--config", cfg, "-f", def)
		apply.Stderr = os.Stderr
		benchutil.Check(apply.Run())
		servers = append(servers, server{"tollgate authz", a, start(dir, "authz", bin, "authz", "--config", cfg)})
	}
	for _, s := range servers {
		defer benchutil.Stop(s.cmd)
		waitAllowed(s.name, s.addr, req)
	}

	results := map[string][]result{}
	for r := range *rounds {
		for _, s := range servers {
			name := strings.ReplaceAll(s.name, " ", "-")
			var profiled func()
			if a, ok := admins[s.name]; ok && *profile != "" && r == *rounds-1 {
				profiled = capture(a, filepath.Join(*profile, name), *dur)
			}
			res := load(dir, fmt.Sprintf("%s-%d", name, r), s.addr, s.cmd.Process.Pid, body, *conns, *streams, *dur)
			if profiled != nil {
				profiled()
			}
			if ok, why := allowed(s.addr, req); !ok { // the timed Checks were the allow path
				benchutil.Check(fmt.Errorf("%s denied the bench's request after a timed run: %s", s.name, why))
			}
			results[s.name] = append(results[s.name], res)
		}
	}

	fmt.Printf("\nCheck under h2load (%d connections × %d streams, %v × %d rounds, medians; one cached RS256 token with its scope):\n", *conns, *streams, *dur, *rounds)
	fmt.Printf("  %-16s %10s %9s %9s %9s %12s %9s %9s %10s\n", "server", "Checks/s", "p50", "p99", "p99.9", "CPU/Check", "×tput", "×p99", "+CPU")
	var floor result
	if f, ok := results["floor"]; ok {
		floor = median(f)
	}
	for _, s := range servers {
		m := median(results[s.name])
		fmt.Printf("  %-16s %10.0f %9s %9s %9s %12s", s.name, m.rps, us(m.p50), us(m.p99), us(m.p999), us(m.cpu))
		if floor.rps > 0 && s.name != "floor" {
			fmt.Printf(" %8.0f%% %8.2f× %+9.1fµs", 100*m.rps/floor.rps, float64(m.p99)/float64(floor.p99), float64(m.cpu-floor.cpu)/1e3)
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

type result struct {
	rps            float64
	p50, p99, p999 time.Duration
	cpu            time.Duration // per Check
}

// load runs h2load against addr and reads its per-request log.
func load(dir, name, addr string, pid int, body string, conns, streams int, d time.Duration) result {
	logPath := filepath.Join(dir, name+".log")
	args := []string{"-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), "-t", "1",
		"--warm-up-time", "1s", "-D", strconv.Itoa(int(d.Seconds())),
		"-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers",
		"--log-file", logPath, "http://" + addr + method}
	cmd := exec.Command("h2load", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	benchutil.Check(cmd.Start())
	time.Sleep(time.Second) // the warm-up; CPU is counted over the timed part only
	cpu0 := benchutil.CPUOf(pid)
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, out.String())
		benchutil.Check(err)
	}
	cpu := benchutil.CPUOf(pid) - cpu0
	m := regexp.MustCompile(`requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed`).FindStringSubmatch(out.String())
	if m == nil || m[3] != "0" {
		fmt.Fprintln(os.Stderr, out.String())
		benchutil.Check(fmt.Errorf("%s: h2load reported failures", name))
	}
	lat := readLog(logPath)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return result{
		rps: float64(len(lat)) / d.Seconds(),
		p50: q(0.50), p99: q(0.99), p999: q(0.999),
		cpu: cpu / time.Duration(max(1, len(lat))),
	}
}

// readLog reads h2load's per-request log (start µs, status, duration µs), keeping only the
// timed part: h2load logs the warm-up's requests too, first.
func readLog(path string) []time.Duration {
	f, err := os.Open(path)
	benchutil.Check(err)
	defer f.Close()
	type rec struct{ start, dur int64 }
	var recs []rec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			continue
		}
		st, _ := strconv.ParseInt(fs[0], 10, 64)
		status, _ := strconv.Atoi(fs[1])
		du, _ := strconv.ParseInt(fs[2], 10, 64)
		if status != 200 {
			benchutil.Check(fmt.Errorf("%s: a response with HTTP status %d", path, status))
		}
		recs = append(recs, rec{st, du})
	}
	benchutil.Check(sc.Err())
	if len(recs) == 0 {
		benchutil.Check(fmt.Errorf("%s: no requests logged", path))
	}
	first := recs[0].start
	for _, r := range recs {
		first = min(first, r.start)
	}
	var out []time.Duration
	for _, r := range recs {
		if r.start >= first+1e6 { // after the 1 s warm-up
			out = append(out, time.Duration(r.dur)*time.Microsecond)
		}
	}
	return out
}

func median(rs []result) result {
	pick := func(f func(result) float64) result {
		s := append([]result(nil), rs...)
		sort.Slice(s, func(i, j int) bool { return f(s[i]) < f(s[j]) })
		return s[len(s)/2]
	}
	return result{
		rps:  pick(func(r result) float64 { return r.rps }).rps,
		p50:  pick(func(r result) float64 { return float64(r.p50) }).p50,
		p99:  pick(func(r result) float64 { return float64(r.p99) }).p99,
		p999: pick(func(r result) float64 { return float64(r.p999) }).p999,
		cpu:  pick(func(r result) float64 { return float64(r.cpu) }).cpu,
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }

// frame is a gRPC message frame: no compression, length, the message.
func frame(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	benchutil.Check(err)
	out := make([]byte, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	copy(out[5:], b)
	return out
}

func serveFloor(a string) {
	l, err := net.Listen("tcp", a)
	benchutil.Check(err)
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, benchutil.Nothing{})
	benchutil.Check(s.Serve(l))
}

func serveEtcd(dir, client, peer string) {
	emb, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir, ClientAddr: client, PeerAddr: peer}, zap.NewNop())
	benchutil.Check(err)
	defer emb.Close()
	select {}
}

func start(dir, name, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	f, err := os.Create(filepath.Join(dir, name+".out"))
	benchutil.Check(err)
	cmd.Stdout, cmd.Stderr = f, f
	benchutil.Check(cmd.Start())
	return cmd
}

// waitAllowed waits until the server allows the bench's request (the definition loaded and
// the issuer's keys fetched), so every timed request is the cached-token path.
func waitAllowed(name, a string, req *authv3.CheckRequest) {
	var why string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, why = allowed(a, req); ok {
			return
		}
	}
	benchutil.Check(fmt.Errorf("%s never allowed the bench's request: %s", name, why))
}

// allowed sends one Check and says whether it was allowed, and if not why.
func allowed(a string, req *authv3.CheckRequest) (bool, string) {
	conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
	benchutil.Check(err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req, grpc.WaitForReady(true))
	if err != nil {
		return false, err.Error()
	}
	return resp.GetOkResponse() != nil, fmt.Sprint(resp.GetDeniedResponse().GetStatus(), resp.GetDeniedResponse().GetBody())
}
