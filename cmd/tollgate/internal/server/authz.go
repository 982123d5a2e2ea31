package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/tollgate-gw/tollgate/internal/defaults"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/analytics"
	"github.com/tollgate-gw/tollgate/internal/discovery"
	"github.com/tollgate-gw/tollgate/internal/status"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
	"github.com/tollgate-gw/tollgate/internal/tracing"
	"github.com/tollgate-gw/tollgate/policies/apikey"
	"github.com/tollgate-gw/tollgate/policies/basic"
	"github.com/tollgate-gw/tollgate/policies/dpop"
	"github.com/tollgate-gw/tollgate/policies/introspect"
	"github.com/tollgate-gw/tollgate/policies/jwt"
	"github.com/tollgate-gw/tollgate/policies/mtls"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/policies/ratelimit/rls"
	"github.com/tollgate-gw/tollgate/policies/revocation"
)

// AuthzConfig is what the enforcer component is made of, read from the configuration
// (files already read, durations parsed).
type AuthzConfig struct {
	Listen string
	// TLS, if enabled, is TLS (or mutual TLS) on the port.
	TLS tlsfiles.ServerConfig
	// Enforcer holds the enforcer's settings; the component supplies its parts (catalog,
	// revocations, credentials, throttling, readiness).
	Enforcer extauthz.Config
	// JWT verifies JSON Web Tokens; no issuers: none are accepted.
	JWT jwt.Config
	// Introspect are the issuers of opaque tokens, asked in this order.
	Introspect []introspect.Config
	// MutualTLS, if set, verifies client certificates.
	MutualTLS *mtls.Config
	// BasicUsers are the configured users (name → hash), besides etcd's.
	BasicUsers map[string]string
	// DPoP checks proofs; its replay cache is the throttling backend's.
	DPoP dpop.Config
	// Redis, if set, holds the throttling counters and DPoP's replay cache; else this
	// process does.
	Redis *ratelimit.RedisConfig
	// AdminToken, if set, turns on the admin port's /revoke and /notify/revocation.
	AdminToken []byte
	// Analytics is the access log service's settings.
	Analytics Analytics
	// Tracing, if set, traces Checks and ext_proc streams (OTLP to a collector).
	Tracing *tracing.Config
	// WSO2Notify, if set, turns on the admin port's /internal/data/v1/notify for WSO2 IS's
	// revocation events: the users that may post (name → hash) and the key managers taken.
	WSO2Notify *WSO2Notify
}

// Analytics is what the access log service (internal/analytics) is made of.
type Analytics struct {
	// File, if set, is appended one JSON line per request.
	File         string
	Applications int
}

// WSO2Notify is who may post WSO2 Identity Server's revocation events.
type WSO2Notify struct {
	Users       map[string]string
	KeyManagers []string
}

// Authz is the enforcer role: Envoy's ext_authz and rate limit services on one gRPC port.
type Authz struct {
	st       *store.Store
	f        follows
	verifier *jwt.Verifier // nil without JWT issuers
	opaque   []*introspect.Introspector
	certs    *mtls.Verifier // nil without mutual TLS
	crls     func(reloaded []string, err error)
	redis    *ratelimit.Redis
	local    *ratelimit.Local
	grpc     *grpc.Server
	lis      net.Listener
	tls      *portTLS
	lines    *analytics.Lines // nil without analytics.file
	linesOut *os.File
	revoked  *revocation.Set
	tracing  *tracing.Tracing // nil without tracing
	log      *zap.Logger
}

