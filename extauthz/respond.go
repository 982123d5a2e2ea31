package extauthz

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
	"github.com/tollgate-gw/tollgate/internal/identity"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// MetadataNamespace is where Envoy's ext_authz filter puts the dynamic metadata of an
// allowed request, for access logs: %DYNAMIC_METADATA(envoy.filters.http.ext_authz:subject)%.
const MetadataNamespace = "envoy.filters.http.ext_authz"

// Response messages shared by every response. gRPC only reads them when it marshals, so
// sharing is safe, and it keeps the allow path to a handful of allocations.
var (
	okStatus           = &rpcstatus.Status{Code: int32(codes.OK)}
	retryAfterNotReady = setHeader("retry-after", "5")
)

// identityView is an identity rendered once for every response that carries it.
type identityView struct {
	headers []*corev3.HeaderValueOption
	fields  map[string]*structpb.Value
	sandbox bool
}

// removeEnvironment strips a client-sent environment header: only the enforcer picks the
// sandbox.
var removeEnvironment = []string{apimodel.EnvironmentHeader}

func newIdentityView(id *identity.Principal) *identityView {
	v := &identityView{fields: map[string]*structpb.Value{}}
	for _, h := range id.Headers {
		v.headers = append(v.headers, setHeader(h.Name, h.Value))
	}
	// A token issued for the sandbox (WSO2's "keytype": "SANDBOX") goes to the sandbox
	// endpoints.
	if kt, _ := id.Claims["keytype"].(string); strings.EqualFold(kt, "SANDBOX") {
		v.sandbox = true
		v.headers = append(v.headers, setHeader(apimodel.EnvironmentHeader, "sandbox"))
	}
	// The same rule as for backend headers: these values end up in access logs, where a
	// control character could forge a line.
	put := func(k, s string) {
		if s != "" && identity.Printable(s) {
			v.fields[k] = structpb.NewStringValue(s)
		}
	}
	put("subject", id.Subject)
	put("client_id", id.ClientID)
	put("issuer", id.Issuer)
	put("token_id", id.TokenID)
	put("auth_type", id.Kind.String())
	return v
}

