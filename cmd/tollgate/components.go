package main

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/cmd/tollgate/internal/server"
	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/devissuer"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
	"github.com/tollgate-gw/tollgate/internal/tracing"
	"github.com/tollgate-gw/tollgate/policies/dpop"
	"github.com/tollgate-gw/tollgate/policies/introspect"
	"github.com/tollgate-gw/tollgate/policies/jwt"
	"github.com/tollgate-gw/tollgate/policies/mtls"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/xds"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// The configuration in the form of the components it configures: every file the
// configuration names is read here, and nowhere else.

// storeConfig is the etcd client's configuration; without endpoints it reaches the
// embedded default's address.
func storeConfig(cfg config.Config) (store.Config, error) {
	eps := cfg.Etcd.Endpoints
	if len(eps) == 0 {
		eps = []string{cfg.Etcd.EmbeddedClientAddr}
	}
	sc := store.Config{
		Endpoints: eps, Prefix: cfg.Prefix,
		DialTimeout: time.Duration(cfg.Etcd.DialTimeout), RequestTimeout: time.Duration(cfg.Etcd.RequestTimeout),
		Username: cfg.Etcd.Username, CAFile: cfg.Etcd.CAFile, CertFile: cfg.Etcd.CertFile, KeyFile: cfg.Etcd.KeyFile,
	}
	var err error
	if cfg.Etcd.PasswordFile != "" {
		sc.Password, err = readPasswordFile("etcd password", cfg.Etcd.PasswordFile)
	}
	return sc, err
}

// authzConfig is the enforcer's configuration; dev adds the development issuer.
func authzConfig(cfg config.Config, dev bool, log *zap.Logger) (server.AuthzConfig, error) {
	a := cfg.Authz
	out := server.AuthzConfig{
		Listen:    a.Listen,
		Analytics: server.Analytics{File: cfg.Analytics.File, Applications: cfg.Analytics.Applications},
		Tracing:   tracingConfig(cfg.Tracing),
		TLS:       portTLS(a.ServerTLS),
		Enforcer: extauthz.Config{
			Format: extauthz.Format(a.FaultFormat), RemoveAuthorization: a.RemoveAuthorization, ForwardAPIKey: a.ForwardAPIKey,
			RateLimitHeaders:     cfg.Throttling.Headers,
			ApplicationTierClaim: cfg.Throttling.ApplicationTierClaim, SubscriptionTierClaim: cfg.Throttling.SubscriptionTierClaim,
		},
		JWT:        jwt.Config{CacheSize: a.TokenCacheSize, MaxTokenBytes: a.MaxTokenBytes, ClaimHeaders: a.ClaimHeaders, CacheDir: cfg.CacheDir()},
		BasicUsers: a.BasicUsers,
		DPoP:       dpop.Config{MaxAge: time.Duration(a.DPoP.MaxAge), Algorithms: a.DPoP.Algorithms},
	}
	out.Enforcer.Template = customTemplate(cfg)
	if a.DPoP.RequireNonce {
		var key []byte
		if a.DPoP.NonceSecretFile != "" {
			s, err := readSecret("authz.dpop.nonceSecretFile", a.DPoP.NonceSecretFile)
			if err != nil {
				return out, err
			}
			key = []byte(s)
		} else {
			log.Warn("authz.dpop.requireNonce without nonceSecretFile: this enforcer's nonces are its own, so behind several enforcers a client may be asked for a nonce again")
		}
		n, err := dpop.NewNonces(key, time.Duration(a.DPoP.NonceLifetime))
		if err != nil {
			return out, fmt.Errorf("authz.dpop: %w", err)
		}
		out.DPoP.Nonces = n
	}
	for _, is := range cfg.Issuers {
		if is.Opaque() {
			var secret string
			if is.ClientSecretFile != "" {
				var err error
				if secret, err = readSecret(fmt.Sprintf("issuer %q client secret", is.Name), is.ClientSecretFile); err != nil {
					return out, err
				}
			}
			out.Introspect = append(out.Introspect, introspect.Config{
				Name: cmp.Or(is.Name, is.Issuer), URL: is.IntrospectionURL, ClientID: is.ClientID, ClientSecret: []byte(secret), Audiences: is.Audiences,
				ActiveTTL: time.Duration(is.ActiveTTL), InactiveTTL: time.Duration(is.InactiveTTL), ScopeClaim: is.ScopeClaim,
				ClaimHeaders: a.ClaimHeaders,
				Discover:     is.Discovered(), Issuer: is.Issuer, DiscoveryURL: is.DiscoveryURL,
				RefreshInterval: time.Duration(is.RefreshInterval), CacheDir: cfg.CacheDir(),
			})
			continue
		}
		jc, err := jwtIssuer(is)
		if err != nil {
			return out, err
		}
		out.JWT.Issuers = append(out.JWT.Issuers, jc)
	}
	if dev {
		ic, err := devIssuer(cfg.DataDir)
		if err != nil {
			return out, fmt.Errorf("development issuer: %w", err)
		}
		out.JWT.Issuers = append(out.JWT.Issuers, ic)
		log.Warn("DEVELOPMENT ISSUER ENABLED (--dev): tokens minted by `tollgate token` are accepted. Never use --dev in production.",
			zap.String("issuer", devissuer.Issuer), zap.String("audience", devissuer.Audience))
	}
	if m := a.MutualTLS; len(m.CAFiles) > 0 {
		out.MutualTLS = &mtls.Config{CAFiles: m.CAFiles, AllowedSANs: m.AllowedSANs, AllowedSubjects: m.AllowedSubjects,
			AllowedSPKI: m.AllowedSPKI, CRLFiles: m.CRLFiles, CRLExpiry: string(m.CRLExpiry), FromXFCC: m.FromXFCC}
	}
	if cfg.Throttling.Backend == config.BackendRedis {
		rc, err := redisConfig(cfg.Throttling.Redis)
		if err != nil {
			return out, err
		}
		out.Redis = &rc
	}
	if n := cfg.Admin.WSO2Notify; n != nil {
		out.WSO2Notify = &server.WSO2Notify{Users: n.Users, KeyManagers: n.KeyManagers}
	}
	if cfg.Admin.TokenFile != "" {
		tok, err := readPasswordFile("admin token", cfg.Admin.TokenFile)
		if err != nil {
			return out, err
		}
		out.AdminToken = []byte(tok)
	}
	return out, nil
}

