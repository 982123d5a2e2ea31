package extauthz_test

import (
	"io"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/internal/tracing"
)

const (
	traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanID  = "00f067aa0ba902b7"
)

// tracedEnforcer is the coffeebar enforcer with a tracer whose spans are recorded.
func tracedEnforcer(t testing.TB, sampler trace.Sampler) (*extauthz.Enforcer, *tu.IdP, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec), trace.WithSampler(sampler))
	e, idp, _ := newEnforcer(t, extauthz.Config{Tracer: tp.Tracer("test"), Propagator: tracing.Propagator}, 0, example(t, "coffeebar"))
	return e, idp, rec
}

// A Check continues the trace Envoy sent in the request's headers — W3C traceparent or
// B3, in the headers map or raw — with a child span per stage it ran and its decision.
func TestACheckContinuesEnvoysTrace(t *testing.T) {
	for name, headers := range map[string]map[string]string{
		"traceparent": {"traceparent": "00-" + traceID + "-" + spanID + "-01"},
		"b3 multi":    {"x-b3-traceid": traceID, "x-b3-spanid": spanID, "x-b3-sampled": "1"},
		"b3 single":   {"b3": traceID + "-" + spanID + "-1"},
	} {
		for _, raw := range []bool{false, true} {
			t.Run(name, func(t *testing.T) {
				defer extauthz.SetSlowStage(0)()
				e, idp, rec := tracedEnforcer(t, trace.ParentBased(trace.NeverSample()))
				headers["authorization"] = "Bearer " + idp.Sign("rsa", "RS256", idp.Claims(aud, "read:menu"))
				req := extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu", Headers: headers,
					ContextExtensions: map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "GET /menu"}})
				if raw {
					req = rawHeaders(req)
				}
				if resp, _ := e.Check(t.Context(), req); resp.GetOkResponse() == nil {
					t.Fatalf("denied: %v", resp)
				}
				spans := rec.Ended()
				var check trace.ReadOnlySpan
				stages := map[string]bool{}
				for _, s := range spans {
					if s.Name() == "Check" {
						check = s
					} else {
						stages[s.Name()] = true
					}
				}
				if check == nil {
					t.Fatalf("no Check span among %d", len(spans))
				}
				if check.SpanContext().TraceID().String() != traceID || check.Parent().SpanID().String() != spanID || !check.Parent().IsRemote() {
					t.Errorf("Check span trace %s parent %s, want %s %s", check.SpanContext().TraceID(), check.Parent().SpanID(), traceID, spanID)
				}
				for _, st := range []string{"route", "peer", "authenticate", "authorize", "revocation", "throttle", "validate"} {
					if !stages[st] {
						t.Errorf("no %s span (every stage is one with SlowStage 0): %v", st, stages)
					}
				}
				for _, s := range spans {
					if s.Name() != "Check" && s.Parent().SpanID() != check.SpanContext().SpanID() {
						t.Errorf("stage %s is not the Check's child", s.Name())
					}
				}
				attrs := map[string]string{}
				for _, a := range check.Attributes() {
					attrs[string(a.Key)] = a.Value.String()
				}
				if attrs["tollgate.api"] != "coffeebar/v1" || attrs["tollgate.operation"] != "GET /menu" || attrs["tollgate.decision"] != "allow" {
					t.Errorf("attributes %v", attrs)
				}
				// The token was verified for the first time: well over a microsecond.
				if _, ok := attrs["tollgate.stage.authenticate_us"]; !ok {
					t.Errorf("no time for the authenticate stage: %v", attrs)
				}
			})
		}
	}
}

// Envoy's span was not sampled, or there is none and the ratio says no: no span is
// recorded.
func TestAnUnsampledCheckRecordsNothing(t *testing.T) {
	e, idp, rec := tracedEnforcer(t, trace.ParentBased(trace.NeverSample()))
	for _, h := range []map[string]string{{"traceparent": "00-" + traceID + "-" + spanID + "-00"}, {}} {
		h["authorization"] = "Bearer " + idp.Sign("rsa", "RS256", idp.Claims(aud, "read:menu"))
		e.Check(t.Context(), extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu", Headers: h}))
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded", n)
	}
}

// An ext_proc stream is a span of the trace its gRPC metadata carries (Envoy's gRPC client
// sends its span's context there), naming its operation.
func TestAProcessorStreamJoinsTheTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	r := newProcRig(t, extauthz.Config{Tracer: tp.Tracer("test"), Propagator: tracing.Propagator})
	ctx := metadata.AppendToOutgoingContext(t.Context(), apimodel.ProcessAPIKey, "shop/v1", apimodel.ProcessOperationKey, "GET /items/{id}",
		"traceparent", "00-"+traceID+"-"+spanID+"-01")
	stream, err := r.client.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(responseHeaders("204", "", "via_upstream", true)); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("the stream ended with %v", err)
	}
	tu.Eventually(t, "the stream's span", func() bool { return len(rec.Ended()) == 1 })
	s := rec.Ended()[0]
	if s.Name() != "ProcessResponse" || s.SpanContext().TraceID().String() != traceID || s.Parent().SpanID().String() != spanID {
		t.Errorf("span %s trace %s parent %s", s.Name(), s.SpanContext().TraceID(), s.Parent().SpanID())
	}
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["tollgate.operation"] != "GET /items/{id}" {
		t.Errorf("attributes %v", attrs)
	}
}
