// Package extauthz is the enforcer: an Envoy ext_authz (envoy.service.auth.v3) gRPC service
// that decides every request. The pipeline is identify the route → authenticate (the
// operation's security requirements: any alternative, all schemes in it) → authorize
// (scopes) → respond; it is the one place where decisions become CheckResponses.
package extauthz

import (
	"cmp"
	"context"
	"errors"
	"net/url"
	"path"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/policies/apikey"
	"github.com/tollgate-gw/tollgate/policies/basic"
	"github.com/tollgate-gw/tollgate/policies/dpop"
	"github.com/tollgate-gw/tollgate/policies/jwt"
	"github.com/tollgate-gw/tollgate/policies/mtls"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/policies/revocation"
)

// Catalog gives the APIs in force; internal/catalog.Registry implements it.
type Catalog interface {
	Load() *apimodel.Catalog
}

// TokenVerifier checks bearer tokens; policies/jwt.Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*jwt.Identity, error)
}

// ProofChecker checks DPoP proofs; policies/dpop.Checker implements it.
type ProofChecker interface {
	Verify(ctx context.Context, proof string, r dpop.Request) (dpop.Proof, error)
	Algorithms() []string
}

// RevocationList says whether a verified token has been revoked since it was issued;
// policies/revocation.Set implements it.
type RevocationList interface {
	Revoked(t revocation.Token) bool
}

// Config configures the enforcer.
type Config struct {
	// Loaded, if set, reports whether the state needed to decide (the APIs, the revoked
	// tokens) has been loaded, from etcd or from the local copy. Until it has, every
	// request is denied 503 (FaultNotReady): an enforcer that knows nothing must not say
	// "no such resource", nor let a revoked token through.
	Loaded func() bool
	// Format of deny bodies: "wso2" (default) or "problem".
	Format Format
	// RemoveAuthorization strips the credential header before the request goes to the backend.
	RemoveAuthorization bool
	// Revocations, if set, is checked for every token, cached or not.
	Revocations RevocationList
	// Opaque, if set, validates bearer tokens that are not JWTs (by introspection).
	Opaque TokenVerifier
	// Certificates checks client certificates (mutual TLS); Users checks basic credentials;
	// APIKeys checks API keys. Each may be nil: its schemes then always fail.
	Certificates CertVerifier
	Users        BasicUsers
	APIKeys      APIKeys
	// ForwardAPIKey leaves an API key sent in a header or query parameter in the request
	// to the backend; by default it is removed.
	ForwardAPIKey bool
	// Throttle, if set, decides "how often" for every request that passed authentication.
	Throttle Throttler
	// RateLimitHeaders adds RateLimit-Limit/Remaining/Reset/Policy to throttled responses'
	// allowed requests.
	RateLimitHeaders bool
	// DPoP checks RFC 9449 proofs; nil: the DPoP scheme is not taken (DPoP-bound tokens
	// are then always refused).
	DPoP ProofChecker
	// ApplicationTierClaim and SubscriptionTierClaim name the token claims carrying the
	// application's and the subscription's throttling policy (default application_tier,
	// subscription_tier).
	ApplicationTierClaim, SubscriptionTierClaim string
}

// CertVerifier checks client certificates; policies/mtls.Verifier implements it.
type CertVerifier interface {
	Verify(urlEncodedPEM, chain string) (*mtls.Identity, error)
	FromXFCC() bool
}

// BasicUsers checks basic credentials; policies/basic.Users implements it.
type BasicUsers interface {
	Check(authorization string) (user string, err error)
}

// APIKeys checks API keys; policies/apikey.Set implements it.
type APIKeys interface {
	Check(key, api string, now time.Time) (apikey.Record, error)
}

// Throttler decides how often; policies/ratelimit.Engine implements it.
type Throttler interface {
	Decide(ctx context.Context, r ratelimit.Request) ratelimit.Decision
}

// Enforcer decides requests. It is safe for concurrent use.
type Enforcer struct {
	authv3.UnimplementedAuthorizationServer

	apis   Catalog
	tokens TokenVerifier
	cfg    Config
	log    *zap.Logger
	m      *metrics
	denies map[Fault]*denyTemplate
	// dpopAlgs lists the DPoP proof algorithms for the challenge.
	dpopAlgs string
}