func redisConfig(r config.Redis) (ratelimit.RedisConfig, error) {
	out := ratelimit.RedisConfig{
		Addrs: r.Addrs, MasterName: r.MasterName, Username: r.Username, DB: r.DB,
		Timeout: time.Duration(r.Timeout), Fallback: ratelimit.Fallback(r.Fallback), Retry: time.Duration(r.Retry),
		Lease: cmp.Or(time.Duration(r.Lease), -1), // 0 in the configuration: no leases
	}
	var err error
	if r.PasswordFile != "" {
		if out.Password, err = readPasswordFile("redis password", r.PasswordFile); err != nil {
			return out, err
		}
	}
	if r.TLS.Enabled {
		var tc *tls.Config
		if tc, err = tlsfiles.Client(r.TLS.CAFile, r.TLS.CertFile, r.TLS.KeyFile, r.TLS.ServerName); err != nil {
			return out, fmt.Errorf("redis TLS %w", err)
		}
		out.TLS = tc
	}
	return out, nil
}

// xdsConfig is the control plane's configuration, with the TLS material Envoy's HTTPS
// listener serves.
func xdsConfig(cfg config.Config) (xds.Config, error) {
	x := cfg.XDS
	opt := build.Options{
		AuthzAddress: cmp.Or(x.AuthzAddress, cfg.Authz.Listen), HTTPPort: x.HTTPPort, HTTPSPort: x.HTTPSPort,
		ClientCertificates: string(x.TLS.ClientCertificates),
		RouteTimeout:       time.Duration(x.RouteTimeout), ConnectTimeout: time.Duration(x.ConnectTimeout),
		RouteScopes:    x.RouteScopes,
		UpstreamCAFile: x.UpstreamCAFile,
		AuthzTLS:       build.FileTLS{CAFile: x.AuthzTLS.CAFile, CertFile: x.AuthzTLS.CertFile, KeyFile: x.AuthzTLS.KeyFile, ServerName: x.AuthzTLS.ServerName},
		Edge:           x.Edge.Settings(x.AccessLog),
		FaultFormat:    string(cfg.Authz.FaultFormat),
		Faults:         cfg.FaultTemplate(),
	}
	if cfg.Analytics.Enabled {
		opt.Analytics = &build.Analytics{FlushInterval: time.Duration(cfg.Analytics.FlushInterval)}
	}
	if t := cfg.Tracing; t.Enabled && t.Envoy {
		opt.Tracing = &build.Tracing{Collector: cmp.Or(t.EnvoyEndpoint, t.Endpoint), CAFile: t.EnvoyCAFile, ServiceName: "envoy", Sampling: t.EnvoySampling}
	}
	var secrets []store.Secret
	if x.TLS.CertFile != "" {
		cert, err := os.ReadFile(x.TLS.CertFile)
		if err != nil {
			return xds.Config{}, err
		}
		key, err := os.ReadFile(x.TLS.KeyFile)
		if err != nil {
			return xds.Config{}, err
		}
		secrets = append(secrets, store.Secret{Name: build.ServerCertSecret, CertPEM: cert, KeyPEM: key})
	}
	if x.TLS.ClientCAFile != "" {
		ca, err := os.ReadFile(x.TLS.ClientCAFile)
		if err != nil {
			return xds.Config{}, err
		}
		secrets = append(secrets, store.Secret{Name: build.ClientCASecret, CA: ca})
	}
	return xds.Config{Build: opt, Secrets: secrets, Groups: x.Groups, MaxGroups: x.MaxGroups}, nil
}