// NewAuthz builds the enforcer over the catalog's APIs and listens.
func NewAuthz(cfg AuthzConfig, st *store.Store, apis *Catalog, adm *admin.Server, log *zap.Logger) (*Authz, error) {
	a := &Authz{st: st, log: log}
	reg := adm.Registry()
	ec := cfg.Enforcer

	revoked := revocation.New(log.Named("revocation"), reg)
	a.revoked = revoked
	a.f.add(store.Revoked, revoked)
	ec.Revocations = revoked
	if cfg.AdminToken != nil {
		h := revocation.Handler(st, cfg.AdminToken)
		adm.Handle("/revoke", h)
		adm.Handle("/notify/revocation", h)
	}
	if n := cfg.WSO2Notify; n != nil {
		users, err := basic.New(n.Users)
		if err != nil {
			return nil, fmt.Errorf("admin.wso2Notify: %w", err)
		}
		adm.Handle(revocation.WSO2NotifyPath, revocation.WSO2Handler(st, revocation.WSO2Config{CheckBasic: users.Check, KeyManagers: n.KeyManagers, Log: log.Named("wso2-notify")}))
	}
	// Until the APIs and the revocations are loaded (from etcd or the local copy) the
	// enforcer cannot decide: it answers 503, not "no such resource".
	ec.Loaded = func() bool { return apis.reg.Loaded() && revoked.Loaded() }

	engine, replay, err := a.throttling(cfg.Redis, reg, log)
	if err != nil {
		return nil, err
	}
	a.f.add(store.Policies, engine)
	ec.Throttle = engine

	if err := a.credentials(cfg, &ec, replay, reg, log); err != nil {
		return nil, err
	}

	tokens, err := a.tokens(cfg, &ec, reg, log)
	if err != nil {
		return nil, err
	}
	if tokens == nil && ec.Opaque == nil {
		log.Warn("no token issuer configured: every resource that needs a token will be denied")
	}
	if cfg.Tracing != nil {
		if a.tracing, err = tracing.New(*cfg.Tracing); err != nil {
			return nil, err
		}
		ec.Tracer, ec.Propagator = a.tracing.Tracer("github.com/tollgate-gw/tollgate/extauthz"), tracing.Propagator
	}
	enf := extauthz.New(ec, apis.reg, tokens, log.Named("authz"), reg)

	var tlsOpts []grpc.ServerOption
	if a.tls, tlsOpts, err = newPortTLS("authz", cfg.TLS, reg, log); err != nil {
		return nil, err
	}
	if a.lis, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("authz listen: %w", err)
	}
	// Envoy's access logs come to the same port; their messages are read from the wire.
	opts := append(extauthz.ServerOptions(), grpc.ForceServerCodecV2(analytics.Codec(extauthz.Codec())))
	a.grpc = newGRPCServer(append(opts, tlsOpts...)...)
	enf.Register(a.grpc)
	if err := a.analytics(cfg.Analytics, apis, reg, log); err != nil {
		return nil, err
	}
	// The same policies over Envoy's rate limit service protocol, on the same port.
	rls.New(engine, log.Named("rls")).Register(a.grpc)
	return a, nil
}

// analytics serves Envoy's access log service on the enforcer's port, writing JSON lines
// to the configured file.
func (a *Authz) analytics(cfg Analytics, apis *Catalog, reg prometheus.Registerer, log *zap.Logger) error {
	if cfg.File != "" {
		f, err := os.OpenFile(cfg.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("analytics.file: %w", err)
		}
		a.linesOut, a.lines = f, analytics.NewLines(f)
	}
	analytics.New(analytics.Config{Applications: cfg.Applications, Lines: a.lines}, apis.reg, log.Named("analytics"), reg).Register(a.grpc)
	return nil
}

// tokens builds the verifier of JWTs and the introspectors of opaque tokens; issuers
// configured by their URL alone share one count of metadata fetches.
func (a *Authz) tokens(cfg AuthzConfig, ec *extauthz.Config, reg prometheus.Registerer, log *zap.Logger) (extauthz.TokenVerifier, error) {
	fetches := discovery.NewFetches(reg)
	for _, ic := range cfg.Introspect {
		ic.DiscoveryFetches = fetches
		in, err := introspect.New(ic, log.Named("introspect"), reg)
		if err != nil {
			return nil, err
		}
		a.opaque = append(a.opaque, in)
		ec.Opaque = append(ec.Opaque, in)
	}
	if len(cfg.JWT.Issuers) == 0 {
		return nil, nil
	}
	jc := cfg.JWT
	jc.DiscoveryFetches = fetches
	v, err := jwt.New(jc, log.Named("jwt"), reg)
	if err != nil {
		return nil, err
	}
	a.verifier = v
	return v, nil
}

// throttling builds the throttling engine over Redis (shared by the replicas) or local
// counters, and DPoP's replay cache on the same backend.
func (a *Authz) throttling(rc *ratelimit.RedisConfig, reg prometheus.Registerer, log *zap.Logger) (*ratelimit.Engine, dpop.Replay, error) {
	if rc == nil {
		a.local = ratelimit.NewLocal()
		return ratelimit.NewEngine(a.local, log.Named("ratelimit"), reg), dpop.NewMemory(defaults.ReplayCacheSize), nil
	}
	r, err := ratelimit.NewRedis(*rc, log.Named("redis"), reg)
	if err != nil {
		return nil, nil, err
	}
	a.redis, a.local = r, r.Local()
	return ratelimit.NewEngine(r, log.Named("ratelimit"), reg), dpop.NewRedis(r.Client(), "tollgate:dpop:"), nil
}

