package extauthz_test

import (
	"encoding/json"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

const shopAPI = `openapi: 3.0.3
info: {title: Shop, version: v1}
servers: [{url: "http://127.0.0.1:8081"}]
security: [{}]
paths:
  /items/{id}:
    get:
      x-tollgate-validation: {response: enforce}
      responses:
        "200":
          description: an item
          content:
            application/json:
              schema:
                type: object
                required: [id, status]
                properties:
                  id: {type: integer}
                  status: {type: string, enum: [available, pending, sold]}
        "204": {description: nothing}
        4XX: {description: a problem, content: {application/problem+json: {schema: {type: object, required: [title]}}}}
    put:
      x-tollgate-validation: {response: report}
      responses:
        "200": {description: stored, content: {application/json: {schema: {type: object, required: [id]}}}}
    delete:
      responses: {"204": {description: gone}}
`

type procRig struct {
	client  extprocv3.ExternalProcessorClient
	metrics *prometheus.Registry
}

func newProcRig(t *testing.T, cfg extauthz.Config) procRig {
	t.Helper()
	metrics := prometheus.NewRegistry()
	e, idp, reg := newEnforcerOn(t, tu.NewIdP(t, "https://idp.test"), cfg, 0, metrics, shopAPI)
	return procRig{serveRig(t, e, idp, reg).proc, metrics}
}

// responseHeaders is the message Envoy sends with a response's headers, raw values and the
// response attributes the control plane asks for.
func responseHeaders(status, ctype, details string, eos bool) *extprocv3.ProcessingRequest {
	hs := []*corev3.HeaderValue{{Key: ":status", RawValue: []byte(status)}, {Key: "server", RawValue: []byte("backend")}}
	if ctype != "" {
		hs = append(hs, &corev3.HeaderValue{Key: "content-type", RawValue: []byte(ctype)})
	}
	req := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
		Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: eos}}}
	if details != "" {
		attrs, _ := structpb.NewStruct(map[string]any{apimodel.CodeDetailsAttribute: details})
		req.Attributes = map[string]*structpb.Struct{extauthz.ProcessAttributesKey: attrs}
	}
	return req
}

func responseBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}
}

// exchange opens a stream for an operation (as the route's grpc_initial_metadata says) and
// sends the messages, returning Envoy's view of each answer.
func (r procRig) exchange(t *testing.T, op string, msgs ...*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	t.Helper()
	ctx := t.Context()
	if op != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, apimodel.ProcessAPIKey, "shop/v1", apimodel.ProcessOperationKey, op)
	}
	stream, err := r.client.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*extprocv3.ProcessingResponse
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp)
		if resp.GetImmediateResponse() != nil {
			break
		}
	}
	stream.CloseSend()
	return out
}