// jwtIssuer turns a configured issuer into the verifier's form, reading the HMAC secret file.
func jwtIssuer(i config.Issuer) (jwt.IssuerConfig, error) {
	out := jwt.IssuerConfig{
		Name: i.Name, Issuer: i.Issuer, Audiences: i.Audiences, AnyAudience: i.AnyAudience,
		JWKSURL: i.JWKSURL, JWKSFile: i.JWKSFile, CertificateFile: i.CertificateFile,
		Discovery: i.Discovered(), DiscoveryURL: i.DiscoveryURL,
		Algorithms: i.Algorithms, ClockSkew: time.Duration(i.ClockSkew), ScopeClaim: i.ScopeClaim,
		RefreshInterval: time.Duration(i.RefreshInterval), MinRefreshInterval: time.Duration(i.MinRefreshInterval),
		CertificateBound: i.CertificateBound, AcceptedTypes: i.AcceptedTypes, DPoPBound: i.DPoPBound,
	}
	if i.HMACSecretFile != "" {
		s, err := readSecret(fmt.Sprintf("issuer %q", i.Name), i.HMACSecretFile)
		if err != nil {
			return out, err
		}
		out.HMACSecret = []byte(s)
	}
	return out, nil
}

// devIssuer is the development issuer (tollgate run --dev): its key and JWKS in dataDir,
// made when absent.
func devIssuer(dataDir string) (jwt.IssuerConfig, error) {
	jwks, err := devissuer.Ensure(dataDir)
	if err != nil {
		return jwt.IssuerConfig{}, err
	}
	return jwt.IssuerConfig{Name: "dev", Issuer: devissuer.Issuer, Audiences: []string{devissuer.Audience}, JWKSFile: jwks, Algorithms: []string{"RS256"}}, nil
}

// readPasswordFile reads a password or token file, without its trailing line break (a
// password may end in spaces).
func readPasswordFile(what, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return string(trimNewline(b)), nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// readSecret reads a key file, without the surrounding white space an editor leaves.
func readSecret(what, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// portTLS is a port's TLS files in the server's form.
func portTLS(t config.PortTLS) tlsfiles.ServerConfig {
	return tlsfiles.ServerConfig{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}
}

// customTemplate is the configuration's own error template, or nil when a shipped format
// (authz.faultFormat) answers.
func customTemplate(cfg config.Config) *errfmt.Template {
	if cfg.Faults.Template == "" {
		return nil
	}
	return cfg.FaultTemplate()
}

// tracingConfig is the enforcer's tracing, or nil when off.
func tracingConfig(t config.Tracing) *tracing.Config {
	if !t.Enabled {
		return nil
	}
	return &tracing.Config{Endpoint: t.Endpoint, Insecure: t.Insecure, CAFile: t.CAFile, SampleRatio: t.SampleRatio}
}