// credentials sets the enforcer's non-token credentials: certificates, users (configured
// and from etcd), API keys (from etcd) and DPoP proofs.
func (a *Authz) credentials(cfg AuthzConfig, ec *extauthz.Config, replay dpop.Replay, reg prometheus.Registerer, log *zap.Logger) error {
	if cfg.MutualTLS != nil {
		certs, err := mtls.New(*cfg.MutualTLS)
		if err != nil {
			return fmt.Errorf("authz.mutualTLS: %w", err)
		}
		ec.Certificates = certs
		a.certs, a.crls = certs, crlReport(reg, log.Named("mtls"))
	}
	users, err := basic.New(cfg.BasicUsers)
	if err != nil {
		return fmt.Errorf("authz.basicUsers: %w", err)
	}
	keys := apikey.NewSet()
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_credentials_rejected_total",
		Help: "Stored users and API keys that failed to parse and are ignored."}, []string{"kind"})
	reg.MustRegister(rejected)
	for kind, set := range map[string]interface{ OnReject(func(string, error)) }{"user": users, "apikey": keys} {
		set.OnReject(func(key string, err error) {
			rejected.WithLabelValues(kind).Inc()
			log.Error("stored credential ignored", zap.String("kind", kind), zap.String("key", key), zap.Error(err))
		})
	}
	a.f.add(store.Users, users)
	a.f.add(store.APIKeys, keys)
	ec.Users, ec.APIKeys = users, keys
	dc := cfg.DPoP
	dc.Replay = replay
	proofs, err := dpop.New(dc)
	if err != nil {
		return fmt.Errorf("authz.dpop: %w", err)
	}
	ec.DPoP = proofs
	return nil
}

// Revocations are the revocations in force (the status page).
func (a *Authz) Revocations() int { return a.revoked.Len() }

// Limiter is the throttling backend's state (the status page).
func (a *Authz) Limiter() status.Limiter {
	if a.redis == nil {
		return status.Limiter{Backend: "local", Up: true}
	}
	return status.Limiter{Backend: "redis", Up: a.redis.Up()}
}

// Addr is the address the enforcer listens on.
func (a *Authz) Addr() string { return a.lis.Addr().String() }

func (a *Authz) Name() string { return "authz" }

// Ready: every range the enforcer follows is in step, and every issuer's keys fetched.
func (a *Authz) Ready() error {
	err := a.f.ready(a.st)
	if a.verifier != nil && !a.verifier.Ready() {
		err = errors.Join(err, errors.New("jwks: an issuer's keys have not been fetched yet"))
	}
	for _, in := range a.opaque {
		if !in.Ready() {
			err = errors.Join(err, fmt.Errorf("introspection: issuer %q's metadata has not been fetched yet", in.Name()))
		}
	}
	return err
}

// crlReport logs and counts what following the CRL files finds: a renewed file read, or
// one that no longer reads or verifies (its last good list stays; logged when its error
// changes, not every time it is looked at).
func crlReport(reg prometheus.Registerer, log *zap.Logger) func([]string, error) {
	reloads := newFileReloads(reg, prometheus.CounterOpts{Name: "tollgate_mtls_crl_reloads_total",
		Help: "CRL files read again: ok (in force), or rejected (unreadable, unparsable or not signed by a trusted CA; the last good list stays)."},
		log, "CRL file not taken; its last good list stays in force")
	return func(reloaded []string, err error) {
		for _, f := range reloaded {
			reloads.ok("CRL read again", zap.String("file", f))
		}
		reloads.settle(err)
	}
}

func (a *Authz) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	a.f.run(ctx, a.st, g)
	if a.verifier != nil {
		g.Go(func() error { a.verifier.Run(ctx); return nil })
	}
	for _, in := range a.opaque {
		g.Go(func() error { in.Run(ctx); return nil })
	}
	if a.redis != nil {
		g.Go(func() error { a.redis.Run(ctx); return a.redis.Close() })
	}
	g.Go(func() error { a.local.Run(ctx, time.Minute); return nil })
	if a.certs != nil {
		g.Go(func() error { a.certs.RunCRLs(ctx, defaults.CRLRefreshInterval, a.crls); return nil })
	}
	g.Go(func() error { a.tls.run(ctx); return nil })
	if a.lines != nil {
		g.Go(func() error { a.lines.Run(ctx); return nil })
	}
	g.Go(func() error {
		err := serveGRPC(ctx, a.grpc, a.lis)
		if a.lines != nil { // the streams have ended: what they wrote is flushed
			err = errors.Join(err, a.lines.Flush(), a.linesOut.Close())
		}
		if a.tracing != nil { // and the spans of their Checks sent
			sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if serr := a.tracing.Shutdown(sctx); serr != nil {
				a.log.Warn("spans not sent at shutdown", zap.Error(serr))
			}
		}
		return err
	})
	return g.Wait()
}