func TestResponseValidation(t *testing.T) {
	r := newProcRig(t, extauthz.Config{})
	valid := `{"id":7,"status":"sold"}`
	for _, c := range []struct {
		name, op string
		msgs     []*extprocv3.ProcessingRequest
		replaced bool
		want     string // in the 500's description
	}{
		{"valid headers then body", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("200", "application/json; charset=utf-8", "via_upstream", false), responseBody(valid)}, false, ""},
		{"a declared status without content", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("204", "", "via_upstream", true)}, false, ""},
		{"a status range", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("404", "application/problem+json", "via_upstream", false), responseBody(`{"title":"no such item"}`)}, false, ""},
		{"invalid body", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("200", "application/json", "via_upstream", false), responseBody(`{"id":"7","status":"hello"}`)}, true,
			"body /id: "},
		{"undeclared status", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("500", "text/html", "via_upstream", false)}, true,
			"status 500: the operation declares no such response"},
		{"undeclared content type", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("200", "text/html", "via_upstream", false)}, true,
			`content-type: \"text/html\" is not declared for the 200 response (application/json)`},
		{"missing content type", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("200", "", "via_upstream", false)}, true, "content-type: missing"},
		{"not JSON", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("200", "application/json", "via_upstream", false), responseBody(`<html>`)}, true, "body: "},
		// Only the response headers of a reply the gateway made (a deny, a local reply):
		// not the backend's, not checked.
		{"a local reply", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("401", "application/json", "ext_authz_denied", false)}, false, ""},
		{"report mode lets it through", "PUT /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("200", "application/json", "via_upstream", false), responseBody(`{}`)}, false, ""},
		{"an operation without response validation", "DELETE /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("500", "text/plain", "via_upstream", false), responseBody("oops")}, false, ""},
		{"a stream without metadata", "", []*extprocv3.ProcessingRequest{responseHeaders("599", "", "", false)}, false, ""},
		// Longer than Envoy buffers (BUFFERED_PARTIAL sends what it holds, not the end).
		{"a body longer than Envoy buffers", "GET /items/{id}", []*extprocv3.ProcessingRequest{responseHeaders("200", "application/json", "via_upstream", false),
			{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(`{"id":"not checked`), EndOfStream: false}}}}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := r.exchange(t, c.op, c.msgs...)
			last := out[len(out)-1]
			imm := last.GetImmediateResponse()
			if (imm != nil) != c.replaced {
				t.Fatalf("replaced: %v, want %v (%v)", imm != nil, c.replaced, last)
			}
			if !c.replaced {
				if len(out) != len(c.msgs) {
					t.Fatalf("%d answers to %d messages", len(out), len(c.msgs))
				}
				for i, resp := range out {
					if (c.msgs[i].GetResponseHeaders() != nil) != (resp.GetResponseHeaders() != nil) ||
						(c.msgs[i].GetResponseBody() != nil) != (resp.GetResponseBody() != nil) {
						t.Errorf("answer %d %v to %v", i, resp, c.msgs[i])
					}
					if mut := resp.GetResponseHeaders().GetResponse().GetHeaderMutation(); mut != nil || resp.GetResponseBody().GetResponse().GetBodyMutation() != nil {
						t.Errorf("a valid response was changed: %v", resp)
					}
				}
				return
			}
			if imm.GetStatus().GetCode() != 500 {
				t.Errorf("status %v", imm.GetStatus())
			}
			var f struct {
				Fault struct {
					Code                 int
					Message, Description string
				}
			}
			if err := json.Unmarshal(imm.GetBody(), &f); err != nil || f.Fault.Code != 500 || f.Fault.Message != "Bad Response" {
				t.Fatalf("body %s: %v", imm.GetBody(), err)
			}
			if want := strings.ReplaceAll(c.want, `\"`, `"`); !strings.Contains(f.Fault.Description, want) {
				t.Errorf("description %q lacks %q", f.Fault.Description, want)
			}
			if strings.Contains(f.Fault.Description, "hello") || strings.Contains(f.Fault.Description, "html>") {
				t.Errorf("the description repeats the backend's body: %s", f.Fault.Description)
			}
			if h := imm.GetHeaders().GetSetHeaders(); len(h) != 1 || h[0].GetHeader().GetKey() != "content-type" || string(h[0].GetHeader().GetRawValue()) != "application/json" {
				t.Errorf("headers %v", h)
			}
		})
	}
	for result, want := range map[string]float64{"valid": 3, "replaced": 5, "reported": 1, "unchecked": 1} {
		if got := testCounter(t, r.metrics, "tollgate_response_validations_total", result); got != want {
			t.Errorf("%s responses counted %v, want %v", result, got, want)
		}
	}
}

func TestResponseValidationProblemDetails(t *testing.T) {
	r := newProcRig(t, extauthz.Config{Format: extauthz.FormatProblem})
	out := r.exchange(t, "GET /items/{id}", responseHeaders("200", "application/json", "via_upstream", false), responseBody(`{"status":1}`))
	imm := out[len(out)-1].GetImmediateResponse()
	var p struct {
		Status int
		Title  string
		Errors []struct{ In, Pointer, Detail string }
	}
	if err := json.Unmarshal(imm.GetBody(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != 500 || p.Title != "Bad Response" || len(p.Errors) != 3 || p.Errors[0].In != "body" || p.Errors[0].Pointer != "/status" ||
		p.Errors[2].Pointer != "" || !strings.Contains(p.Errors[2].Detail, "required properties missing: id") {
		t.Errorf("problem %s", imm.GetBody())
	}
}

func testCounter(t *testing.T, g prometheus.Gatherer, name, result string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == name && l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
