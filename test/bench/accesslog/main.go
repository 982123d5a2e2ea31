// Command accesslog measures analytics' ingestion (issue 27) as Envoy loads it: h2load
// (Debian's nghttp2-client) opens access log streams, each sending what Envoy's http_grpc
// logger sends — 10 StreamAccessLogsMessages of 10 entries each, the first naming the node,
// entries shaped as Envoy writes them (the enforcer's dynamic metadata, timings, byte
// counts, addresses, request headers) — over 2 connections × 8 streams to
//
//   - floor:     a do-nothing access log server (go-control-plane's generated service,
//     receiving every message and dropping it), with the same heap floor as tollgate's
//     servers (internal/gctune);
//   - metrics:   the built `tollgate run`'s enforcer port, analytics counting every entry;
//   - +lines:    the same, also writing each entry as a JSON line to a file.
//
// Rounds alternate between them; medians are printed: entries a second, CPU per entry of
// the server process (from /proc), and each as a share of the floor's. After the runs it
// reads tollgate_access_log_entries_total to show every entry sent was counted. It is a
// measurement, not a test.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/gctune"
	"github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
	"github.com/tollgate-gw/tollgate/test/bench/internal/h2bench"
)

const (
	method          = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
	messages        = 50
	entriesPerMsg   = 20
	entriesPerCall  = messages * entriesPerMsg
	applicationsAll = 20
)

func main() {
	run := h2bench.RunFlags()
	profile := flag.String("profile", "", "write a 2 s CPU profile of this load's server (metrics, +lines) in its first round to the working directory")
	floorAddr := flag.String("serve-floor", "", "internal: serve the do-nothing access log server on this address")
	flag.Parse()
	if *floorAddr != "" {
		defer gctune.Floor(gctune.DefaultFloor).Stop()
		serveFloor(*floorAddr)
		return
	}
	dir, bin, self, cleanup := h2bench.Setup("accesslog", run.Keep)
	defer cleanup()

	def := filepath.Join(dir, "orders.yaml")
	benchutil.Check(os.WriteFile(def, []byte(testutil.OrdersAPI("https://idp.bench")), 0o644))
	floorA := benchutil.Addr()
	floor := h2bench.Start(dir, "floor", self, "-serve-floor", floorA)
	defer benchutil.Stop(floor)
	benchutil.WaitTCP(floorA)
	metrics, metricsCmd := h2bench.StartRun(dir, bin, "metrics", "log: {level: warn}\nanalytics: {enabled: true}\n", def)
	defer benchutil.Stop(metricsCmd)
	lines, linesCmd := h2bench.StartRun(dir, bin, "lines", fmt.Sprintf("log: {level: warn}\nanalytics: {enabled: true, file: %s}\n", filepath.Join(dir, "requests.jsonl")), def)
	defer benchutil.Stop(linesCmd)
	metricsPid, linesPid := metricsCmd.Process.Pid, linesCmd.Process.Pid

	body := filepath.Join(dir, "stream.grpc")
	benchutil.Check(os.WriteFile(body, h2bench.Frames(stream()), 0o644))
	fmt.Printf("Access log ingestion under h2load (%d connections × %d streams, %d entries a stream in %d messages, %v × %d rounds, medians):\n",
		run.Conns, run.Streams, entriesPerCall, messages, run.Duration, run.Rounds)
	type load struct {
		name, addr string
		pid        int
		admin      string
	}
	loads := []load{{"floor", floorA, floor.Process.Pid, ""}, {"metrics", metrics.Authz, metricsPid, metrics.Admin}, {"+lines", lines.Authz, linesPid, lines.Admin}}
	results := map[string][]h2bench.Result{}
	for r := range run.Rounds {
		for _, l := range loads {
			if r == 0 && l.name == *profile {
				h2bench.ProfileDuring(l.admin, filepath.Join(dir, "profile.prof"))
			}
			res := run.Load(dir, fmt.Sprintf("%s-%d", l.name, r), l.addr, method, l.pid, body)
			results[l.name] = append(results[l.name], res)
		}
	}
	f := h2bench.Median(results["floor"])
	fmt.Printf("  %-8s %12s %12s %10s %10s\n", "server", "entries/s", "CPU/entry", "×floor", "CPU×floor")
	for _, l := range loads {
		m := h2bench.Median(results[l.name])
		cpu := float64(m.CPU) / entriesPerCall
		fmt.Printf("  %-8s %12.0f %10.2fµs %9.0f%% %9.2f\n", l.name, m.RPS*entriesPerCall, cpu/1e3,
			100*m.RPS/f.RPS, cpu/(float64(f.CPU)/entriesPerCall))
	}
	fmt.Println("  (target: ≤ 3 µs CPU per entry)")
	for _, s := range []*benchutil.Server{metrics, lines} {
		fmt.Printf("  %s counted %s entries (taken)\n", s.Authz, taken(s.Admin))
	}
}

