// Command authz measures Check over gRPC on loopback: throughput and p50/p99 latency at 1
// and 16 concurrent callers, for a cached RS256 token and for first-seen RS256 tokens, and
// the same load against a do-nothing Check server (allows everything) — the floor no
// enforcer can beat on this machine. It prints a table; it is a measurement, not a test.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/policies/jwt"
	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
	"github.com/tollgate-gw/tollgate/test/bench/internal/grpcload"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

const (
	issuer = "https://idp.bench"
	aud    = "coffeebar"
)

func main() {
	dur := flag.Duration("duration", 3*time.Second, "length of each timed run")
	firstSeen := flag.Int("first-seen", 3000, "distinct tokens for each first-seen run")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the cached-token runs to this file")
	flag.Parse()

	idp := benchutil.NewIssuer(issuer, aud)
	def, err := os.ReadFile("examples/coffeebar/coffeebar.yaml")
	benchutil.Check(err)
	res, err := openapi.Parse("coffeebar.yaml", def)
	benchutil.Check(err)
	reg := catalog.New(zap.NewNop(), nil)
	reg.Set([]*apimodel.API{res.API})
	v, err := jwt.New(jwt.Config{
		Issuers:      []jwt.IssuerConfig{{Issuer: issuer, JWKSURL: idp.JWKSURL, Audiences: []string{aud}, Algorithms: []string{"RS256"}}},
		CacheSize:    200000,
		ClaimHeaders: map[string]string{"sub": "x-user"},
	}, zap.NewNop(), prometheus.NewRegistry())
	benchutil.Check(err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go v.Run(ctx)
	for !v.Ready() {
		time.Sleep(time.Millisecond)
	}
	enf := extauthz.New(extauthz.Config{}, reg, v, zap.NewNop(), prometheus.NewRegistry())

	tollgate, tollgateAddr := serve(func(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, enf) })
	floor, floorAddr := serve(func(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, benchutil.Nothing{}) })

	cached := request(idp.Sign("read:menu"))
	fmt.Printf("Check over gRPC on loopback, %d CPUs, GOMAXPROCS=%d, %v per timed run; one client connection per server\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), *dur)
	fmt.Printf("%-34s %8s %12s %10s %10s %12s\n", "load", "callers", "checks/s", "p50", "p99", "CPU/check")
	results := map[string]float64{}
	for _, callers := range []int{1, 16} {
		f := timed(floor, cached, callers, *dur)
		report("do-nothing server (floor)", callers, f)
		if *cpuProfile != "" && callers == 16 {
			pf, err := os.Create(*cpuProfile)
			benchutil.Check(err)
			benchutil.Check(pprof.StartCPUProfile(pf))
		}
		c := timed(tollgate, cached, callers, *dur)
		pprof.StopCPUProfile()
		report("tollgate, cached RS256 token", callers, c)
		results[fmt.Sprintf("ratio%d", callers)] = c.rate / f.rate

		reqs := make([]*authv3.CheckRequest, *firstSeen)
		var wg sync.WaitGroup
		for w := range runtime.NumCPU() {
			wg.Go(func() {
				for i := w; i < len(reqs); i += runtime.NumCPU() {
					reqs[i] = request(idp.Sign("read:menu"))
				}
			})
		}
		wg.Wait()
		fs := counted(tollgate, reqs, callers)
		report("tollgate, first-seen RS256 token", callers, fs)
	}
	// The same cached-token load from a generator that costs the machine little: one HTTP/2
	// connection, pre-encoded frames, as Envoy would send it.
	msg, err := proto.Marshal(cached)
	benchutil.Check(err)
	for _, s := range []struct{ name, addr string }{{"do-nothing server (floor)", floorAddr}, {"tollgate, cached RS256 token", tollgateAddr}} {
		cpu0 := cpuTime()
		st, err := grpcload.Load{Addr: s.addr, Method: "/envoy.service.auth.v3.Authorization/Check", Msgs: [][]byte{msg}, Check: grpcload.Allowed}.Closed(16, *dur)
		benchutil.Check(err)
		report(s.name+" (h2)", 16, stats{rate: st.Rate, p50: st.P50, p99: st.P99, cpu: (cpuTime() - cpu0) / time.Duration(st.Calls)})
		results[s.name] = st.Rate
	}
	fmt.Printf("\ncached-token throughput as a share of the do-nothing server: 1 caller %.0f%%, 16 callers %.0f%%; 16 in flight on one HTTP/2 connection (h2) %.0f%%\n",
		100*results["ratio1"], 100*results["ratio16"], 100*results["tollgate, cached RS256 token"]/results["do-nothing server (floor)"])
	fmt.Println("(CPU/check is the whole process — client and server both — divided by checks; see `go test -bench` for the enforcer alone)")
}

type stats struct {
	rate     float64
	p50, p99 time.Duration
	cpu      time.Duration
}

func report(name string, callers int, s stats) {
	fmt.Printf("%-34s %8d %12.0f %10s %10s %12s\n", name, callers, s.rate, s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond), s.cpu.Round(100*time.Nanosecond))
}

// timed sends the same request from callers goroutines for d.
func timed(c authv3.AuthorizationClient, req *authv3.CheckRequest, callers int, d time.Duration) stats {
	for range 200 { // warm up the connection and caches
		call(c, req)
	}
	var stop atomic.Bool
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			for !stop.Load() {
				t := time.Now()
				call(c, req)
				lat[i] = append(lat[i], time.Since(t))
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return summarize(lat, time.Since(start), cpuTime()-cpu0)
}

// counted sends each request once, spread over callers goroutines.
func counted(c authv3.AuthorizationClient, reqs []*authv3.CheckRequest, callers int) stats {
	var next atomic.Int64
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			for {
				n := next.Add(1) - 1
				if n >= int64(len(reqs)) {
					return
				}
				t := time.Now()
				call(c, reqs[n])
				lat[i] = append(lat[i], time.Since(t))
			}
		})
	}
	wg.Wait()
	return summarize(lat, time.Since(start), cpuTime()-cpu0)
}

func call(c authv3.AuthorizationClient, req *authv3.CheckRequest) {
	resp, err := c.Check(context.Background(), req)
	if err != nil || resp.GetOkResponse() == nil {
		fmt.Fprintf(os.Stderr, "check failed: %v %v\n", err, resp.GetDeniedResponse().GetBody())
		os.Exit(1)
	}
}

func summarize(lat [][]time.Duration, elapsed, cpu time.Duration) stats {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	n := len(all)
	return stats{rate: float64(n) / elapsed.Seconds(), p50: all[n/2], p99: all[n*99/100], cpu: cpu / time.Duration(n)}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func serve(register func(*grpc.Server)) (authv3.AuthorizationClient, string) {
	lis, err := testutil.ListenLow()
	benchutil.Check(err)
	s := grpc.NewServer(extauthz.ServerOptions()...) // as tollgate's enforcer port
	register(s)
	go s.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	benchutil.Check(err)
	return authv3.NewAuthorizationClient(conn), lis.Addr().String()
}

func request(token string) *authv3.CheckRequest {
	return extauthz.NewCheckRequest(extauthz.Request{
		Method: "GET", Path: "/coffeebar/v1/menu", Host: "gw.bench",
		Headers:           map[string]string{"authorization": "Bearer " + token, "user-agent": "bench/1.0", "accept": "*/*"},
		ContextExtensions: map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "GET /menu"},
	})
}
