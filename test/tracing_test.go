package test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	otlpcommon "go.opentelemetry.io/proto/otlp/common/v1"
	otlptrace "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// receiver is a local OTLP/gRPC trace collector that keeps what it is sent.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu      sync.Mutex
	spans   []*otlptrace.Span
	service []string
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				r.service = append(r.service, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func startReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", testutil.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	g := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(g, r)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return r, lis.Addr().String()
}

// checkSpan waits for the Check span of trace id and returns it with its children.
func (r *receiver) checkSpan(t *testing.T, trace string) (*otlptrace.Span, []*otlptrace.Span) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r.mu.Lock()
		var check *otlptrace.Span
		var children []*otlptrace.Span
		for _, s := range r.spans {
			if hex.EncodeToString(s.GetTraceId()) == trace && s.GetName() == "Check" {
				check = s
			}
		}
		if check != nil {
			for _, s := range r.spans {
				if string(s.GetParentSpanId()) == string(check.GetSpanId()) {
					children = append(children, s)
				}
			}
		}
		r.mu.Unlock()
		if check != nil {
			return check, children
		}
	}
	t.Fatalf("no Check span of trace %s reached the collector", trace)
	return nil, nil
}

func attrs(s *otlptrace.Span) map[string]string {
	out := map[string]string{}
	for _, a := range s.GetAttributes() {
		v := a.GetValue()
		if _, ok := v.GetValue().(*otlpcommon.AnyValue_IntValue); ok {
			out[a.GetKey()] = fmt.Sprint(v.GetIntValue())
		} else {
			out[a.GetKey()] = v.GetStringValue()
		}
	}
	return out
}

// Tracing as users turn it on: with `tracing.enabled` and a collector at a local OTLP
// receiver, a Check sent with Envoy's trace context — W3C traceparent, B3 headers — is a
// span of that trace, the child of Envoy's span, exported to the collector with the
// decision; the listeners Envoy gets over ADS carry the OpenTelemetry tracer to the same
// collector's cluster.
func TestChecksJoinEnvoysTraces(t *testing.T) {
	rec, collector := startReceiver(t)
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	appendConfig(t, cfg, fmt.Sprintf("tracing: {enabled: true, endpoint: %s, sampleRatio: 0, envoySampling: 5}\n", collector))
	coffee := "../examples/coffeebar/coffeebar.yaml"
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", coffee)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")

	tok := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "read:menu").stdout)
	const (
		w3cTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		b3Trace  = "80f198ee56343ba864fe8b2a57d3eff7"
		parent   = "00f067aa0ba902b7"
	)
	for trace, headers := range map[string][]string{
		w3cTrace: {"-H", "traceparent: 00-" + w3cTrace + "-" + parent + "-01"},
		b3Trace:  {"-H", "x-b3-traceid: " + b3Trace, "-H", "x-b3-spanid: " + parent, "-H", "x-b3-sampled: 1"},
	} {
		args := append([]string{"check", "--config", cfg, "--method", "GET", "--path", "/coffeebar/v1/menu", "-H", "Authorization: Bearer " + tok}, headers...)
		if o := tollgate(t, args...); o.code != 0 {
			t.Fatalf("check: %d %s %s", o.code, o.stdout, o.stderr)
		}
		check, _ := rec.checkSpan(t, trace)
		if hex.EncodeToString(check.GetParentSpanId()) != parent || check.GetKind() != otlptrace.Span_SPAN_KIND_SERVER {
			t.Errorf("trace %s: the Check's parent is %x (kind %v), want Envoy's span %s", trace, check.GetParentSpanId(), check.GetKind(), parent)
		}
		a := attrs(check)
		if a["tollgate.api"] != "coffeebar/v1" || a["tollgate.operation"] != "GET /menu" || a["tollgate.decision"] != "allow" || a["tollgate.stage.route_us"] == "" {
			t.Errorf("trace %s: attributes %v", trace, a)
		}
	}
	// A Check without trace context is not traced at sampleRatio 0.
	tollgate(t, "check", "--config", cfg, "--method", "GET", "--path", "/coffeebar/v1/menu", "-H", "Authorization: Bearer "+tok)
	time.Sleep(1500 * time.Millisecond) // the exporter's batch interval
	rec.mu.Lock()
	for _, s := range rec.spans {
		if tr := hex.EncodeToString(s.GetTraceId()); tr != w3cTrace && tr != b3Trace {
			t.Errorf("a span of trace %s, which no request carried", tr)
		}
	}
	if len(rec.service) == 0 || rec.service[0] != "tollgate" {
		t.Errorf("service names %v", rec.service)
	}
	rec.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := connectEnvoy(t, ctx, p.xds, "traced")
	e.waitFor("the collector's cluster", 20*time.Second, func(c config) bool { return strings.Contains(strings.Join(c.Clusters, " "), "tollgate_otlp") })
	e.mu.Lock()
	defer e.mu.Unlock()
	addr := e.clusters["tollgate_otlp"].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if fmt.Sprintf("%s:%d", addr.GetAddress(), addr.GetPortValue()) != collector {
		t.Errorf("the collector's cluster points at %v, want %s", addr, collector)
	}
	for name, l := range e.listeners {
		var hcm hcmv3.HttpConnectionManager
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
			t.Fatal(err)
		}
		var otel tracev3.OpenTelemetryConfig
		if err := hcm.GetTracing().GetProvider().GetTypedConfig().UnmarshalTo(&otel); err != nil {
			t.Fatalf("listener %s: no OpenTelemetry tracer: %v", name, err)
		}
		if otel.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "tollgate_otlp" || hcm.GetTracing().GetRandomSampling().GetValue() != 5 {
			t.Errorf("listener %s: tracer %v, sampling %v", name, otel.GetGrpcService(), hcm.GetTracing().GetRandomSampling())
		}
	}
}