// New builds an enforcer. tokens may be nil when no issuer is configured: bearer
// requirements then always fail.
func New(cfg Config, apis Catalog, tokens TokenVerifier, log *zap.Logger, reg prometheus.Registerer) *Enforcer {
	if cfg.Format == "" {
		cfg.Format = FormatWSO2
	}
	if cfg.ApplicationTierClaim == "" {
		cfg.ApplicationTierClaim = "application_tier"
	}
	if cfg.SubscriptionTierClaim == "" {
		cfg.SubscriptionTierClaim = "subscription_tier"
	}
	e := &Enforcer{apis: apis, tokens: tokens, cfg: cfg, log: log, m: newMetrics(reg), denies: map[Fault]*denyTemplate{}}
	if cfg.DPoP != nil {
		e.dpopAlgs = strings.Join(cfg.DPoP.Algorithms(), " ")
	}
	for _, f := range []Fault{FaultBasicInvalid, FaultThrottledAPI, FaultThrottledResource, FaultThrottledApplication, FaultThrottledSubscription, FaultThrottledCustom, FaultPolicyNotFound,
		FaultInvalid, FaultRevoked, FaultInactive, FaultMissing, FaultMissingBasic, FaultMissingAPIKey, FaultMissingCertificate, FaultExpired, FaultNoAPI, FaultNoResource, FaultScope, FaultMalformed, FaultUnsupported, FaultInternal, FaultNotReady, FaultBadBytes, FaultTwoCredentials, FaultMethodNotAllowed} {
		e.denies[f] = newDenyTemplate(f, cfg.Format)
	}
	return e
}

// Attach precomputes what an allowed response needs from an identity; pass it as
// jwt.Config.Attach so it runs once per verified token instead of once per request.
func Attach(id *jwt.Identity) any { return newIdentityView(id) }

// outcome is a decision before it becomes a CheckResponse.
type outcome struct {
	stripKey *apimodel.Scheme // an API key to remove before the backend
	basic    bool             // the challenge is Basic
	dpop     string           // the challenge is DPoP: "" no, "challenge", or its error code
	fault    *Fault           // nil: allowed
	limit    ratelimit.Decision
	api      *apimodel.API
	op       *apimodel.Operation
	id       *jwt.Identity
	scope    string   // the first missing scope, for WWW-Authenticate
	allow    []string // for a 405: the methods the path takes
	reason   string   // for the debug log and never for the client
}

// Check implements the ext_authz service. It always answers with a CheckResponse: a
// cancelled or malformed request is denied, never failed with a bare gRPC error.
func (e *Enforcer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	o := e.decide(ctx, req)
	resp := e.respond(&o)
	e.m.observe(o.fault, time.Since(start))
	if ce := e.log.Check(zapcore.DebugLevel, "decision"); ce != nil {
		e.logDecision(ce, req, &o)
	}
	return resp, nil
}