func setHeader(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// memo keeps values made from long-lived keys (a cached token's *Principal is the same
// every time; an operation lives as long as its catalogue), so an allowed request renders
// nothing. It is emptied when it holds max values and refills from the requests that come.
type memo[K comparable, V any] struct {
	m   sync.Map // K → V
	n   atomic.Int64
	max int64
}

// of is k's value, made by mk and kept when keep is true.
func (c *memo[K, V]) of(k K, mk func(K) V, keep bool) V {
	if v, ok := c.m.Load(k); ok {
		return v.(V)
	}
	v := mk(k)
	if !keep {
		return v
	}
	if c.n.Add(1) > c.max {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(k, v)
	return v
}

// maxViews bounds the principals' views; maxRoutes the operations' values (a catalogue
// change makes new operations, and the old ones' values are dropped when the bound is hit).
const (
	maxViews  = 100000
	maxRoutes = 20000
)

// view is a principal's rendering; only verifiers' principals (JWT, opaque) are kept, the
// others are made per request and nothing would find them again.
func (e *Enforcer) view(p *identity.Principal) *identityView {
	return e.views.of(p, newIdentityView, p.Kind == identity.JWT || p.Kind == identity.Opaque)
}

// routeValues are an operation's dynamic metadata values: its API's id and its own key.
type routeValues struct{ api, operation *structpb.Value }

func (e *Enforcer) routeValues(a *apimodel.API, op *apimodel.Operation) routeValues {
	return e.routes.of(op, func(op *apimodel.Operation) routeValues {
		return routeValues{structpb.NewStringValue(a.ID()), structpb.NewStringValue(op.Key())}
	}, true)
}

func (e *Enforcer) respond(o *decision) *authv3.CheckResponse {
	if o.fault != nil {
		return e.deny(o)
	}
	ok := &authv3.OkHttpResponse{HeadersToRemove: removeEnvironment}
	fields := make(map[string]*structpb.Value, 8)
	if o.api != nil && o.op != nil {
		rv := e.routeValues(o.api, o.op)
		fields["api"], fields["operation"] = rv.api, rv.operation
	} else if o.api != nil {
		fields["api"] = structpb.NewStringValue(o.api.ID())
	}
	if o.principal != nil {
		view := e.view(o.principal)
		ok.Headers = view.headers
		for k, v := range view.fields {
			fields[k] = v
		}
		if view.sandbox {
			ok.HeadersToRemove = nil // the header is set, not removed
		}
		if e.cfg.RemoveAuthorization && o.api != nil {
			ok.HeadersToRemove = append([]string{lower(o.api.AuthHeader)}, ok.HeadersToRemove...)
		}
	} else {
		fields["auth_type"] = structpb.NewStringValue("none")
	}
	if k := o.stripKey; k != nil {
		switch k.In {
		case apimodel.KeyInHeader:
			ok.HeadersToRemove = append(append([]string(nil), ok.HeadersToRemove...), lower(k.Param))
		case apimodel.KeyInQuery:
			ok.QueryParametersToRemove = []string{k.Param}
		}
	}
	if e.cfg.RateLimitHeaders && o.limit.Counted {
		ok.ResponseHeadersToAdd = rateLimitHeaders(o.limit)
	}
	if o.newNonce {
		ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, setHeader("dpop-nonce", e.cfg.DPoP.Nonce()))
	}
	return &authv3.CheckResponse{
		Status:          okStatus,
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: &structpb.Struct{Fields: fields},
	}
}

// rateLimitHeaders tell the client where it stands with the most restrictive policy.
func rateLimitHeaders(d ratelimit.Decision) []*corev3.HeaderValueOption {
	l := d.Limit
	return []*corev3.HeaderValueOption{
		setHeader("ratelimit-limit", strconv.Itoa(l.Count)),
		setHeader("ratelimit-remaining", strconv.Itoa(d.Result.Remaining)),
		setHeader("ratelimit-reset", strconv.FormatInt(ratelimit.Seconds(d.Result.Reset), 10)),
		setHeader("ratelimit-policy", strconv.Itoa(l.Count)+";w="+strconv.FormatInt(int64(l.Period/time.Second), 10)+";burst="+strconv.Itoa(l.Burst)),
	}
}

// denyTemplate is a fault rendered once: its body and fixed headers.
type denyTemplate struct {
	fault  Fault
	body   string
	ctype  *corev3.HeaderValueOption
	status *rpcstatus.Status
}

func newDenyTemplate(f Fault, format Format) *denyTemplate {
	body, ctype := f.body(format)
	code := codes.PermissionDenied
	switch f.Status {
	case 401:
		code = codes.Unauthenticated
	case 503:
		code = codes.Unavailable
	}
	return &denyTemplate{fault: f, body: string(body), ctype: setHeader("content-type", ctype),
		status: &rpcstatus.Status{Code: int32(code), Message: f.Message}}
}

func (e *Enforcer) deny(o *decision) *authv3.CheckResponse {
	t := e.denies[*o.fault]
	if t == nil {
		if v, ok := e.made.Load(*o.fault); ok {
			t = v.(*denyTemplate)
		} else {
			t = newDenyTemplate(*o.fault, e.cfg.Format)
			e.made.Store(*o.fault, t)
		}
	}
	// What a validation found describes only its 400 (a 415 or 413 after a parameter's
	// violation keeps its own description); it differs from request to request, so such a
	// body is rendered each time, never kept.
	vs := o.violations
	if o.fault != &FaultBadRequest {
		vs = nil
	}
	rid, _ := header(o.h, "x-request-id")
	if body, ctype, ok := e.customBody(o.api, o.op, *o.fault, vs, rid); ok {
		own := *t
		own.body, own.ctype = string(body), setHeader("content-type", ctype)
		t = &own
	} else if len(vs) > 0 {
		own := *t
		body, _ := violationBody(*o.fault, e.cfg.Format, vs)
		own.body = string(body)
		t = &own
	}
	headers := []*corev3.HeaderValueOption{t.ctype}
	if wa := wwwAuthenticate(o, e.dpopAlgs); wa != "" {
		headers = append(headers, setHeader("www-authenticate", wa))
	}
	if o.dpop == "use_dpop_nonce" {
		// RFC 9449 §9: the nonce to put in the next proof.
		headers = append(headers, setHeader("dpop-nonce", e.cfg.DPoP.Nonce()))
	}
	if t.fault.Status == 429 {
		headers = append(headers, setHeader("retry-after", strconv.FormatInt(max(ratelimit.Seconds(o.limit.Result.RetryAfter), 1), 10)))
		if e.cfg.RateLimitHeaders {
			headers = append(headers, rateLimitHeaders(o.limit)...)
		}
	}
	switch {
	case t.fault.Status == 503 && o.limit.Result.RetryAfter > 0:
		headers = append(headers, setHeader("retry-after", strconv.FormatInt(max(ratelimit.Seconds(o.limit.Result.RetryAfter), 1), 10)))
	case t.fault.Status == 503:
		headers = append(headers, retryAfterNotReady)
	}
	if len(o.allow) > 0 {
		headers = append(headers, setHeader("allow", strings.Join(o.allow, ", ")))
	}
	return &authv3.CheckResponse{
		Status: t.status,
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(t.fault.Status)},
			Headers: headers,
			Body:    t.body,
		}},
	}
}

