// Command ratelimit measures throttling decisions: in the engine alone, over the Check gRPC
// path (what Envoy's ext_authz filter calls), and over Envoy's rate limit service protocol
// (the load envoyproxy/ratelimit is measured with) — with local counters and with a real
// redis-server on loopback. The gRPC load comes from one HTTP/2 connection driven with
// pre-encoded frames (test/bench/internal/grpcload), as a proxy would send it; a
// do-nothing Check server gives the machine's floor. Each row is the median of -runs runs.
// It prints its numbers; it is a measurement, not a test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/policies/ratelimit/rls"
	"github.com/tollgate-gw/tollgate/test/bench/internal/grpcload"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

const api = `openapi: 3.0.3
info: {title: Bench, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
x-tollgate-throttling: bench
paths:
  /ping: {get: {security: [{}], responses: {"200": {description: ok}}}}
`

// The policy never denies here: what is measured is the cost of counting.
const policy = "kind: ThrottlingPolicy\nname: bench\nrate: 1000000/second\nburst: 100000\nkey: ip\n"

const (
	checkMethod = "/envoy.service.auth.v3.Authorization/Check"
	rlsMethod   = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
)

var (
	dur  = flag.Duration("duration", 3*time.Second, "length of each timed run")
	runs = flag.Int("runs", 3, "runs per row; the median is shown")
)

func main() {
	flag.Parse()
	if p := os.Getenv("TOLLGATE_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	addr, stop := startRedis()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leased := newRedis(ctx, addr, ratelimit.RedisConfig{})
	// The same Redis without leases: every decision is a round trip — the cost of a counter
	// too small or too quiet to lease, and of a key seen for the first time.
	perRequest := newRedis(ctx, addr, ratelimit.RedisConfig{Lease: -1, Prefix: "unleased:"})
	backends := []struct {
		name    string
		backend ratelimit.Backend
	}{{"local", ratelimit.NewLocal()}, {"redis, leased (default)", leased}, {"redis, a round trip each", perRequest}}

	fmt.Printf("throttling decisions, %v per run, median of %d runs\n", *dur, *runs)
	header("engine.Decide in-process, 16 goroutines")
	for _, b := range backends {
		if !selected("engine " + b.name) {
			continue
		}
		e := engine(b.backend)
		var n atomic.Int64
		row(b.name, func() (grpcload.Stats, error) {
			return inProcess(16, *dur, func() {
				d := e.Decide(context.Background(), ratelimit.Request{API: "bench/v1", APIPolicy: "bench", IP: fmt.Sprintf("10.0.0.%d", n.Add(1)%200)})
				if !d.Allowed {
					panic(fmt.Sprintf("denied: %+v", d))
				}
			}), nil
		})
	}

	checks := make([][]byte, 200) // 200 client addresses: 200 counters
	for i := range checks {
		checks[i] = marshal(extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/bench/v1/ping", Peer: fmt.Sprintf("10.0.1.%d:4000", i)}))
	}
	header("Check over gRPC (Envoy's ext_authz), one HTTP/2 connection, 200 counters")
	servers := []struct {
		name     string
		register func(*grpc.Server)
	}{{"do-nothing server (the floor)", func(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, nothing{}) }}}
	for _, b := range backends {
		servers = append(servers, struct {
			name     string
			register func(*grpc.Server)
		}{b.name, func(s *grpc.Server) { enforcer(engine(b.backend)).Register(s) }})
	}
	for _, s := range servers {
		if !selected("check " + s.name) {
			continue
		}
		addr, stop := serve(s.register)
		load := grpcload.Load{Addr: addr, Method: checkMethod, Msgs: checks, Check: grpcload.Allowed}
		row(s.name+", 4 in flight", func() (grpcload.Stats, error) { return load.Closed(4, *dur) })
		row(s.name+", 16 in flight", func() (grpcload.Stats, error) { return load.Closed(16, *dur) })
		row(s.name+", 20k/s offered", func() (grpcload.Stats, error) { return load.Paced(20000, *dur) })
		stop()
	}

	header("ShouldRateLimit (Envoy's rate limit service protocol) through Redis, 100 in flight")
	fixed := [][]byte{marshal(rlsRequest("user-1"))}
	variable := make([][]byte, 400000) // more than a run sends: every request a new counter
	for i := range variable {
		variable[i] = marshal(rlsRequest(fmt.Sprintf("user-%d", i)))
	}
	for _, b := range backends[1:] {
		for _, keys := range []struct {
			name string
			msgs [][]byte
		}{{"one counter", fixed}, {"a new counter each request", variable}} {
			name := b.name + ", " + keys.name
			if !selected("rls " + name) {
				continue
			}
			e := engine(b.backend)
			addr, stop := serve(func(s *grpc.Server) { rls.New(e, zap.NewNop()).Register(s) })
			load := grpcload.Load{Addr: addr, Method: rlsMethod, Msgs: keys.msgs, Check: rlsOK}
			row(name, func() (grpcload.Stats, error) { return load.Closed(100, *dur) })
			stop()
		}
	}
	fmt.Println("\n(`go test -bench LocalDecision ./policies/ratelimit` shows one local step: ns and allocations)")
}

// selected: TOLLGATE_BENCH_ONLY, when set, picks the rows whose section and name contain
// it (to profile one).
func selected(name string) bool {
	only := os.Getenv("TOLLGATE_BENCH_ONLY")
	return only == "" || strings.Contains(name, only)
}

func newRedis(ctx context.Context, addr string, cfg ratelimit.RedisConfig) *ratelimit.Redis {
	cfg.Addrs, cfg.Timeout = []string{addr}, 100*time.Millisecond
	r, err := ratelimit.NewRedis(cfg, zap.NewNop(), nil)
	check(err)
	go r.Run(ctx)
	return r
}

func engine(b ratelimit.Backend) *ratelimit.Engine {
	e := ratelimit.NewEngine(b, zap.NewNop(), nil)
	e.Update(store.Event{KV: store.KV{Key: "bench", Value: []byte(policy)}})
	return e
}

func enforcer(e *ratelimit.Engine) *extauthz.Enforcer {
	res, err := openapi.Parse("bench.yaml", []byte(api))
	check(err)
	reg := catalog.New(zap.NewNop(), nil)
	reg.Set([]*apimodel.API{res.API})
	return extauthz.New(extauthz.Config{Throttle: e, RateLimitHeaders: true}, reg, nil, zap.NewNop(), prometheus.NewRegistry())
}

// nothing is the do-nothing Check server.
type nothing struct {
	authv3.UnimplementedAuthorizationServer
}

func (nothing) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
}

