// Command validation measures request validation (issue 25) as Envoy loads it: h2load
// (Debian's nghttp2-client) sends one pre-encoded, Envoy-shaped CheckRequest carrying a
// JSON body of 1 KB and then 100 KB (raw_body, as the generated routes make Envoy send it;
// a cached RS256 token) over 2 connections × 8 streams to
//
//   - floor:       a do-nothing Check server (allows everything) receiving the same bodies,
//     with the same heap floor as tollgate's servers (internal/gctune);
//   - unvalidated: the built `tollgate run`, on an operation that does not validate;
//   - validated:   the same server, on the operation whose schema checks the body.
//
// Then response validation: h2load sends, on each ext_proc stream, what Envoy's filter
// sends for a 200 response of GET /orders/{id} (its headers, then its buffered 1 KB JSON
// body, the operation in the stream's metadata) to a do-nothing ExternalProcessor (it
// answers every message "go on") and to tollgate's enforcer port.
//
// Rounds alternate between them so that the machine's drift hits each alike; medians are
// printed with the validated Check's cost over the unvalidated one (CPU per Check of the
// server process, from /proc; p99) and throughput as a share of the floor's. It is a
// measurement, not a test.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/gctune"
	"github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
	"github.com/tollgate-gw/tollgate/test/bench/internal/h2bench"
)

const (
	issuer = "https://idp.bench"
	aud    = "orders"
)

