package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/devissuer"
	"github.com/tollgate-gw/tollgate/internal/gctune"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
	"github.com/tollgate-gw/tollgate/policies/apikey"
	"github.com/tollgate-gw/tollgate/policies/basic"
	"github.com/tollgate-gw/tollgate/policies/dpop"
	"github.com/tollgate-gw/tollgate/policies/introspect"
	"github.com/tollgate-gw/tollgate/policies/jwt"
	"github.com/tollgate-gw/tollgate/policies/mtls"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/policies/ratelimit/rls"
	"github.com/tollgate-gw/tollgate/policies/revocation"
	"github.com/tollgate-gw/tollgate/xds"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// role says which components a server command runs.
type role struct {
	name        string
	authz, xds  bool
	embedded    bool // may start an embedded etcd
	applyAtBoot bool // takes -f
}

var (
	roleRun   = role{name: "run", authz: true, xds: true, embedded: true, applyAtBoot: true}
	roleAuthz = role{name: "authz", authz: true}
	roleXDS   = role{name: "xds", xds: true}
)

// serveCmd starts a server role: `tollgate run` (everything, embedded etcd by default),
// `tollgate authz` (the enforcer) or `tollgate xds` (the control plane).
func serveCmd(ctx context.Context, args []string, r role) error {
	fs := flag.NewFlagSet(r.name, flag.ContinueOnError)
	var c common
	c.register(fs)
	dev := new(bool)
	if r.authz {
		dev = fs.Bool("dev", false, "add the development token issuer (its own key; for trying Tollgate, never for production)")
	}
	var fl files
	if r.applyAtBoot {
		fs.Var(&fl, "f", "API definition to apply at start; repeatable")
	}
	if err := fs.Parse(args); err != nil {
		return errReported
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync()
	// A heap floor: without it a small live heap means dozens of collections a second
	// under load, the largest part of the Check tail (internal/gctune).
	defer gctune.Floor(gctune.DefaultFloor).Stop()
	if err := admin.CheckLoopback(cfg.Admin.Listen, cfg.Admin.AllowRemote); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// etcd: the configured cluster, or (run only) an embedded server in the data directory.
	if len(cfg.Etcd.Endpoints) == 0 {
		if !r.embedded {
			return fmt.Errorf("%s needs etcd.endpoints (or --etcd); only `tollgate run` embeds etcd", r.name)
		}
		dir := filepath.Join(cfg.DataDir, "etcd")
		emb, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir, ClientAddr: cfg.Etcd.EmbeddedClientAddr, PeerAddr: cfg.Etcd.EmbeddedPeerAddr}, log)
		if err != nil {
			return err
		}
		defer emb.Close()
		cfg.Etcd.Endpoints = []string{emb.Endpoint}
		log.Info("embedded etcd started", zap.String("dir", dir), zap.String("endpoint", emb.Endpoint))
	}
	adm := admin.New()
	if cfg.Admin.Profiling {
		adm.Profiling()
	}
	st, err := connectStore(cfg, log, func(sc *store.Config) {
		sc.CacheDir, sc.Registerer = cfg.CacheDir(), adm.Registry()
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if len(fl) > 0 {
		if err := applyAtStart(ctx, st, fl); err != nil {
			return err
		}
		log.Info("applied definitions", zap.Int("count", len(fl)))
	}

	// Every consumer is wired before the first range is followed, so none misses the state
	// that is loaded at start; each followed range is a readiness check.
	type followed struct {
		rel  string
		sink store.Sink
	}
	var follows []followed
	follow := func(rel string, sink store.Sink) {
		follows = append(follows, followed{rel, sink})
		adm.Ready("etcd "+rel, func() error { return st.Ready(rel) })
	}
	reg := catalog.New(log.Named("catalog"), adm.Registry())
	follow(store.APIs, reg)

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	serve := func(what string, s *grpc.Server, l net.Listener) {
		wg.Go(func() {
			if err := s.Serve(l); err != nil {
				errs <- fmt.Errorf("%s: %w", what, err)
			}
		})
		go func() {
			<-ctx.Done()
			// Long-lived streams (ADS) would hold a graceful stop forever.
			t := time.AfterFunc(2*time.Second, s.Stop)
			s.GracefulStop()
			t.Stop()
		}()
	}

	var authzAddr, xdsAddr string
	if r.authz {
		revoked := revocation.New(log.Named("revocation"), adm.Registry())
		follow(store.Revoked, revoked)
		if cfg.Admin.TokenFile != "" {
			tok, err := os.ReadFile(cfg.Admin.TokenFile)
			if err != nil {
				return fmt.Errorf("admin token: %w", err)
			}
			h := revocation.Handler(st, trimNewline(tok))
			adm.Handle("/revoke", h)
			adm.Handle("/notify/revocation", h)
		}
		engine, replay, err := newThrottling(ctx, cfg, adm, log, &wg)
		if err != nil {
			return err
		}
		follow(store.Policies, engine)
		creds, err := newCredentials(cfg)
		if err != nil {
			return err
		}
		creds.proofs, err = dpop.New(dpop.Config{MaxAge: time.Duration(cfg.Authz.DPoP.MaxAge), Algorithms: cfg.Authz.DPoP.Algorithms, Replay: replay})
		if err != nil {
			return fmt.Errorf("authz.dpop: %w", err)
		}
		rejected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_credentials_rejected_total",
			Help: "Stored users and API keys that failed to parse and are ignored."}, []string{"kind"})
		adm.Registry().MustRegister(rejected)
		for kind, set := range map[string]interface{ OnReject(func(string, error)) }{"user": creds.users, "apikey": creds.keys} {
			set.OnReject(func(key string, err error) {
				rejected.WithLabelValues(kind).Inc()
				log.Error("stored credential ignored", zap.String("kind", kind), zap.String("key", key), zap.Error(err))
			})
		}
		follow(store.Users, creds.users)
		follow(store.APIKeys, creds.keys)
		// Until the APIs and the revocations are loaded (from etcd or the local copy) the
		// enforcer cannot decide: it answers 503, not "no such resource".
		loaded := func() bool { return reg.Loaded() && revoked.Loaded() }
		enf, ver, err := newEnforcer(cfg, *dev, reg, revoked, loaded, engine, creds, adm, log)
		if err != nil {
			return err
		}
		if ver != nil {
			wg.Go(func() { ver.Run(ctx) })
		}
		lis, err := net.Listen("tcp", cfg.Authz.Listen)
		if err != nil {
			return fmt.Errorf("authz listen: %w", err)
		}
		gs := newGRPCServer(extauthz.ServerOptions()...)
		enf.Register(gs)
		// The same policies over Envoy's rate limit service protocol, on the same port.
		rls.New(engine, log.Named("rls")).Register(gs)
		serve("authz", gs, lis)
		authzAddr = lis.Addr().String()
	}
	if r.xds {
		cp, err := newControlPlane(cfg, adm, log)
		if err != nil {
			return err
		}
		reg.OnChange(cp.SetCatalog)
		follow(store.Endpoints, cp.Endpoints())
		follow(store.Secrets, cp.Secrets())
		wg.Go(func() { cp.Run(ctx) })
		lis, err := net.Listen("tcp", cfg.XDS.Listen)
		if err != nil {
			return fmt.Errorf("xds listen: %w", err)
		}
		gs := newGRPCServer()
		cp.Register(ctx, gs)
		serve("xds", gs, lis)
		xdsAddr = lis.Addr().String()
	}
	for _, f := range follows {
		wg.Go(func() { st.Follow(ctx, f.rel, f.sink, nil) })
	}
	adminLis, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	wg.Go(func() {
		if err := adm.Serve(ctx, adminLis); err != nil {
			errs <- fmt.Errorf("admin: %w", err)
		}
	})

	printSummary(cfg, authzAddr, xdsAddr, adminLis.Addr().String(), *dev)
	select {
	case <-ctx.Done():
	case err = <-errs:
		log.Error("stopping", zap.Error(err))
	}
	cancel()
	wg.Wait()
	log.Info("stopped")
	return err
}

func newGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(4 << 20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}, opts...)...)
}

func applyAtStart(ctx context.Context, st *store.Store, fl []string) error {
	defs, ok := loadDefinitions(fl)
	if !ok {
		return errors.New("definitions given with -f have problems (listed above); nothing was applied")
	}
	apis, policies := docs(defs)
	_, err := st.PutDefinitions(ctx, apis, policies)
	return err
}

// newThrottling builds the throttling engine over the configured backend, and the DPoP
// replay cache on the same backend (Redis shared by the replicas, or this process).
func newThrottling(ctx context.Context, cfg config.Config, adm *admin.Server, log *zap.Logger, wg *sync.WaitGroup) (*ratelimit.Engine, dpop.Replay, error) {
	t := cfg.Throttling
	var backend ratelimit.Backend
	var replay dpop.Replay
	var local *ratelimit.Local
	if t.Backend == "redis" {
		var password string
		if t.Redis.PasswordFile != "" {
			b, err := os.ReadFile(t.Redis.PasswordFile)
			if err != nil {
				return nil, nil, fmt.Errorf("redis password: %w", err)
			}
			password = string(trimNewline(b))
		}
		var tlsc *tls.Config
		if rt := t.Redis.TLS; rt.Enabled {
			var err error
			if tlsc, err = tlsfiles.Client(rt.CAFile, rt.CertFile, rt.KeyFile, rt.ServerName); err != nil {
				return nil, nil, fmt.Errorf("redis TLS %w", err)
			}
		}
		r, err := ratelimit.NewRedis(ratelimit.RedisConfig{
			Addrs: t.Redis.Addrs, MasterName: t.Redis.MasterName, Username: t.Redis.Username, Password: password, DB: t.Redis.DB, TLS: tlsc,
			Timeout: time.Duration(t.Redis.Timeout), Fallback: ratelimit.Fallback(t.Redis.Fallback), Retry: time.Duration(t.Redis.Retry),
			Lease: cmp.Or(time.Duration(t.Redis.Lease), -1), // 0 in the config: no leases
		}, log.Named("redis"), adm.Registry())
		if err != nil {
			return nil, nil, err
		}
		wg.Go(func() { r.Run(ctx); r.Close() })
		backend, local = r, r.Local()
		replay = dpop.NewRedis(r.Client(), "tollgate:dpop:")
	} else {
		local = ratelimit.NewLocal()
		backend = local
		replay = dpop.NewMemory(100000)
	}
	wg.Go(func() { local.Run(ctx, time.Minute) })
	return ratelimit.NewEngine(backend, log.Named("ratelimit"), adm.Registry()), replay, nil
}