func (e *Enforcer) decide(ctx context.Context, req *authv3.CheckRequest) outcome {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	if h == nil {
		return outcome{fault: &FaultNoAPI, reason: "no HTTP attributes in the CheckRequest"}
	}
	if e.cfg.Loaded != nil && !e.cfg.Loaded() {
		return outcome{fault: &FaultNotReady, reason: "APIs or revocations not loaded yet"}
	}
	if hadInvalidUTF8(req) {
		return outcome{fault: &FaultBadBytes, reason: "bytes that are not UTF-8 in a string field"}
	}
	if f, why := checkRawHeaders(h); f != nil {
		return outcome{fault: f, reason: why}
	}
	cat := e.apis.Load()
	var api *apimodel.API
	var op *apimodel.Operation
	if ext := attrs.GetContextExtensions(); ext[apimodel.RouteKeyAPI] != "" {
		api, op = cat.Operation(ext[apimodel.RouteKeyAPI], ext[apimodel.RouteKeyOperation])
	} else {
		api, op = cat.Match(h.GetHost(), h.GetMethod(), requestPath(h))
	}
	if op == nil {
		if api != nil && attrs.GetContextExtensions()[apimodel.RouteKeyAPI] == "" {
			if allow := cat.Methods(api, requestPath(h)); len(allow) > 0 {
				return outcome{fault: &FaultMethodNotAllowed, api: api, allow: allow, reason: "the path takes " + strings.Join(allow, ", ")}
			}
		}
		if api == nil {
			return outcome{fault: &FaultNoAPI, reason: "no API matches"}
		}
		return outcome{fault: &FaultNoResource, api: api, reason: "no operation matches"}
	}
	o := outcome{api: api, op: op}
	if twoCredentials(h, api) {
		o.fault, o.reason = &FaultTwoCredentials, "more than one credential in the authorization header"
		return o
	}
	if ctx.Err() != nil {
		o.fault, o.reason = &FaultInternal, "request cancelled"
		return o
	}
	c := &credentials{e: e, ctx: ctx, attrs: attrs, h: h, api: api}
	authenticated := false
	switch api.MutualTLS {
	case "required":
		r := c.peer()
		if r.fault != nil {
			o.fault, o.reason = r.fault, r.reason
			return o
		}
		o.id = r.id
	case "optional":
		if r := c.peer(); r.fault == nil {
			o.id, authenticated = r.id, true // a trusted certificate is enough
		}
	}
	if !authenticated && !op.Open() {
		e.authenticate(c, &o)
	}
	if o.fault == nil && c.usedKey != nil && !e.cfg.ForwardAPIKey {
		o.stripKey = c.usedKey
	}
	if o.fault == nil && e.cfg.Throttle != nil {
		e.throttle(ctx, attrs, h, &o)
	}
	return o
}

// throttle asks the throttling policies that apply to the request.
func (e *Enforcer) throttle(ctx context.Context, attrs *authv3.AttributeContext, h *authv3.AttributeContext_HttpRequest, o *outcome) {
	r := ratelimit.Request{API: o.api.ID(), Operation: o.op.Key(), APIPolicy: o.api.Throttling, OpPolicy: o.op.Throttling,
		IP: attrs.GetSource().GetAddress().GetSocketAddress().GetAddress()}
	if id := o.id; id != nil {
		r.ClientID, r.Subject, r.Claims = id.ClientID, id.Subject, id.Claims
		r.AppPolicy, _ = id.Claims[e.cfg.ApplicationTierClaim].(string)
		r.SubPolicy, _ = id.Claims[e.cfg.SubscriptionTierClaim].(string)
		if r.AppPolicy == "" {
			r.AppPolicy = wso2ApplicationTier(id.Claims)
		}
		if r.SubPolicy == "" {
			r.SubPolicy = wso2SubscriptionTier(id.Claims, o.api)
		}
	}
	if r.APIPolicy == "" && r.OpPolicy == "" && r.AppPolicy == "" && r.SubPolicy == "" {
		return // no policy applies: nothing to count
	}
	r.Headers = headerMap(h) // for policies counted by a header
	d := e.cfg.Throttle.Decide(ctx, r)
	o.limit = d
	if d.Allowed {
		return
	}
	if d.NotFound {
		o.fault, o.reason = &FaultPolicyNotFound, "throttling policy "+d.Policy+" is not defined"
		return
	}
	o.reason = "throttled by " + d.Policy
	o.fault = &FaultThrottledCustom
	if f := throttleFaults[d.Level]; f != nil {
		o.fault = f
	}
}

// wso2ApplicationTier reads the application's tier from a WSO2 API Manager token:
// "application": {"tier": "10PerMin", ...}.
func wso2ApplicationTier(claims map[string]any) string {
	app, _ := claims["application"].(map[string]any)
	tier, _ := app["tier"].(string)
	return tier
}

// wso2SubscriptionTier reads the subscription tier of api from a WSO2 API Manager token:
// the "subscribedAPIs" entry with the API's version and its name (title) or context.
func wso2SubscriptionTier(claims map[string]any, api *apimodel.API) string {
	subs, _ := claims["subscribedAPIs"].([]any)
	for _, s := range subs {
		sub, _ := s.(map[string]any)
		name, _ := sub["name"].(string)
		context, _ := sub["context"].(string)
		version, _ := sub["version"].(string)
		if version != api.Version {
			continue
		}
		if strings.EqualFold(name, api.Title) || strings.EqualFold(name, api.Name) ||
			strings.TrimSuffix(context, "/") == strings.TrimSuffix(api.BasePath, "/") {
			tier, _ := sub["subscriptionTier"].(string)
			return tier
		}
	}
	return ""
}