func main() {
	run := h2bench.RunFlags()
	floorAddr := flag.String("serve-floor", "", "internal: serve the do-nothing Check server on this address")
	procAddr := flag.String("serve-proc-floor", "", "internal: serve the do-nothing ExternalProcessor on this address")
	flag.Parse()
	switch {
	case *floorAddr != "":
		defer gctune.Floor(gctune.DefaultFloor).Stop()
		h2bench.ServeFloor(*floorAddr)
		return
	case *procAddr != "":
		defer gctune.Floor(gctune.DefaultFloor).Stop()
		serveNothingProcessor(*procAddr)
		return
	}
	dir, bin, self, cleanup := h2bench.Setup("validation", run.Keep)
	defer cleanup()

	idp := benchutil.NewIssuer(issuer, aud)
	def := filepath.Join(dir, "orders.yaml")
	benchutil.Check(os.WriteFile(def, []byte(testutil.OrdersAPI(issuer)), 0o644))
	cfg := filepath.Join(dir, "run.yaml")
	srv := benchutil.Server{}
	benchutil.WriteConfig(cfg, filepath.Join(dir, "data"), "", &srv, fmt.Sprintf(`log: {level: warn}
issuers:
  - {name: bench, issuer: %q, audiences: [%s], jwksURL: %q, algorithms: [RS256]}
`, issuer, aud, idp.JWKSURL))
	floorA := benchutil.Addr()
	floor := h2bench.Start(dir, "floor", self, "-serve-floor", floorA)
	defer benchutil.Stop(floor)
	tollgate := h2bench.Start(dir, "run", bin, "run", "--config", cfg, "-f", def)
	defer benchutil.Stop(tollgate)

	token := idp.Sign("")
	request := func(size int, validated bool) *authv3.CheckRequest {
		op := "POST /orders"
		if !validated {
			op += "-unchecked"
		}
		return extauthz.NewCheckRequest(extauthz.Request{
			Method: "POST", Path: "/orders/v1" + strings.TrimPrefix(op, "POST "), Host: "gw.bench", Peer: "10.0.0.7:43210",
			Headers: map[string]string{"authorization": "Bearer " + token, "content-type": "application/json",
				"user-agent": "bench/1.0", "accept": "*/*", "x-request-id": "5f3c1a52-bench"},
			ContextExtensions: map[string]string{apimodel.RouteKeyAPI: "orders/v1", apimodel.RouteKeyOperation: op},
			Body:              testutil.OrderBody(size),
		})
	}
	type load struct {
		name, addr string
		pid        int
		file       string
	}
	fmt.Printf("Check with a JSON body under h2load (%d connections × %d streams, %v × %d rounds, medians; a cached RS256 token):\n", run.Conns, run.Streams, run.Duration, run.Rounds)
	for _, size := range []int{1 << 10, 100 << 10} {
		var loads []load
		for _, l := range []struct {
			name      string
			addr      string
			pid       int
			validated bool
		}{{"floor", floorA, floor.Process.Pid, true}, {"unvalidated", srv.Authz, tollgate.Process.Pid, false}, {"validated", srv.Authz, tollgate.Process.Pid, true}} {
			req := request(size, l.validated)
			if l.name != "floor" {
				h2bench.WaitAllowed("tollgate "+l.name, l.addr, req)
			}
			file := filepath.Join(dir, fmt.Sprintf("%s-%d.grpc", l.name, size))
			benchutil.Check(os.WriteFile(file, h2bench.Frame(req), 0o644))
			loads = append(loads, load{l.name, l.addr, l.pid, file})
		}
		results := map[string][]h2bench.Result{}
		for r := range run.Rounds {
			for _, l := range loads {
				res := run.Load(dir, fmt.Sprintf("%s-%d-%d", l.name, size, r), l.addr, h2bench.CheckMethod, l.pid, l.file)
				results[l.name] = append(results[l.name], res)
			}
		}
		body := len(testutil.OrderBody(size))
		fmt.Printf("\n  body %d bytes\n  %-12s %10s %9s %9s %9s %12s %10s\n", body, "server", "Checks/s", "p50", "p99", "p99.9", "CPU/Check", "×floor")
		f := h2bench.Median(results["floor"])
		for _, l := range loads {
			m := h2bench.Median(results[l.name])
			fmt.Printf("  %-12s %10.0f %9s %9s %9s %12s %9.0f%%\n", l.name, m.RPS, h2bench.US(m.P50), h2bench.US(m.P99), h2bench.US(m.P999), h2bench.US(m.CPU), 100*m.RPS/f.RPS)
		}
		u, v := h2bench.Median(results["unvalidated"]), h2bench.Median(results["validated"])
		fmt.Printf("  validation: %+.1f µs CPU per Check, p99 %+.0f%%, throughput %.0f%% of the unvalidated Check's\n",
			float64(v.CPU-u.CPU)/1e3, 100*(float64(v.P99)/float64(u.P99)-1), 100*v.RPS/u.RPS)
	}
	fmt.Println("  (targets for 1 KB: validation ≤ +25 µs CPU and ≤ +15% p99 over the unvalidated Check)")

	// Responses over ext_proc.
	procA := benchutil.Addr()
	proc := h2bench.Start(dir, "proc-floor", self, "-serve-proc-floor", procA)
	defer benchutil.Stop(proc)
	benchutil.WaitTCP(procA)
	stream := filepath.Join(dir, "response.grpc")
	benchutil.Check(os.WriteFile(stream, h2bench.Frames(testutil.OrderResponse(1<<10)), 0o644))
	md := []string{apimodel.ProcessAPIKey + ": orders/v1", apimodel.ProcessOperationKey + ": GET /orders/{id}"}
	const method = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"
	results := map[string][]h2bench.Result{}
	loads := []struct {
		name, addr string
		pid        int
	}{{"floor", procA, proc.Process.Pid}, {"tollgate", srv.Authz, tollgate.Process.Pid}}
	for r := range run.Rounds {
		for _, l := range loads {
			results[l.name] = append(results[l.name], run.Load(dir, fmt.Sprintf("proc-%s-%d", l.name, r), l.addr, method, l.pid, stream, md...))
		}
	}
	fmt.Printf("\nResponse validation over ext_proc under h2load (a 200 with a 1 KB JSON body: headers, then the buffered body, per stream):\n")
	fmt.Printf("  %-12s %10s %9s %9s %9s %12s %10s\n", "server", "streams/s", "p50", "p99", "p99.9", "CPU/stream", "×floor")
	f := h2bench.Median(results["floor"])
	for _, l := range loads {
		m := h2bench.Median(results[l.name])
		fmt.Printf("  %-12s %10.0f %9s %9s %9s %12s %9.0f%%\n", l.name, m.RPS, h2bench.US(m.P50), h2bench.US(m.P99), h2bench.US(m.P999), h2bench.US(m.CPU), 100*m.RPS/f.RPS)
	}
	fmt.Println("  (target: ≥ 85% of the do-nothing ExternalProcessor's throughput)")
}

// serveNothingProcessor serves an ExternalProcessor that answers every message "go on".
func serveNothingProcessor(a string) {
	l, err := net.Listen("tcp", a)
	benchutil.Check(err)
	s := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(s, nothing{})
	benchutil.Check(s.Serve(l))
}

type nothing struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (nothing) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	headers := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
	body := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		resp := headers
		if req.GetResponseBody() != nil {
			resp = body
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}