func serve(register func(*grpc.Server)) (string, func()) {
	lis, err := testutil.ListenLow()
	check(err)
	s := grpc.NewServer(extauthz.ServerOptions()...) // as tollgate's enforcer port
	register(s)
	go s.Serve(lis)
	return lis.Addr().String(), s.Stop
}

func rlsRequest(user string) *rlsv3.RateLimitRequest {
	return &rlsv3.RateLimitRequest{Domain: "bench", Descriptors: []*commonrl.RateLimitDescriptor{{Entries: []*commonrl.RateLimitDescriptor_Entry{
		{Key: "policy", Value: "bench"}, {Key: "user", Value: user}}}}}
}

// rlsOK checks a RateLimitResponse for overall_code (field 1) OK (1).
func rlsOK(msg []byte) error {
	typ, v, found, err := grpcload.Field(msg, 1)
	if err != nil || !found || typ != protowire.VarintType {
		return fmt.Errorf("no overall code (%v)", err)
	}
	if code, _ := protowire.ConsumeVarint(v); code != uint64(rlsv3.RateLimitResponse_OK) {
		return errors.New("over the limit")
	}
	return nil
}

func marshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	check(err)
	return b
}

// inProcess runs f from callers goroutines for d.
func inProcess(callers int, d time.Duration, f func()) grpcload.Stats {
	var stop atomic.Bool
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			for !stop.Load() {
				t := time.Now()
				f()
				lat[i] = append(lat[i], time.Since(t))
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return grpcload.Summarize(all, elapsed)
}

func header(title string) {
	fmt.Printf("\n%s\n  %-56s %10s %10s %10s\n", title, "", "calls/s", "p50", "p99")
}

// row runs one measurement -runs times and prints the median of each figure.
func row(name string, measure func() (grpcload.Stats, error)) {
	var rates []float64
	var p50s, p99s []time.Duration
	for range *runs {
		s, err := measure()
		check(err)
		rates, p50s, p99s = append(rates, s.Rate), append(p50s, s.P50), append(p99s, s.P99)
	}
	sort.Float64s(rates)
	sort.Slice(p50s, func(i, j int) bool { return p50s[i] < p50s[j] })
	sort.Slice(p99s, func(i, j int) bool { return p99s[i] < p99s[j] })
	m := len(rates) / 2
	fmt.Printf("  %-56s %10.0f %10s %10s\n", name, rates[m], p50s[m].Round(time.Microsecond), p99s[m].Round(time.Microsecond))
}

func startRedis() (string, func()) {
	l, err := testutil.ListenLow()
	check(err)
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	check(cmd.Start())
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, func() { cmd.Process.Kill(); cmd.Wait() }
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "redis-server did not start")
	os.Exit(1)
	return "", nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