// throttleFaults is the fault of a throttling deny by level.
var throttleFaults = map[ratelimit.Level]*Fault{
	ratelimit.LevelAPI:          &FaultThrottledAPI,
	ratelimit.LevelResource:     &FaultThrottledResource,
	ratelimit.LevelApplication:  &FaultThrottledApplication,
	ratelimit.LevelSubscription: &FaultThrottledSubscription,
}

// tokenFaults is the fault of a refused token by kind; any other kind is 900901.
var tokenFaults = map[jwt.Kind]*Fault{
	jwt.Malformed:   &FaultMalformed,
	jwt.Expired:     &FaultExpired,
	jwt.Inactive:    &FaultInactive,
	jwt.Unavailable: &FaultInternal,
}

// authenticate evaluates the operation's security requirements: the first alternative whose
// schemes all pass allows the request. Otherwise the most telling failure is reported: a
// bad credential over a missing scope over a missing credential.
func (e *Enforcer) authenticate(c *credentials, o *outcome) {
	var best *Fault
	bestRank := 0
	rank := func(r credResult) int {
		if r.missing {
			return 1
		}
		switch r.fault.Code {
		case FaultMissing.Code:
			return 1
		case FaultUnsupported.Code:
			return 2
		case FaultScope.Code:
			return 3
		}
		return 4
	}
	fail := func(r credResult, scope string) {
		if best == nil || rank(r) > bestRank {
			best, bestRank, o.reason, o.scope, o.basic, o.dpop = r.fault, rank(r), r.reason, scope, r.basic, r.dpop
		}
	}
	for _, req := range o.op.Security {
		ok := true
		var id *jwt.Identity
		for _, use := range req {
			r := c.check(o.api.Schemes[use.Scheme])
			if r.fault != nil {
				fail(r, "")
				ok = false
				break
			}
			if missing := missingScope(r.id, use); missing != "" {
				fail(credResult{fault: &FaultScope, reason: "token lacks scope " + missing}, missing)
				o.id = r.id
				ok = false
				break
			}
			// The identity that won: a token's over a key's over a password's over a certificate's.
			if id == nil || authRank[r.id.AuthType] > authRank[id.AuthType] {
				id = r.id
			}
		}
		if ok {
			o.fault, o.id = nil, id
			return
		}
	}
	if best == nil {
		best = &FaultInternal
	}
	o.fault = best
	if o.fault.Code != FaultScope.Code {
		o.id = nil
	}
}

var authRank = map[string]int{"mtls": 1, "basic": 2, "apikey": 3, "opaque": 4, "jwt": 4}

// credResult is one credential's check: an identity, or the fault it earns.
type credResult struct {
	id      *jwt.Identity
	fault   *Fault
	reason  string
	basic   bool   // the challenge is Basic, not Bearer
	dpop    string // the challenge is DPoP (outcome.dpop)
	missing bool   // nothing was presented (ranks below a bad credential)
}

// credentials checks each kind of credential a request carries at most once.
type credentials struct {
	e     *Enforcer
	ctx   context.Context
	attrs *authv3.AttributeContext
	h     *authv3.AttributeContext_HttpRequest
	api   *apimodel.API

	bearer, cert, basic *credResult
	keys                map[string]*credResult
	usedKey             *apimodel.Scheme // the API key scheme that passed, to strip the key
}

func (c *credentials) check(s apimodel.Scheme) credResult {
	memo := func(slot **credResult, f func() credResult) credResult {
		if *slot == nil {
			r := f()
			*slot = &r
		}
		return **slot
	}
	switch s.Type {
	case apimodel.SchemeBearer:
		return memo(&c.bearer, func() credResult {
			t := c.e.bearer(c.ctx, c.h, c.api)
			if t.fault == nil && t.id.CertThumbprint == "" && c.api.CertificateBound {
				return credResult{fault: &FaultInvalid, reason: "this API takes only certificate-bound tokens"}
			}
			if t.fault == nil && t.id.CertThumbprint != "" {
				// RFC 8705: a certificate-bound token goes only with its certificate.
				if cr := c.peer(); cr.fault != nil || cr.id.CertThumbprint != t.id.CertThumbprint {
					return credResult{fault: &FaultInvalid, reason: "certificate-bound token presented without its certificate"}
				}
			}
			return credResult{id: t.id, fault: t.fault, reason: t.reason, dpop: t.dpop, missing: t.fault == &FaultMissing}
		})
	case apimodel.SchemeMutualTLS:
		return c.peer()
	case apimodel.SchemeBasic:
		return memo(&c.basic, c.basicAuth)
	case apimodel.SchemeAPIKey:
		if c.keys == nil {
			c.keys = map[string]*credResult{}
		}
		slot := c.keys[s.Name]
		r := memo(&slot, func() credResult { return c.apiKey(s) })
		c.keys[s.Name] = slot
		return r
	}
	return credResult{fault: &FaultUnsupported, reason: "unknown scheme " + s.Name}
}

