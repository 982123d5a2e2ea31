// Command ratelimit measures throttling decisions: in-process (the engine alone) and over the
// Check gRPC path, with the local backend and with a real redis-server on loopback, at 16
// concurrent callers. It prints its numbers; it is a measurement, not a test.
package main

import (
	"context"
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

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

const api = `openapi: 3.0.3
info: {title: Bench, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
x-tollgate-throttling: bench
paths:
  /ping: {get: {security: [{}], responses: {"200": {description: ok}}}}
`

const policy = "kind: ThrottlingPolicy\nname: bench\nrate: 1000000/second\nburst: 100000\nkey: ip\n"

func main() {
	if p := os.Getenv("TOLLGATE_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	addr, stop := startRedis()
	defer stop()
	redis, err := ratelimit.NewRedis(ratelimit.RedisConfig{Addrs: []string{addr}, Timeout: 100 * time.Millisecond}, zap.NewNop(), nil)
	check(err)
	defer redis.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go redis.Run(ctx)
	// The same Redis without leases: every decision is a round trip (the cost of counters
	// too small or too quiet to lease).
	perRequest, err := ratelimit.NewRedis(ratelimit.RedisConfig{Addrs: []string{addr}, Timeout: 100 * time.Millisecond, Lease: -1, Prefix: "unleased:"}, zap.NewNop(), nil)
	check(err)
	defer perRequest.Close()
	go perRequest.Run(ctx)

	fmt.Printf("throttling decisions, 16 concurrent callers, 3 s each\n\n%-52s %12s %10s %10s\n", "", "decisions/s", "p50", "p99")
	for _, b := range []struct {
		name    string
		backend ratelimit.Backend
	}{{"local, in-process (engine.Decide)", ratelimit.NewLocal()}, {"redis leased, in-process (engine.Decide)", redis},
		{"redis per request, in-process (engine.Decide)", perRequest}} {
		if !selected(b.name) {
			continue
		}
		e := engine(b.backend)
		var n atomic.Int64
		report(b.name, run(16, 3*time.Second, func(i int) {
			d := e.Decide(context.Background(), ratelimit.Request{API: "bench/v1", APIPolicy: "bench", IP: fmt.Sprintf("10.0.0.%d", n.Add(1)%200)})
			if !d.Allowed {
				panic(fmt.Sprintf("denied: %+v", d))
			}
		}))
	}
	for _, b := range []struct {
		name    string
		backend ratelimit.Backend
	}{{"local, Check over gRPC", ratelimit.NewLocal()}, {"redis leased, Check over gRPC", redis},
		{"redis per request, Check over gRPC", perRequest}} {
		if !selected(b.name) {
			continue
		}
		client := serve(engine(b.backend))
		reqs := make([]*authv3.CheckRequest, 200)
		for i := range reqs {
			reqs[i] = extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/bench/v1/ping", Peer: fmt.Sprintf("10.0.1.%d:4000", i)})
		}
		var n atomic.Int64
		check := func() {
			resp, err := client.Check(context.Background(), reqs[n.Add(1)%200])
			if err != nil || resp.GetOkResponse() == nil {
				panic(fmt.Sprint("check failed: ", err, resp))
			}
		}
		report(b.name, run(16, 3*time.Second, func(int) { check() }))
		report(b.name+", 20k/s offered", paced(20000, 64, 3*time.Second, check))
	}
	fmt.Println("\n(`go test -bench LocalDecision ./policies/ratelimit` shows one local step: ns and allocations)")
}

// selected: TOLLGATE_BENCH_ONLY, when set, picks the runs whose names contain it (to profile one).
func selected(name string) bool {
	only := os.Getenv("TOLLGATE_BENCH_ONLY")
	return only == "" || strings.Contains(name, only)
}

func engine(b ratelimit.Backend) *ratelimit.Engine {
	e := ratelimit.NewEngine(b, zap.NewNop(), nil)
	e.Update(store.Event{KV: store.KV{Key: "bench", Value: []byte(policy)}})
	return e
}

func serve(e *ratelimit.Engine) authv3.AuthorizationClient {
	res, err := openapi.Parse("bench.yaml", []byte(api))
	check(err)
	reg := catalog.New(zap.NewNop(), nil)
	reg.Set([]*apimodel.API{res.API})
	enf := extauthz.New(extauthz.Config{Throttle: e, RateLimitHeaders: true}, reg, nil, zap.NewNop(), prometheus.NewRegistry())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	s := grpc.NewServer()
	enf.Register(s)
	go s.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	return authv3.NewAuthorizationClient(conn)
}

type stats struct {
	rate     float64
	p50, p99 time.Duration
}

func run(callers int, d time.Duration, f func(int)) stats {
	var stop atomic.Bool
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			for !stop.Load() {
				t := time.Now()
				f(i)
				lat[i] = append(lat[i], time.Since(t))
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return stats{rate: float64(len(all)) / time.Since(start).Seconds(), p50: all[len(all)/2], p99: all[len(all)*99/100]}
}

// paced offers f at a fixed rate from up to callers at once, for d, and measures each
// latency from the moment its request was due — a late start counts against the system
// (no coordinated omission).
func paced(rate float64, callers int, d time.Duration, f func()) stats {
	var next atomic.Int64
	lat := make([][]time.Duration, callers)
	interval := time.Duration(float64(time.Second) / rate)
	total := int64(d / interval)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			for {
				n := next.Add(1) - 1
				if n >= total {
					return
				}
				due := start.Add(time.Duration(n) * interval)
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				f()
				lat[i] = append(lat[i], time.Since(due))
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return stats{rate: float64(len(all)) / time.Since(start).Seconds(), p50: all[len(all)/2], p99: all[len(all)*99/100]}
}

func report(name string, s stats) {
	fmt.Printf("%-52s %12.0f %10s %10s\n", name, s.rate, s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond))
}

func startRedis() (string, func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
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
