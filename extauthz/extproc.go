package extauthz

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// ProcessAttributesKey is where Envoy puts the response attributes the control plane asks
// for (apimodel.CodeDetailsAttribute).
const ProcessAttributesKey = "envoy.filters.http.ext_proc"

// FaultBadResponse replaces a response that does not match the definition (MGW 3.x's).
var FaultBadResponse = Fault{500, 500, "Bad Response", "The backend's response does not match the API's definition", ""}

// Processor is the ext_proc service: it checks a backend's responses against their
// operation's declared responses (status, content type, JSON body). Envoy's ext_proc
// filter calls it only on the routes of operations with response validation on, with
// exactly the processing that operation needs: the response headers, and the buffered body
// when a declared response has a JSON schema.
type Processor struct {
	e *Enforcer
	// reported limits the log of report mode to one line per operation every
	// reportEvery: the counter has every one.
	reported sync.Map // *apimodel.Operation → time.Time
}

const reportEvery = 10 * time.Second

// responseCheck is one stream's state.
type responseCheck struct {
	api  *apimodel.API
	op   *apimodel.Operation
	rule *apimodel.Response
	// media is the declared type the response's Content-Type falls under, when its body
	// is to be checked against a schema.
	media      *apimodel.Media
	violations []violation
	requestID  string
}

// Process implements the ext_proc service. A stream it cannot place (no operation in its
// metadata, an operation that does not validate responses) is let through unchanged.
func (p *Processor) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	c := responseCheck{}
	p.place(stream, &c)
	if p.e.cfg.Tracer != nil {
		defer p.traceProcess(stream.Context(), &c).End()
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		// Every message gets its answer until Envoy ends the stream: a stream closed
		// early would leave the filter waiting for answers it then never gets.
		if err := stream.Send(p.step(&c, req)); err != nil {
			return err
		}
	}
}

// place finds the stream's operation from its gRPC metadata.
func (p *Processor) place(stream extprocv3.ExternalProcessor_ProcessServer, c *responseCheck) {
	md, _ := metadata.FromIncomingContext(stream.Context())
	api, op := first(md, apimodel.ProcessAPIKey), first(md, apimodel.ProcessOperationKey)
	if api == "" {
		return
	}
	c.api, c.op = p.e.apis.Load().Operation(api, op)
	if c.op != nil && (c.op.Validation == nil || !c.op.Validation.Response.On()) {
		c.op = nil
	}
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

var (
	continueResponseHeaders = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
	continueResponseBody    = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
	continueRequestHeaders  = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
	continueRequestBody     = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
	continueRequestTrailers = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	continueResponseTrailer = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
)

// step answers one message.
func (p *Processor) step(c *responseCheck, req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		if c.op == nil || !fromUpstream(req) {
			c.op = nil // a gateway's own answer (a deny, a local reply) is not the backend's
			return continueResponseHeaders
		}
		c.requestID = requestID(req)
		c.headers(r.ResponseHeaders)
		if c.media != nil && !r.ResponseHeaders.GetEndOfStream() {
			return continueResponseHeaders // the body comes next
		}
		return p.decide(c, continueResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		if c.op == nil || c.media == nil {
			return continueResponseBody
		}
		if !r.ResponseBody.GetEndOfStream() {
			// Longer than Envoy buffers: the body cannot be checked whole, and goes on.
			c.op = nil
			p.e.m.responses.unchecked.Inc()
			return continueResponseBody
		}
		body := r.ResponseBody.GetBody()
		if !c.media.Schema.Valid(body) {
			for _, v := range c.media.Schema.Validate(body) {
				c.violate("body", v.Pointer, v.Reason)
			}
		}
		return p.decide(c, continueResponseBody)
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return continueRequestHeaders
	case *extprocv3.ProcessingRequest_RequestBody:
		return continueRequestBody
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return continueRequestTrailers
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return continueResponseTrailer
	}
	return continueResponseHeaders
}

// fromUpstream reports whether the backend made the response (Envoy's
// response.code_details is via_upstream); without the attribute, it is taken to be.
func fromUpstream(req *extprocv3.ProcessingRequest) bool {
	attrs := req.GetAttributes()[ProcessAttributesKey]
	v, ok := attrs.GetFields()[apimodel.CodeDetailsAttribute]
	return !ok || v.GetStringValue() == "via_upstream"
}

// requestID is the request's id among the response attributes, if Envoy sent it.
func requestID(req *extprocv3.ProcessingRequest) string {
	return req.GetAttributes()[ProcessAttributesKey].GetFields()[apimodel.RequestIDAttribute].GetStringValue()
}

// headers checks the status and content type, and picks the schema the body is checked
// against.
func (c *responseCheck) headers(h *extprocv3.HttpHeaders) {
	var code int
	var ctype string
	var hasType bool
	for _, hv := range h.GetHeaders().GetHeaders() {
		switch hv.GetKey() {
		case ":status":
			code, _ = strconv.Atoi(headerText(hv))
		case "content-type":
			ctype, hasType = headerText(hv), true
		case "x-request-id":
			if c.requestID == "" {
				c.requestID = headerText(hv)
			}
		}
	}
	c.rule = c.op.Validation.FindResponse(code)
	if c.rule == nil {
		c.violate("status", strconv.Itoa(code), "the operation declares no such response")
		return
	}
	if len(c.rule.Media) == 0 {
		return // a response without content: its body is not looked at
	}
	if !hasType {
		if !h.GetEndOfStream() {
			c.violate("content-type", "", "missing; the "+c.rule.Status+" response declares "+mediaList(c.rule.Media))
		}
		return
	}
	m := apimodel.FindMedia(c.rule.Media, ctype)
	if m == nil {
		c.violate("content-type", "", strconv.Quote(apimodel.MediaType(ctype))+" is not declared for the "+c.rule.Status+" response ("+mediaList(c.rule.Media)+")")
		return
	}
	if m.Schema != nil {
		c.media = m
	}
}

func headerText(hv *corev3.HeaderValue) string {
	if v := hv.GetValue(); v != "" {
		return v
	}
	return string(hv.GetRawValue())
}

func mediaList(ms []apimodel.Media) string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Type
	}
	return strings.Join(names, ", ")
}

