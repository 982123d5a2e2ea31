// Command tracing measures what tracing costs a Check (issue 27) as Envoy loads it: h2load
// (Debian's nghttp2-client) sends one pre-encoded, Envoy-shaped CheckRequest (a cached
// RS256 token; with tracing, Envoy's sampled traceparent in its headers) over 2
// connections × 8 streams to
//
//   - floor:    a do-nothing Check server (allows everything), with the same heap floor as
//     tollgate's servers (internal/gctune);
//   - off:      the built `tollgate run`, tracing off (the default);
//   - on:       another `tollgate run` with tracing on as configured by default, exporting
//     over OTLP/gRPC to a local collector that drops what it gets; the request carries no
//     trace context, so sampleRatio (1%) picks the Checks traced;
//   - unsampled: the same server, Envoy's context saying "not sampled" (what 99% of the
//     requests carry when Envoy traces 1%);
//   - sampled:  the same server, Envoy's context saying "sampled": every Check traced.
//
// Rounds alternate between them; medians are printed with each one's CPU per Check (of the
// server process, from /proc; the exporter's work included) over the "off" run's. It is a
// measurement, not a test.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/gctune"
	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
	"github.com/tollgate-gw/tollgate/test/bench/internal/h2bench"
)

const (
	issuer = "https://idp.bench"
	aud    = "coffeebar"
)

func main() {
	run := h2bench.RunFlags()
	profile := flag.String("profile", "", "write a 2 s CPU profile of this load's server (off, on, unsampled, sampled) in its first round to the working directory")
	floorAddr := flag.String("serve-floor", "", "internal: serve the do-nothing Check server on this address")
	flag.Parse()
	if *floorAddr != "" {
		defer gctune.Floor(gctune.DefaultFloor).Stop()
		h2bench.ServeFloor(*floorAddr)
		return
	}
	dir, bin, self, cleanup := h2bench.Setup("tracing", run.Keep)
	defer cleanup()

	collector, spans := serveCollector()
	idp := benchutil.NewIssuer(issuer, aud)
	def, err := filepath.Abs("examples/coffeebar/coffeebar.yaml")
	benchutil.Check(err)
	issuers := fmt.Sprintf("log: {level: warn}\nissuers:\n  - {name: bench, issuer: %q, audiences: [%s], jwksURL: %q, algorithms: [RS256]}\n", issuer, aud, idp.JWKSURL)
	floorA := benchutil.Addr()
	floor := h2bench.Start(dir, "floor", self, "-serve-floor", floorA)
	defer benchutil.Stop(floor)
	off, offCmd := h2bench.StartRun(dir, bin, "off", issuers, def)
	defer benchutil.Stop(offCmd)
	on, onCmd := h2bench.StartRun(dir, bin, "on", issuers+fmt.Sprintf("tracing: {enabled: true, endpoint: %s}\n", collector), def)
	defer benchutil.Stop(onCmd)
	offPid, onPid := offCmd.Process.Pid, onCmd.Process.Pid

	token := idp.Sign("read:menu")
	request := func(flags string) *authv3.CheckRequest {
		h := map[string]string{"authorization": "Bearer " + token, "user-agent": "bench/1.0", "accept": "*/*", "x-request-id": "5f3c1a52-bench"}
		if flags != "" {
			h["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + flags
		}
		return extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu", Host: "gw.bench", Peer: "10.0.0.7:43210",
			Headers: h, ContextExtensions: map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "GET /menu"}})
	}
	type load struct {
		name, addr string
		pid        int
		file       string
		admin      string
	}
	var loads []load
	for _, l := range []struct {
		name, addr string
		pid        int
		flags      string
		admin      string
	}{{"floor", floorA, floor.Process.Pid, "", ""}, {"off", off.Authz, offPid, "", off.Admin}, {"on", on.Authz, onPid, "", on.Admin},
		{"unsampled", on.Authz, onPid, "00", on.Admin}, {"sampled", on.Authz, onPid, "01", on.Admin}} {
		req := request(l.flags)
		if l.name != "floor" {
			h2bench.WaitAllowed("tollgate "+l.name, l.addr, req)
		}
		file := filepath.Join(dir, l.name+".grpc")
		benchutil.Check(os.WriteFile(file, h2bench.Frame(req), 0o644))
		loads = append(loads, load{l.name, l.addr, l.pid, file, l.admin})
	}
	results := map[string][]h2bench.Result{}
	for r := range run.Rounds {
		for _, l := range loads {
			if r == 0 && l.name == *profile {
				h2bench.ProfileDuring(l.admin, filepath.Join(dir, l.name+".prof"))
			}
			results[l.name] = append(results[l.name], run.Load(dir, fmt.Sprintf("%s-%d", l.name, r), l.addr, h2bench.CheckMethod, l.pid, l.file))
		}
	}
	fmt.Printf("Check with tracing off and on under h2load (%d connections × %d streams, %v × %d rounds, medians; a cached RS256 token):\n", run.Conns, run.Streams, run.Duration, run.Rounds)
	fmt.Printf("  %-10s %10s %9s %9s %12s %12s %9s\n", "server", "Checks/s", "p50", "p99", "CPU/Check", "vs off", "×floor")
	f, o := h2bench.Median(results["floor"]), h2bench.Median(results["off"])
	for _, l := range loads {
		m := h2bench.Median(results[l.name])
		fmt.Printf("  %-10s %10.0f %9s %9s %12s %+10.1fµs %8.0f%%\n", l.name, m.RPS, h2bench.US(m.P50), h2bench.US(m.P99), h2bench.US(m.CPU),
			float64(m.CPU-o.CPU)/1e3, 100*m.RPS/f.RPS)
	}
	fmt.Printf("  the collector received %d spans:", spans.n.Load())
	spans.names.Range(func(k, v any) bool { fmt.Printf(" %s %d", k, v.(*atomic.Int64).Load()); return true })
	fmt.Println()
	fmt.Println("  (targets: off costs nothing measurable; on ≤ +5 µs CPU per Check; sampled is every Check traced and exported)")
}

// serveCollector is an OTLP/gRPC trace collector that counts the spans it gets.
func serveCollector() (string, *collector) {
	l, err := net.Listen("tcp", benchutil.Addr())
	benchutil.Check(err)
	c := &collector{}
	s := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(s, c)
	go s.Serve(l)
	return l.Addr().String(), c
}

type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	n     atomic.Int64
	names sync.Map // span name → *atomic.Int64
}

func (c *collector) Export(_ context.Context, r *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	for _, rs := range r.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			c.n.Add(int64(len(ss.GetSpans())))
			for _, sp := range ss.GetSpans() {
				v, _ := c.names.LoadOrStore(sp.GetName(), new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}