// peer checks the client certificate Envoy forwarded.
func (c *credentials) peer() credResult {
	if c.cert != nil {
		return *c.cert
	}
	v := c.e.cfg.Certificates
	pem := c.attrs.GetSource().GetCertificate()
	// The chain Envoy sends in XFCC (Chain=, as the generated configuration asks): its
	// certificates are only intermediates, so they are taken from wherever they come.
	xfcc, _ := header(c.h, "x-forwarded-client-cert")
	chain := mtls.ChainFromXFCC(xfcc)
	if pem == "" && v != nil && v.FromXFCC() {
		pem = cmp.Or(mtls.CertFromXFCC(xfcc), chain)
	}
	var r credResult
	switch {
	case pem == "":
		r = credResult{fault: &FaultMissingCertificate, reason: "no client certificate", missing: true}
	case v == nil:
		r = credResult{fault: &FaultInvalid, reason: "no trusted client CA configured (authz.mutualTLS.caFiles)"}
	default:
		if id, err := v.Verify(pem, chain); err == nil {
			r = credResult{id: &jwt.Identity{Subject: id.Subject, AuthType: "mtls", Issuer: "mtls", CertThumbprint: id.Thumbprint}}
		} else {
			r = credResult{fault: &FaultInvalid, reason: err.Error()}
		}
	}
	c.cert = &r
	return r
}

func (c *credentials) basicAuth() credResult {
	raw, ok := header(c.h, "authorization")
	if !ok || raw == "" {
		return credResult{fault: &FaultMissingBasic, reason: "no Authorization header", basic: true, missing: true}
	}
	if c.e.cfg.Users == nil {
		return credResult{fault: &FaultBasicInvalid, reason: "no basic-auth users configured", basic: true}
	}
	user, err := c.e.cfg.Users.Check(raw)
	switch {
	case errors.Is(err, basic.ErrFormat):
		return credResult{fault: &FaultMissingBasic, reason: "the Authorization header is not a Basic credential", basic: true, missing: true}
	case err != nil:
		return credResult{fault: &FaultBasicInvalid, reason: err.Error(), basic: true}
	}
	return credResult{id: &jwt.Identity{Subject: user, AuthType: "basic", Issuer: "basic"}}
}

func (c *credentials) apiKey(s apimodel.Scheme) credResult {
	key := apiKeyValue(c.h, s)
	if key == "" {
		return credResult{fault: &FaultMissingAPIKey, reason: "no API key in " + s.In + " " + s.Param, missing: true}
	}
	if c.e.cfg.APIKeys == nil {
		return credResult{fault: &FaultInvalid, reason: "no API keys configured"}
	}
	rec, err := c.e.cfg.APIKeys.Check(key, c.api.ID(), time.Now())
	if err != nil {
		return credResult{fault: &FaultInvalid, reason: err.Error()}
	}
	c.usedKey = &s
	return credResult{id: &jwt.Identity{Subject: rec.Application, ClientID: rec.Application, TokenID: rec.ID, AuthType: "apikey", Issuer: "apikey"}}
}

// apiKeyValue reads an API key where the OpenAPI scheme says it is.
func apiKeyValue(h *authv3.AttributeContext_HttpRequest, s apimodel.Scheme) string {
	switch s.In {
	case "header":
		v, _ := header(h, s.Param)
		return v
	case "query":
		_, query, _ := strings.Cut(h.GetPath(), "?")
		q, _ := url.ParseQuery(query)
		return q.Get(s.Param)
	case "cookie":
		cookies, _ := header(h, "cookie")
		for _, part := range strings.Split(cookies, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && k == s.Param {
				return v
			}
		}
	}
	return ""
}

