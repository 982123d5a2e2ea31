package analytics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

type fixed struct{ c *apimodel.Catalog }

func (f fixed) Load() *apimodel.Catalog { return f.c }

func catalog(t *testing.T) fixed {
	a := &apimodel.API{Name: "shop", Version: "v1", BasePath: "/shop",
		Production: apimodel.Endpoints{URLs: []apimodel.Endpoint{{URL: "http://10.0.0.1:80"}}},
		Operations: []apimodel.Operation{{Method: "GET", Path: "/items"}, {Method: "POST", Path: "/items"}}}
	if ps := a.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	return fixed{apimodel.NewCatalog([]*apimodel.API{a})}
}

// entry is an Envoy-shaped entry: metadata as the enforcer sets it (when api is not ""),
// the route's name, a status, byte counts and timings.
func entry(api, op, app, route string, code uint32, reqBytes, respBytes uint64, total, upstream time.Duration) *accesslogdata.HTTPAccessLogEntry {
	c := &accesslogdata.AccessLogCommon{
		StartTime:                  timestamppb.New(time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)),
		RouteName:                  route,
		UpstreamCluster:            "shop_backend",
		TimeToLastDownstreamTxByte: durationpb.New(total),
		DownstreamRemoteAddress:    &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "10.1.2.3"}}},
	}
	if upstream > 0 {
		c.TimeToFirstUpstreamTxByte = durationpb.New(time.Millisecond)
		c.TimeToLastUpstreamRxByte = durationpb.New(time.Millisecond + upstream)
	}
	if api != "" {
		fields := map[string]*structpb.Value{"api": structpb.NewStringValue(api), "operation": structpb.NewStringValue(op)}
		if app != "" {
			fields["client_id"] = structpb.NewStringValue(app)
			fields["subject"] = structpb.NewStringValue("alice")
		}
		c.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataNamespace: {Fields: fields}}}
	}
	e := &accesslogdata.HTTPAccessLogEntry{CommonProperties: c,
		Request:  &accesslogdata.HTTPRequestProperties{RequestMethod: corev3.RequestMethod_GET, Path: "/shop/items?api_key=secret", RequestHeadersBytes: reqBytes, RequestId: "r-1"},
		Response: &accesslogdata.HTTPResponseProperties{ResponseHeadersBytes: respBytes}}
	if code != 0 {
		e.Response.ResponseCode = wrapperspb.UInt32(code)
	}
	return e
}

func serve(t *testing.T, s *Service) alsv3.AccessLogServiceClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.ForceServerCodecV2(Codec(encoding.GetCodecV2("proto"))))
	s.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return alsv3.NewAccessLogServiceClient(conn)
}

func send(t *testing.T, c alsv3.AccessLogServiceClient, msgs ...*alsv3.StreamAccessLogsMessage) {
	st, err := c.StreamAccessLogs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
}

func http(node string, es ...*accesslogdata.HTTPAccessLogEntry) *alsv3.StreamAccessLogsMessage {
	m := &alsv3.StreamAccessLogsMessage{LogEntries: &alsv3.StreamAccessLogsMessage_HttpLogs{HttpLogs: &alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{LogEntry: es}}}
	if node != "" {
		m.Identifier = &alsv3.StreamAccessLogsMessage_Identifier{Node: &corev3.Node{Id: node}, LogName: "tollgate"}
	}
	return m
}

