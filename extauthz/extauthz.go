// Package extauthz is the enforcer: an Envoy ext_authz (envoy.service.auth.v3) gRPC service
// that decides every request. A Check runs named stages over one decision (check.go):
// route → peer (API-level mutual TLS) → authenticate (the operation's security
// requirements: any alternative, all schemes in it; one authenticator per credential kind,
// authn_*.go) → authorize (scopes) → revocation → throttle, then respond; it is the one
// place where decisions become CheckResponses.
package extauthz

import (
	"context"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-gw/tollgate/internal/defaults"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
	"github.com/tollgate-gw/tollgate/internal/identity"
	"github.com/tollgate-gw/tollgate/policies/apikey"
	"github.com/tollgate-gw/tollgate/policies/dpop"
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
	Verify(ctx context.Context, token string) (*identity.Principal, error)
}

// OpaqueIssuer checks the opaque tokens of one issuer; policies/introspect.Introspector
// implements it.
type OpaqueIssuer interface {
	TokenVerifier
	Name() string
}

// ProofChecker checks DPoP proofs; policies/dpop.Checker implements it.
type ProofChecker interface {
	Verify(ctx context.Context, proof string, r dpop.Request) (dpop.Proof, error)
	Algorithms() []string
	// Nonce is the server nonce to give clients, "" when proofs need none (RFC 9449 §8).
	Nonce() string
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
	// Template, when set, is the gateway's own error format (faults.template), used instead
	// of Format; an API's x-tollgate-faults wins over both.
	Template *errfmt.Template
	// RemoveAuthorization strips the credential header before the request goes to the backend.
	RemoveAuthorization bool
	// Revocations, if set, is checked for every token, cached or not.
	Revocations RevocationList
	// Opaque are the issuers of bearer tokens that are not JWTs (checked by introspection),
	// asked in order: the first that finds a token active answers; a scheme that names its
	// issuers (x-tollgate-issuers) asks only those.
	Opaque []OpaqueIssuer
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
	// Tracer, if set, makes a span of each Check (with its stages) and of each ext_proc
	// stream, continuing the trace context Propagator reads from the request (trace.go).
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
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
	// made are the templates of faults made for a scheme (a missing API key's says where
	// the key goes), built at their first use: one per key location the definitions have
	// named.
	made sync.Map // Fault → *denyTemplate
	// dpopAlgs lists the DPoP proof algorithms for the challenge.
	dpopAlgs string
	// authenticators check each kind of credential (authenticate.go).
	authenticators map[apimodel.SchemeType]authenticator
	// views are the principals rendered for responses, kept while their verifier keeps
	// the principal (respond.go).
	views memo[*identity.Principal, *identityView]
	// routes are the operations' dynamic metadata values.
	routes memo[*apimodel.Operation, routeValues]
}

// New builds an enforcer. tokens may be nil when no issuer is configured: bearer
// requirements then always fail.
func New(cfg Config, apis Catalog, tokens TokenVerifier, log *zap.Logger, reg prometheus.Registerer) *Enforcer {
	if cfg.Format == "" {
		cfg.Format = Format(defaults.FaultFormat)
	}
	if cfg.ApplicationTierClaim == "" {
		cfg.ApplicationTierClaim = defaults.ApplicationTierClaim
	}
	if cfg.SubscriptionTierClaim == "" {
		cfg.SubscriptionTierClaim = defaults.SubscriptionTierClaim
	}
	if cfg.Tracer != nil && cfg.Propagator == nil {
		cfg.Propagator = propagation.TraceContext{}
	}
	e := &Enforcer{apis: apis, tokens: tokens, cfg: cfg, log: log, m: newMetrics(reg), denies: map[Fault]*denyTemplate{}}
	e.authenticators = authenticators(e)
	e.views.max, e.routes.max = maxViews, maxRoutes
	if cfg.DPoP != nil {
		e.dpopAlgs = strings.Join(cfg.DPoP.Algorithms(), " ")
	}
	for _, f := range []Fault{FaultBasicInvalid, FaultThrottledAPI, FaultThrottledResource, FaultThrottledApplication, FaultThrottledSubscription, FaultThrottledCustom, FaultPolicyNotFound,
		FaultInvalid, FaultRevoked, FaultInactive, FaultMissing, FaultMissingBasic, FaultMissingAPIKey, FaultMissingCertificate, FaultCertificateRequired, FaultExpired, FaultNoAPI, FaultNoResource, FaultScope, FaultMalformed, FaultUnsupported, FaultInternal, FaultNotReady, FaultThrottlingUnavailable, FaultBadBytes, FaultTwoCredentials, FaultMethodNotAllowed} {
		e.denies[f] = newDenyTemplate(f, cfg.Format)
	}
	return e
}