// wwwAuthenticate builds the RFC 6750 challenge for a bearer failure, RFC 9449 §7.1's for
// a DPoP one (algs: the proof algorithms taken).
func wwwAuthenticate(o *decision, dpopAlgs string) string {
	realm := "tollgate"
	if o.api != nil {
		realm = o.api.ID()
	}
	if o.dpop != "" && o.fault.Status == 401 {
		c := `DPoP realm="` + realm + `", algs="` + dpopAlgs + `"`
		if o.dpop != "challenge" {
			c += `, error="` + o.dpop + `"`
		}
		return c
	}
	switch o.challenge {
	case challengeBasic:
		if o.fault.Status == 401 {
			return `Basic realm="` + realm + `", charset="UTF-8"`
		}
		return ""
	case challengeAPIKey:
		if o.fault.Status == 401 && o.key != nil {
			return `APIKey realm="` + realm + `", in="` + string(o.key.In) + `", name=` + strconv.Quote(o.key.Param)
		}
		return ""
	case challengeNone:
		return ""
	}
	base := `Bearer realm="` + realm + `"`
	if o.fault == &FaultTwoCredentials {
		return base + `, error="invalid_request", error_description="one credential only"`
	}
	switch o.fault.Code {
	case FaultMissing.Code:
		return base
	case FaultInvalid.Code, FaultExpired.Code, FaultMalformed.Code, FaultInactive.Code: // 900901 covers revoked tokens too
		return base + `, error="invalid_token", error_description="` + o.fault.Message + `"`
	case FaultScope.Code:
		return base + `, error="insufficient_scope", scope=` + strconv.Quote(o.scope)
	}
	return ""
}

// customBody renders a fault in the API's own error format (x-tollgate-faults) or the
// gateway's (faults.template), when there is one; what a validation found is its
// description.
func (e *Enforcer) customBody(api *apimodel.API, op *apimodel.Operation, f Fault, vs []violation, requestID string) ([]byte, string, bool) {
	t := e.cfg.Template
	if api != nil && api.Faults != nil {
		t = api.Faults
	}
	if t == nil {
		return nil, "", false
	}
	if len(vs) > 0 {
		f.Description = describe(vs)
	}
	d := errfmt.Data{Code: f.Code, Message: f.Message, Description: f.Description, Status: f.Status, RequestID: requestID}
	if api != nil {
		d.API = api.ID()
	}
	if op != nil {
		d.Operation = op.Key()
	}
	b, err := t.Render(d)
	if err != nil {
		// errfmt.Parse ran the template on data of the same shape: not expected.
		e.log.Error("the error template failed; the shipped format answers", zap.Error(err))
		return nil, "", false
	}
	return b, t.ContentType, true
}