func (c *responseCheck) violate(in, name, reason string) {
	c.violations = addViolation(c.violations, violation{in, name, reason})
}

// decide ends the check: a valid response goes on (cont); an invalid one is replaced with
// a 500 (enforce) or goes on, counted and logged (report).
func (p *Processor) decide(c *responseCheck, cont *extprocv3.ProcessingResponse) *extprocv3.ProcessingResponse {
	if len(c.violations) == 0 {
		p.e.m.responses.valid.Inc()
		return cont
	}
	p.report(c)
	if c.op.Validation.Response != apimodel.ResponseEnforce {
		p.e.m.responses.reported.Inc()
		return cont
	}
	p.e.m.responses.replaced.Inc()
	body, ctype, ok := p.e.customBody(c.api, c.op, FaultBadResponse, c.violations, c.requestID)
	if !ok {
		body, ctype = violationBody(FaultBadResponse, p.e.cfg.Format, c.violations)
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode_InternalServerError},
		Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setRawHeader("content-type", ctype)}},
		Body:    body,
		Details: "tollgate_response_validation",
	}}}
}

// setRawHeader is a header for ext_proc's mutations, which Envoy reads from raw_value.
func setRawHeader(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
}

// report logs an invalid response: API, operation and the first violation, never the body;
// at most once per operation every reportEvery.
func (p *Processor) report(c *responseCheck) {
	now := time.Now()
	if last, ok := p.reported.Load(c.op); ok && now.Sub(last.(time.Time)) < reportEvery {
		return
	}
	p.reported.Store(c.op, now)
	p.e.log.Warn("a response does not match the API's definition",
		zap.String("api", c.api.ID()), zap.String("operation", c.op.Key()),
		zap.String("mode", string(c.op.Validation.Response)), zap.String("violation", c.violations[0].String()),
		zap.Int("violations", len(c.violations)))
}

// Processor is the enforcer's ext_proc service.
func (e *Enforcer) Processor() *Processor { return &Processor{e: e} }