type tokenResult struct {
	done   bool
	id     *jwt.Identity
	fault  *Fault
	reason string
	dpop   string // outcome.dpop
}

func (e *Enforcer) bearer(ctx context.Context, h *authv3.AttributeContext_HttpRequest, api *apimodel.API) tokenResult {
	challenge := ""
	if api.DPoP {
		challenge = "challenge"
	}
	raw, present := header(h, api.AuthHeader)
	if !present || strings.TrimSpace(raw) == "" {
		return tokenResult{done: true, fault: &FaultMissing, reason: "no " + api.AuthHeader + " header", dpop: challenge}
	}
	scheme, token, ok := tokenOf(raw)
	if !ok {
		return tokenResult{done: true, fault: &FaultMissing, reason: "the " + api.AuthHeader + " header is not a Bearer or DPoP credential", dpop: challenge}
	}
	verifier := e.tokens
	if e.cfg.Opaque != nil && strings.Count(token, ".") != 2 {
		verifier = e.cfg.Opaque
	}
	if verifier == nil {
		return tokenResult{done: true, fault: &FaultInvalid, reason: "no token issuer is configured"}
	}
	id, err := verifier.Verify(ctx, token)
	if err != nil {
		var je *jwt.Error
		r := tokenResult{done: true, fault: &FaultInvalid, reason: err.Error()}
		if errors.As(err, &je) && tokenFaults[je.Kind] != nil {
			r.fault = tokenFaults[je.Kind]
		}
		if scheme == "dpop" {
			r.dpop = "invalid_token"
		}
		return r
	}
	if rl := e.cfg.Revocations; rl != nil && rl.Revoked(revocation.Token{ID: id.TokenID, Hash: id.TokenHash, Subject: id.Subject, ClientID: id.ClientID, IssuedAt: id.IssuedAt}) {
		return tokenResult{done: true, fault: &FaultRevoked, reason: "token revoked"}
	}
	if r := e.possession(ctx, h, api, scheme, token, id); r.fault != nil {
		return r
	}
	return tokenResult{done: true, id: id}
}

// possession applies RFC 9449: a DPoP-bound token (cnf.jkt) passes only with the DPoP
// scheme and a proof by its key for this request, never as a Bearer token; the DPoP scheme
// takes only bound tokens; an API with x-tollgate-dpop takes nothing else.
func (e *Enforcer) possession(ctx context.Context, h *authv3.AttributeContext_HttpRequest, api *apimodel.API, scheme, token string, id *jwt.Identity) tokenResult {
	refuse := func(code, reason string) tokenResult {
		return tokenResult{done: true, fault: &FaultInvalid, reason: reason, dpop: code}
	}
	if scheme != "dpop" {
		switch {
		case id.KeyThumbprint != "":
			return refuse("invalid_token", "a DPoP-bound token presented as a Bearer token (RFC 9449 §7.1)")
		case api.DPoP:
			return refuse("invalid_token", "this API takes only DPoP-bound tokens with their proof")
		}
		return tokenResult{}
	}
	if e.cfg.DPoP == nil {
		return tokenResult{done: true, fault: &FaultUnsupported, reason: "DPoP proofs are not checked by this gateway"}
	}
	if id.KeyThumbprint == "" {
		return refuse("invalid_token", "the DPoP scheme with a token that is not DPoP-bound (RFC 9449 §7.1)")
	}
	proof, n := headerValues(h, "dpop")
	if n > 1 {
		return refuse("invalid_dpop_proof", "more than one DPoP header (RFC 9449 §4.3)")
	}
	p, err := e.cfg.DPoP.Verify(ctx, proof, dpop.Request{Method: h.GetMethod(), Scheme: h.GetScheme(), Host: h.GetHost(), Path: h.GetPath(), AccessToken: token})
	if err != nil {
		return refuse("invalid_dpop_proof", err.Error())
	}
	if p.Thumbprint != id.KeyThumbprint {
		return refuse("invalid_dpop_proof", "the proof is not signed by the key the token is bound to (RFC 9449 §6.1)")
	}
	return tokenResult{}
}