// credentialStores are the non-token credentials: certificates, users, API keys.
type credentialStores struct {
	certs *mtls.Verifier
	users *basic.Users
	keys  *apikey.Set
	// proofs checks DPoP proofs (set once the throttling backend, which holds its replay
	// cache, is known).
	proofs *dpop.Checker
}

func newCredentials(cfg config.Config) (credentialStores, error) {
	var c credentialStores
	var err error
	if m := cfg.Authz.MutualTLS; len(m.CAFiles) > 0 {
		c.certs, err = mtls.New(mtls.Config{CAFiles: m.CAFiles, AllowedSANs: m.AllowedSANs, AllowedSubjects: m.AllowedSubjects,
			AllowedSPKI: m.AllowedSPKI, CRLFiles: m.CRLFiles, CRLExpiry: m.CRLExpiry, FromXFCC: m.FromXFCC})
		if err != nil {
			return c, fmt.Errorf("authz.mutualTLS: %w", err)
		}
	}
	if c.users, err = basic.New(cfg.Authz.BasicUsers); err != nil {
		return c, fmt.Errorf("authz.basicUsers: %w", err)
	}
	c.keys = apikey.NewSet()
	return c, nil
}

// newEnforcer builds the verifier (with the development issuer when dev) and the enforcer.
func newEnforcer(cfg config.Config, dev bool, reg *catalog.Registry, revoked *revocation.Set, loaded func() bool, engine *ratelimit.Engine, creds credentialStores, adm *admin.Server, log *zap.Logger) (*extauthz.Enforcer, *jwt.Verifier, error) {
	issuers := make([]jwt.IssuerConfig, 0, len(cfg.Issuers)+1)
	var opaque extauthz.TokenVerifier
	for _, is := range cfg.Issuers {
		if is.Opaque() {
			secret, err := is.ClientSecret()
			if err != nil {
				return nil, nil, err
			}
			in, err := introspect.New(introspect.Config{
				Name: is.Name, URL: is.IntrospectionURL, ClientID: is.ClientID, ClientSecret: secret, Audiences: is.Audiences,
				ActiveTTL: time.Duration(is.ActiveTTL), InactiveTTL: time.Duration(is.InactiveTTL), ScopeClaim: is.ScopeClaim,
				ClaimHeaders: cfg.Authz.ClaimHeaders,
			}, log.Named("introspect"), adm.Registry())
			if err != nil {
				return nil, nil, err
			}
			opaque = in
			continue
		}
		jc, err := jwtIssuer(is)
		if err != nil {
			return nil, nil, err
		}
		issuers = append(issuers, jc)
	}
	if dev {
		ic, err := devIssuer(cfg.DataDir)
		if err != nil {
			return nil, nil, fmt.Errorf("development issuer: %w", err)
		}
		issuers = append(issuers, ic)
		log.Warn("DEVELOPMENT ISSUER ENABLED (--dev): tokens minted by `tollgate token` are accepted. Never use --dev in production.",
			zap.String("issuer", devissuer.Issuer), zap.String("audience", devissuer.Audience))
	}
	var verifier extauthz.TokenVerifier
	var ver *jwt.Verifier
	if len(issuers) > 0 {
		var err error
		ver, err = jwt.New(jwt.Config{
			Issuers: issuers, CacheSize: cfg.Authz.TokenCacheSize, MaxTokenBytes: cfg.Authz.MaxTokenBytes,
			ClaimHeaders: cfg.Authz.ClaimHeaders, CacheDir: cfg.CacheDir(),
		}, log.Named("jwt"), adm.Registry())
		if err != nil {
			return nil, nil, err
		}
		verifier = ver
		adm.Ready("jwks", func() error {
			if !ver.Ready() {
				return errors.New("an issuer's keys have not been fetched yet")
			}
			return nil
		})
	} else if opaque == nil {
		log.Warn("no token issuer configured: every resource that needs a token will be denied")
	}
	ecfg := extauthz.Config{Loaded: loaded, Format: extauthz.Format(cfg.Authz.FaultFormat), RemoveAuthorization: cfg.Authz.RemoveAuthorization, Revocations: revoked, Opaque: opaque,
		Throttle: engine, RateLimitHeaders: cfg.Throttling.Headers,
		Users: creds.users, APIKeys: creds.keys, ForwardAPIKey: cfg.Authz.ForwardAPIKey,
		ApplicationTierClaim: cfg.Throttling.ApplicationTierClaim, SubscriptionTierClaim: cfg.Throttling.SubscriptionTierClaim}
	if creds.certs != nil {
		ecfg.Certificates = creds.certs // a nil *mtls.Verifier must not become a non-nil interface
	}
	if creds.proofs != nil {
		ecfg.DPoP = creds.proofs
	}
	enf := extauthz.New(ecfg, reg, verifier, log.Named("authz"), adm.Registry())
	return enf, ver, nil
}