// stream is one Envoy stream's messages.
func stream() []*alsv3.StreamAccessLogsMessage {
	var out []*alsv3.StreamAccessLogsMessage
	n := 0
	for i := range messages {
		m := &alsv3.StreamAccessLogsMessage{LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{}}}
		if i == 0 {
			m.Identifier = &alsv3.StreamAccessLogsMessage_Identifier{Node: &corev3.Node{Id: "envoy-bench-1", Cluster: "default"}, LogName: "tollgate"}
		}
		for range entriesPerMsg {
			m.GetHttpLogs().LogEntry = append(m.GetHttpLogs().LogEntry, entry(n))
			n++
		}
		out = append(out, m)
	}
	return out
}

// entry is shaped as Envoy's http_grpc logger writes a request the enforcer allowed.
func entry(n int) *accesslogdata.HTTPAccessLogEntry {
	addr := func(a string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: a, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	ms := func(v int) *durationpb.Duration { return durationpb.New(time.Duration(v) * time.Millisecond) }
	app := "client-" + strconv.Itoa(n%applicationsAll)
	return &accesslogdata.HTTPAccessLogEntry{
		CommonProperties: &accesslogdata.AccessLogCommon{
			SampleRate: 1, DownstreamRemoteAddress: addr("203.0.113.7", 51234), DownstreamLocalAddress: addr("10.0.0.2", 8080),
			StartTime: timestamppb.Now(), TimeToLastRxByte: ms(1), TimeToFirstUpstreamTxByte: ms(2), TimeToLastUpstreamTxByte: ms(2),
			TimeToFirstUpstreamRxByte: ms(10 + n%40), TimeToLastUpstreamRxByte: ms(11 + n%40), TimeToFirstDownstreamTxByte: ms(11 + n%40),
			TimeToLastDownstreamTxByte: ms(12 + n%40), UpstreamRemoteAddress: addr("127.0.0.1", 8081), UpstreamLocalAddress: addr("127.0.0.1", 40000),
			UpstreamCluster: "orders_127_0_0_1_8081", RouteName: "orders/v1 POST /orders",
			Metadata: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.ext_authz": {Fields: map[string]*structpb.Value{
				"api": structpb.NewStringValue("orders/v1"), "operation": structpb.NewStringValue("POST /orders"),
				"subject": structpb.NewStringValue("user-" + strconv.Itoa(n)), "client_id": structpb.NewStringValue(app),
				"issuer": structpb.NewStringValue("bench"), "token_id": structpb.NewStringValue("jti-" + strconv.Itoa(n)),
				"auth_type": structpb.NewStringValue("jwt")}}}},
			StreamId: "stream-" + strconv.Itoa(n), DownstreamWireBytesSent: 812, DownstreamWireBytesReceived: 1490,
		},
		ProtocolVersion: accesslogdata.HTTPAccessLogEntry_HTTP2,
		Request: &accesslogdata.HTTPRequestProperties{RequestMethod: corev3.RequestMethod_POST, Scheme: "https", Authority: "api.example.com",
			Path: "/orders/v1/orders", UserAgent: "okhttp/4.12.0", ForwardedFor: "203.0.113.7", RequestId: fmt.Sprintf("5f3c1a52-%08d", n),
			RequestHeadersBytes: 420, RequestBodyBytes: 1024},
		Response: &accesslogdata.HTTPResponseProperties{ResponseCode: wrapperspb.UInt32(201), ResponseHeadersBytes: 180, ResponseBodyBytes: 632,
			ResponseCodeDetails: "via_upstream"},
	}
}

// serveFloor serves a do-nothing access log server: each message received and dropped.
func serveFloor(a string) {
	l, err := net.Listen("tcp", a)
	benchutil.Check(err)
	s := grpc.NewServer()
	alsv3.RegisterAccessLogServiceServer(s, &nothing{})
	benchutil.Check(s.Serve(l))
}

type nothing struct {
	alsv3.UnimplementedAccessLogServiceServer
	n atomic.Int64
}

func (f *nothing) StreamAccessLogs(st alsv3.AccessLogService_StreamAccessLogsServer) error {
	for {
		m, err := st.Recv()
		if err == io.EOF {
			return st.SendAndClose(&alsv3.StreamAccessLogsResponse{})
		}
		if err != nil {
			return err
		}
		f.n.Add(int64(len(m.GetHttpLogs().GetLogEntry())))
	}
}

// taken reads the server's count of entries taken.
func taken(admin string) string {
	resp, err := http.Get("http://" + admin + "/metrics")
	benchutil.Check(err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	benchutil.Check(err)
	b := string(raw)
	m := regexp.MustCompile(`tollgate_access_log_entries_total\{result="taken"\} (\S+)`).FindStringSubmatch(b)
	if m == nil {
		return "no"
	}
	return m[1]
}