func TestEntriesBecomeMetricsLabelledByTheCatalogue(t *testing.T) {
	reg := prometheus.NewRegistry()
	var out bytes.Buffer
	lines := NewLines(&out)
	s := New(Config{Applications: 2, Lines: lines}, catalog(t), zap.NewNop(), reg)
	c := serve(t, s)

	periodic := entry("shop/v1", "GET /items", "app-a", "", 200, 1, 1, time.Millisecond, 0)
	periodic.CommonProperties.AccessLogType = accesslogdata.AccessLogType_DownstreamPeriodic
	noRoute := entry("", "", "", "", 404, 50, 60, 3*time.Millisecond, 0)
	noRoute.CommonProperties.ResponseFlags = &accesslogdata.ResponseFlags{NoRouteFound: true}
	noRoute.CommonProperties.UpstreamCluster = ""
	send(t, c,
		http("envoy-1",
			entry("shop/v1", "GET /items", "app-a", "shop/v1 GET /items", 200, 100, 1000, 20*time.Millisecond, 15*time.Millisecond),
			entry("shop/v1", "GET /items", "app-a", "shop/v1 GET /items", 200, 100, 1000, 40*time.Millisecond, 30*time.Millisecond)),
		http("", entry("shop/v1", "GET /items", "app-b", "", 503, 10, 20, 2*time.Millisecond, 0),
			// A third application is past the cap of 2.
			entry("shop/v1", "POST /items", "app-c", "", 201, 10, 20, time.Millisecond, time.Millisecond),
			// Denied before the enforcer wrote metadata: the route's name says which.
			entry("", "", "", "shop/v1 POST /items", 401, 7, 8, time.Millisecond, 0),
			// The enforcer's metadata names what the catalogue does not have.
			entry("gone/v9", "GET /x", "", "", 200, 1, 1, time.Millisecond, time.Millisecond),
			entry("shop/v1", "DELETE /items", "", "", 404, 1, 1, time.Millisecond, 0),
			noRoute, periodic),
		&alsv3.StreamAccessLogsMessage{LogEntries: &alsv3.StreamAccessLogsMessage_TcpLogs{TcpLogs: &alsv3.StreamAccessLogsMessage_TCPAccessLogEntries{LogEntry: []*accesslogdata.TCPAccessLogEntry{{}}}}},
	)

	for _, w := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"shop/v1", "GET /items", "app-a", "2xx", "shop_backend"}, 2},
		{[]string{"shop/v1", "GET /items", "app-b", "5xx", "shop_backend"}, 1},
		{[]string{"shop/v1", "POST /items", Other, "2xx", "shop_backend"}, 1},
		{[]string{"shop/v1", "POST /items", "", "4xx", "shop_backend"}, 1},
		{[]string{"", "", "", "2xx", "shop_backend"}, 1},
		{[]string{"shop/v1", "", "", "4xx", "shop_backend"}, 1},
		{[]string{"", "", "", "4xx", ""}, 1},
	} {
		if got := counter(t, reg, "tollgate_requests_total", w.labels...); got != w.want {
			t.Errorf("requests%v = %v, want %v", w.labels, got, w.want)
		}
	}
	if got := testutil.CollectAndCount(s.m.totals, "tollgate_requests_total"); got != 7 {
		t.Errorf("%d request series, want 7", got)
	}
	if got := counter(t, reg, "tollgate_request_bytes_total", "shop/v1", "GET /items", "app-a", "2xx", "shop_backend"); got != 200 {
		t.Errorf("request bytes %v, want 200", got)
	}
	if got := counter(t, reg, "tollgate_response_bytes_total", "shop/v1", "GET /items", "app-a", "2xx", "shop_backend"); got != 2000 {
		t.Errorf("response bytes %v, want 2000", got)
	}
	if got := testutil.ToFloat64(s.m.errors.WithLabelValues("", "", "NR")); got != 1 {
		t.Errorf("NR errors %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.m.intermediate); got != 1 {
		t.Errorf("intermediate %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.m.tcp); got != 1 {
		t.Errorf("tcp %v, want 1", got)
	}
	// The latencies fell in their buckets: 20 ms and 40 ms in (16,32] and (32,64] ms.
	h := histogram(t, reg, "tollgate_request_duration_seconds", "GET /items", "2xx")
	if h.GetSampleCount() != 2 || h.GetSampleSum() < 0.0599 || h.GetSampleSum() > 0.0601 {
		t.Errorf("duration count %d sum %v, want 2 and 0.06", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		want := uint64(0)
		switch {
		case b.GetUpperBound() >= 0.064:
			want = 2
		case b.GetUpperBound() >= 0.032:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if u := histogram(t, reg, "tollgate_upstream_duration_seconds", "GET /items", "2xx"); u.GetSampleCount() != 2 || u.GetSampleSum() < 0.0449 || u.GetSampleSum() > 0.0451 {
		t.Errorf("upstream count %d sum %v, want 2 and 0.045", u.GetSampleCount(), u.GetSampleSum())
	}

	if err := lines.Flush(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&out)
	var got []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		got = append(got, m)
	}
	if len(got) != 8 {
		t.Fatalf("%d lines, want 8 (one per finished request)", len(got))
	}
	first := got[0]
	for k, want := range map[string]any{"envoy": "envoy-1", "api": "shop/v1", "operation": "GET /items", "application": "app-a",
		"subject": "alice", "path": "/shop/items", "status": 200.0, "flags": "-", "request_bytes": 100.0, "duration_ms": 20.0,
		"upstream_ms": 15.0, "client_address": "10.1.2.3", "time": "2026-12-06T01:02:03Z", "method": "GET"} {
		if first[k] != want {
			t.Errorf("line field %s = %#v, want %#v", k, first[k], want)
		}
	}
	if len(first) != len(LineFields) {
		t.Errorf("a line has %d fields, LineFields %d", len(first), len(LineFields))
	}
	// The node is the stream's: later messages without an identifier keep it.
	if got[2]["envoy"] != "envoy-1" || got[2]["upstream_ms"] != nil {
		t.Errorf("third line %v", got[2])
	}
	if strings.Contains(out.String(), "secret") {
		t.Error("a query string reached the lines")
	}
}

// series is the series of the family name whose labels include want; nil when none has.
func series(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				ls[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if ls[k] != v {
					continue metrics
				}
			}
			return m
		}
	}
	return nil
}

// counter is the value of a request family's series (labels in the order api,
// operation, application, class, cluster); -1 when there is none.
func counter(t *testing.T, reg *prometheus.Registry, name string, lv ...string) float64 {
	t.Helper()
	m := series(t, reg, name, map[string]string{"api": lv[0], "operation": lv[1], "application": lv[2], "class": lv[3], "cluster": lv[4]})
	if m == nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

func histogram(t *testing.T, reg *prometheus.Registry, name, op, class string) *dto.Histogram {
	t.Helper()
	m := series(t, reg, name, map[string]string{"operation": op, "class": class})
	if m == nil {
		t.Fatalf("no %s{operation=%q, class=%q}", name, op, class)
	}
	return m.GetHistogram()
}

func TestAStringIsWrittenAsJSON(t *testing.T) {
	for in, want := range map[string]string{"a\"b\\c": `"a\"b\\c"`, "x\ny\x01": `"x\ny\u0001"`, "caf\xc3\xa9": `"café"`, "\xff": `"\ufffd"`, "\u2028": `"\u2028"`} {
		if got := string(appendString(nil, in)); got != strings.ReplaceAll(want, `\n`, `\u000a`) {
			t.Errorf("%q → %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(appendString(nil, in), &back); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
}