// newControlPlane builds the xDS server, reading the TLS material Envoy's HTTPS listener serves.
func newControlPlane(cfg config.Config, adm *admin.Server, log *zap.Logger) (*xds.Server, error) {
	authzAddr := cfg.XDS.AuthzAddress
	if authzAddr == "" {
		authzAddr = cfg.Authz.Listen
	}
	opt := build.Options{
		AuthzAddress: authzAddr, HTTPPort: cfg.XDS.HTTPPort, HTTPSPort: cfg.XDS.HTTPSPort,
		ClientCertificates: cfg.XDS.TLS.ClientCertificates,
		RouteTimeout:       time.Duration(cfg.XDS.RouteTimeout), ConnectTimeout: time.Duration(cfg.XDS.ConnectTimeout),
		UpstreamCAFile: cfg.XDS.UpstreamCAFile,
		Edge:           cfg.XDS.Edge.Build(cfg.XDS.AccessLog),
		FaultFormat:    cfg.Authz.FaultFormat,
	}
	var secrets []build.Secret
	if t := cfg.XDS.TLS; t.CertFile != "" {
		cert, err := os.ReadFile(t.CertFile)
		if err != nil {
			return nil, err
		}
		key, err := os.ReadFile(t.KeyFile)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, build.Secret{Name: build.ServerCertSecret, CertPEM: cert, KeyPEM: key})
	}
	if t := cfg.XDS.TLS; t.ClientCAFile != "" {
		ca, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, build.Secret{Name: build.ClientCASecret, CA: ca})
	}
	return xds.New(xds.Config{Build: opt, Secrets: secrets, Groups: cfg.XDS.Groups}, log.Named("xds"), adm.Registry()), nil
}

func printSummary(cfg config.Config, authz, xdsAddr, adminAddr string, dev bool) {
	fmt.Printf("\nTollgate is up.\n")
	if authz != "" {
		fmt.Printf("  ext_authz (gRPC)  %s   envoy.service.auth.v3.Authorization\n", authz)
	}
	if xdsAddr != "" {
		fmt.Printf("  xDS (gRPC)        %s   ADS, state-of-the-world and delta\n", xdsAddr)
	}
	fmt.Printf("  admin (HTTP)      http://%s   /healthz /readyz /metrics\n", adminAddr)
	fmt.Printf("  etcd              %v\n", cfg.Etcd.Endpoints)
	if xdsAddr != "" {
		fmt.Printf(`
Point an Envoy at the control plane (it serves listeners on :%d, routes, clusters, endpoints):
  ./bin/tollgate bootstrap --node-id envoy-1 --cluster default --xds %s > envoy.yaml
  envoy -c envoy.yaml
`, cfg.XDS.HTTPPort, xdsAddr)
	}
	if dev && authz != "" {
		fmt.Printf(`
Try it without Envoy:
  TOKEN=$(./bin/tollgate token --scope "read:menu")
  ./bin/tollgate check --authz %s --method GET --path /coffeebar/v1/menu -H "Authorization: Bearer $TOKEN"
`, authz)
	}
	fmt.Println()
}