// tokenOf takes the token out of "Bearer <token>" or "DPoP <token>" (scheme
// case-insensitive); scheme is "bearer" or "dpop".
func tokenOf(v string) (scheme, token string, ok bool) {
	v = strings.TrimSpace(v)
	name, rest, found := strings.Cut(v, " ")
	if !found {
		name, rest, found = strings.Cut(v, "\t")
	}
	if !found {
		return "", "", false
	}
	switch {
	case strings.EqualFold(name, "bearer"):
		scheme = "bearer"
	case strings.EqualFold(name, "dpop"):
		scheme = "dpop"
	default:
		return "", "", false
	}
	token = strings.TrimSpace(rest)
	return scheme, token, token != ""
}

// headerValues is a header's value and how many times the request has it.
func headerValues(h *authv3.AttributeContext_HttpRequest, name string) (string, int) {
	if hm := h.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		var first string
		n := 0
		for _, hv := range hm {
			if strings.EqualFold(hv.GetKey(), name) {
				if n == 0 {
					first = rawValue(hv)
				}
				n++
			}
		}
		return first, n
	}
	v, ok := header(h, name)
	if !ok {
		return "", 0
	}
	return v, 1
}

// missingScope says what the identity lacks of use's scopes: the first missing one when it
// needs them all, or (space-separated, as WWW-Authenticate's scope lists them) all of them
// when any one would do and it has none.
func missingScope(id *jwt.Identity, use apimodel.SchemeUse) string {
	if use.AnyScope {
		for _, s := range use.Scopes {
			if id.HasScope(s) {
				return ""
			}
		}
		return strings.Join(use.Scopes, " ")
	}
	for _, s := range use.Scopes {
		if !id.HasScope(s) {
			return s
		}
	}
	return ""
}

// header reads a request header. Envoy sends header names in lower case; a header given
// in another case (e.g. from a hand-made CheckRequest) is found too.
func header(h *authv3.AttributeContext_HttpRequest, name string) (string, bool) {
	hs := h.GetHeaders()
	if v, ok := hs[name]; ok {
		return v, true
	}
	if v, ok := hs[lower(name)]; ok {
		return v, true
	}
	for k, v := range hs {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if strings.EqualFold(hv.GetKey(), name) {
			return rawValue(hv), true
		}
	}
	return "", false
}

// lower is strings.ToLower without an allocation for the common already-lower names.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// requestPath is the request's path without the query string, normalized the way the
// generated Envoy configuration normalizes it before routing (normalize_path: dot segments
// removed; merge_slashes; %2F and %5C unescaped), so that matching by path — for an Envoy
// configured by hand — decides the resource Envoy would route to.
func requestPath(h *authv3.AttributeContext_HttpRequest) string {
	p := h.GetPath()
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return normalizePath(p)
}

func normalizePath(p string) string {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") && !strings.Contains(p, "%") && !strings.Contains(p, "\\") {
		return p // the common case: nothing to do, no allocation
	}
	for _, esc := range []string{"%2F", "%2f", "%5C", "%5c"} {
		p = strings.ReplaceAll(p, esc, "/")
	}
	p = strings.ReplaceAll(p, "\\", "/")
	trailing := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
	p = path.Clean("/" + p) // dot segments and repeated slashes; never above the root
	if trailing && p != "/" {
		p += "/"
	}
	return p
}

func (e *Enforcer) logDecision(ce *zapcore.CheckedEntry, req *authv3.CheckRequest, o *outcome) {
	h := req.GetAttributes().GetRequest().GetHttp()
	fields := []zap.Field{zap.String("method", h.GetMethod()), zap.String("path", requestPath(h)), zap.Bool("allowed", o.fault == nil)}
	if o.api != nil {
		fields = append(fields, zap.String("api", o.api.ID()))
	}
	if o.op != nil {
		fields = append(fields, zap.String("operation", o.op.Key()))
	}
	if o.fault != nil {
		fields = append(fields, zap.Int("code", o.fault.Code), zap.String("reason", o.reason))
	}
	if o.id != nil {
		fields = append(fields, zap.String("subject", o.id.Subject), zap.String("client_id", o.id.ClientID))
	}
	ce.Write(fields...)
}
