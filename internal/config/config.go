// Package config is the tollgate.yaml schema: every field, its default, and its checks.
// The README's configuration reference documents the same fields.
package config

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/defaults"
	"github.com/tollgate-gw/tollgate/internal/errfmt"

	"sigs.k8s.io/yaml"

	"github.com/tollgate-gw/tollgate/internal/edge"
)

// Config is tollgate.yaml.
type Config struct {
	// Prefix is the root of Tollgate's keys in etcd.
	Prefix string `json:"prefix"`
	// DataDir holds the embedded etcd's data and the development issuer's key.
	DataDir    string     `json:"dataDir"`
	Etcd       Etcd       `json:"etcd"`
	Authz      Authz      `json:"authz"`
	XDS        XDS        `json:"xds"`
	Admin      Admin      `json:"admin"`
	Log        Log        `json:"log"`
	Issuers    []Issuer   `json:"issuers"`
	Throttling Throttling `json:"throttling"`
	Cache      Cache      `json:"cache"`
	Validation Validation `json:"validation"`
	Faults     Faults     `json:"faults"`
	Kubernetes Kubernetes `json:"kubernetes"`
	Analytics  Analytics  `json:"analytics"`
	Tracing    Tracing    `json:"tracing"`
}

// Tracing is OpenTelemetry tracing (internal/tracing): off unless enabled.
type Tracing struct {
	Enabled bool `json:"enabled"`
	// Endpoint is the collector's OTLP/gRPC host:port.
	Endpoint string `json:"endpoint"`
	// Insecure speaks plain gRPC to the collector; else TLS verified with CAFile (or the
	// system's roots).
	Insecure bool   `json:"insecure"`
	CAFile   string `json:"caFile"`
	// SampleRatio is the share of requests the enforcer traces when Envoy sent no trace
	// context (with one, Envoy's decision holds).
	SampleRatio float64 `json:"sampleRatio"`
	// Envoy has the control plane point Envoy's OpenTelemetry tracer at the collector
	// (EnvoyEndpoint, default Endpoint; EnvoyCAFile on the Envoy's host for TLS), starting
	// a trace for EnvoySampling percent of requests.
	Envoy         bool    `json:"envoy"`
	EnvoyEndpoint string  `json:"envoyEndpoint"`
	EnvoyCAFile   string  `json:"envoyCAFile"`
	EnvoySampling float64 `json:"envoySampling"`
}

// Analytics is what the gateway learns from Envoy's access logs (internal/analytics).
type Analytics struct {
	// Enabled makes the control plane add an http_grpc access logger to Envoy's listeners,
	// sending every finished request to the enforcer's port.
	Enabled bool `json:"enabled"`
	// File, if set, receives one JSON line per request.
	File string `json:"file"`
	// Applications is how many applications get a label of their own; later ones are
	// counted as "other".
	Applications int `json:"applications"`
	// FlushInterval is how often Envoy sends what it has buffered.
	FlushInterval Duration `json:"flushInterval"`
}

// Kubernetes is the control plane's view of a Kubernetes cluster.
type Kubernetes struct {
	// Discovery follows the Services that k8s://NAMESPACE/SERVICE:PORT endpoints name.
	Discovery bool `json:"discovery"`
	// Kubeconfig is a kubeconfig file; empty: the pod's service account.
	Kubeconfig string `json:"kubeconfig"`
}

// Faults is the gateway's own error format, for every answer it makes — the enforcer's
// denies and Envoy's local replies. Without a template, authz.faultFormat picks a shipped
// one (wso2 or problem).
type Faults struct {
	// Template is a Go text/template over .Code, .Message, .Description, .Status,
	// .RequestID, .API and .Operation ({{json .Description}} writes a JSON string).
	Template    string `json:"template"`
	ContentType string `json:"contentType"`
}

// FaultTemplate is the gateway's error template: faults.template, else the shipped one
// authz.faultFormat names.
func (c Config) FaultTemplate() *errfmt.Template {
	if c.Faults.Template != "" {
		if t, err := errfmt.Parse(c.Faults.Template, c.Faults.ContentType); err == nil {
			return t
		}
	}
	return errfmt.Builtin(string(c.Authz.FaultFormat))
}

// ValidationDefaults are the validation settings definitions are read under.
func (c Config) ValidationDefaults() apimodel.ValidationDefaults {
	return apimodel.ValidationDefaults{Request: c.Validation.Request, Response: c.Validation.Response, MaxBody: c.Validation.MaxBodySize}
}

// Validation is the gateway's default for operations whose definition does not say
// (x-tollgate-validation) whether their requests are checked against it.
type Validation struct {
	// Request validates every operation's parameters, content type and body.
	Request bool `json:"request"`
	// MaxBodySize is a validated operation's largest request body, in bytes.
	MaxBodySize int64 `json:"maxBodySize"`
	// Response: enforce replaces a response that does not match the definition with a 500
	// fault, report lets it through and counts and logs it, off does neither.
	Response apimodel.ResponseMode `json:"response"`
}

// Cache is the local copy each server keeps of what it follows in etcd, served when it
// starts while etcd cannot be read.
type Cache struct {
	// Dir holds the copy (default <dataDir>/cache); files are private (0600).
	Dir string `json:"dir"`
	// Disabled turns the copy off: a server started while etcd is away then has nothing
	// to serve until etcd is back.
	Disabled bool `json:"disabled"`
}

// CacheDir is where the local copy lives, or "" when it is off.
func (c Config) CacheDir() string {
	if c.Cache.Disabled {
		return ""
	}
	if c.Cache.Dir != "" {
		return c.Cache.Dir
	}
	return filepath.Join(c.DataDir, "cache")
}

// Throttling configures how often requests may pass.
type Throttling struct {
	// Backend is "local" (counters in each enforcer) or "redis" (shared).
	Backend Backend `json:"backend"`
	Redis   Redis   `json:"redis"`
	// Headers adds RateLimit-* headers to allowed responses.
	Headers bool `json:"headers"`
	// Claims carrying the application's and the subscription's policy names.
	ApplicationTierClaim  string `json:"applicationTierClaim"`
	SubscriptionTierClaim string `json:"subscriptionTierClaim"`
}

// Redis says where the shared counters are.
type Redis struct {
	Addrs        []string `json:"addrs"`      // one: standalone; several: Cluster; with masterName: Sentinels
	MasterName   string   `json:"masterName"` // Sentinel
	Username     string   `json:"username"`
	PasswordFile string   `json:"passwordFile"`
	DB           int      `json:"db"`
	Timeout      Duration `json:"timeout"`  // every Redis call
	Fallback     Fallback `json:"fallback"` // local | allow | deny, while Redis is unreachable
	Retry        Duration `json:"retry"`    // how long Redis is left alone after a failure
	// Lease: how long an enforcer may hand out units of a busy counter it took from Redis
	// ahead of time (0 turns leases off: one Redis step per request).
	Lease Duration `json:"lease"`
	TLS   RedisTLS `json:"tls"`
}

// RedisTLS is TLS to Redis (managed Redis services usually require it). The server's
// certificate is always verified.
type RedisTLS struct {
	Enabled    bool   `json:"enabled"`
	CAFile     string `json:"caFile"`   // trust store (the system's roots when empty)
	CertFile   string `json:"certFile"` // client certificate, when Redis asks for one
	KeyFile    string `json:"keyFile"`
	ServerName string `json:"serverName"` // name in the server's certificate (the address's host by default)
}

// Etcd says where etcd is. No endpoints: `tollgate run` starts an embedded etcd.
type Etcd struct {
	Endpoints          []string `json:"endpoints"`
	EmbeddedClientAddr string   `json:"embeddedClientAddr"`
	EmbeddedPeerAddr   string   `json:"embeddedPeerAddr"`
	DialTimeout        Duration `json:"dialTimeout"`
	RequestTimeout     Duration `json:"requestTimeout"`
	Username           string   `json:"username"`
	PasswordFile       string   `json:"passwordFile"`
	CAFile             string   `json:"caFile"`
	CertFile           string   `json:"certFile"`
	KeyFile            string   `json:"keyFile"`
}

// Authz configures the enforcer.
type Authz struct {
	Listen string `json:"listen"`
	// ServerTLS is TLS (with a client CA, mutual TLS) on the ext_authz gRPC port.
	ServerTLS           PortTLS           `json:"serverTLS"`
	FaultFormat         FaultFormat       `json:"faultFormat"`
	RemoveAuthorization bool              `json:"removeAuthorization"`
	ClaimHeaders        map[string]string `json:"claimHeaders"`
	TokenCacheSize      int               `json:"tokenCacheSize"`
	MaxTokenBytes       int               `json:"maxTokenBytes"`
	// MutualTLS: the CAs that sign trusted client certificates, and what else they must say.
	MutualTLS MutualTLS `json:"mutualTLS"`
	// BasicUsers: user name → bcrypt or argon2id hash (`tollgate hash`); more in etcd users/.
	BasicUsers map[string]string `json:"basicUsers"`
	// ForwardAPIKey lets an API key sent in a header or query reach the backend.
	ForwardAPIKey bool `json:"forwardAPIKey"`
	// DPoP: how RFC 9449 proofs are checked.
	DPoP DPoP `json:"dpop"`
}

// DPoP configures proof-of-possession checks (RFC 9449). Proof ids are remembered in Redis
// when throttling uses Redis (replicas share them), else in each enforcer's memory.
type DPoP struct {
	// MaxAge is how old a proof may be; Algorithms those a proof may be signed with
	// (empty: every asymmetric JWS algorithm).
	MaxAge     Duration `json:"maxAge"`
	Algorithms []string `json:"algorithms"`
	// RequireNonce makes every proof carry a nonce the gateway gave out (RFC 9449 §8),
	// valid for NonceLifetime; enforcers that share NonceSecretFile (≥ 32 bytes) accept
	// each other's nonces (without it each makes a key of its own).
	RequireNonce    bool     `json:"requireNonce"`
	NonceLifetime   Duration `json:"nonceLifetime"`
	NonceSecretFile string   `json:"nonceSecretFile"`
}

// MutualTLS configures client certificate checks.
type MutualTLS struct {
	CAFiles         []string `json:"caFiles"`
	AllowedSANs     []string `json:"allowedSANs"`
	AllowedSubjects []string `json:"allowedSubjects"`
	AllowedSPKI     []string `json:"allowedSPKI"`
	CRLFiles        []string `json:"crlFiles"`
	// CRLExpiry: hard (refuse the issuer's certificates once its CRL is past nextUpdate)
	// or soft (keep using the stale list).
	CRLExpiry CRLExpiry `json:"crlExpiry"`
	// FromXFCC takes the certificate from x-forwarded-client-cert when Envoy forwards none
	// (Envoy behind another TLS-terminating proxy that sanitises the header).
	FromXFCC bool `json:"fromXFCC"`
}

// XDS configures the control plane and the Envoy configuration it generates.
type XDS struct {
	Listen string `json:"listen"`
	// ServerTLS is TLS (with a client CA, mutual TLS) on the ADS gRPC port.
	ServerTLS PortTLS `json:"serverTLS"`
	// AuthzAddress is where Envoy reaches the enforcer (default: authz.listen).
	AuthzAddress string `json:"authzAddress"`
	// AuthzTLS is how Envoy's cluster of the enforcer speaks TLS to it (files on the
	// Envoy's host); empty: plaintext.
	AuthzTLS EnvoyTLS `json:"authzTLS"`
	// HTTPPort and HTTPSPort are Envoy's listeners (0: none). HTTPS needs tls.
	HTTPPort  uint32 `json:"httpPort"`
	HTTPSPort uint32 `json:"httpsPort"`
	TLS       TLS    `json:"tls"`
	// Groups are gateway groups built from the start (others are added as Envoys connect).
	Groups []string `json:"groups"`
	// MaxGroups is how many gateway groups are served at most; a node naming another is
	// refused (each group is built on every configuration change).
	MaxGroups      int      `json:"maxGroups"`
	RouteTimeout   Duration `json:"routeTimeout"`
	ConnectTimeout Duration `json:"connectTimeout"`
	// RouteScopes splits Envoy's route table by the APIs' first path segment (scoped
	// routes), so an API change resends that API's table only.
	RouteScopes bool `json:"routeScopes"`
	// UpstreamCAFile is the trust store on the Envoy host for https backends without a CA.
	UpstreamCAFile string `json:"upstreamCAFile"`
	// Edge is how Envoy's listeners face clients; AccessLog is where it logs requests.
	Edge      Edge      `json:"edge"`
	AccessLog AccessLog `json:"accessLog"`
}

// Edge is Envoy's client-facing hardening (see internal/edge for each field's meaning).
type Edge struct {
	TrustedHops                 uint32   `json:"trustedHops"`
	MaxRequestHeadersKB         uint32   `json:"maxRequestHeadersKB"`
	RequestHeadersTimeout       Duration `json:"requestHeadersTimeout"`
	StreamIdleTimeout           Duration `json:"streamIdleTimeout"`
	RequestTimeout              Duration `json:"requestTimeout"`
	IdleTimeout                 Duration `json:"idleTimeout"`
	BufferLimitBytes            uint32   `json:"bufferLimitBytes"`
	MaxConcurrentStreams        uint32   `json:"maxConcurrentStreams"`
	InitialStreamWindowSize     uint32   `json:"initialStreamWindowSize"`
	InitialConnectionWindowSize uint32   `json:"initialConnectionWindowSize"`
	HeadersWithUnderscores      string   `json:"headersWithUnderscores"`
	EscapedSlashes              string   `json:"escapedSlashes"`
	TLSMinVersion               string   `json:"tlsMinVersion"`
	TLSMaxVersion               string   `json:"tlsMaxVersion"`
	CipherSuites                []string `json:"cipherSuites"`
}

// AccessLog is Envoy's access log: JSON lines to its standard output, or to Path.
type AccessLog struct {
	Path     string `json:"path"`
	Disabled bool   `json:"disabled"`
}

// Settings is the edge settings in the control plane's form.
func (e Edge) Settings(l AccessLog) edge.Settings {
	return edge.Settings{
		TrustedHops: e.TrustedHops, MaxRequestHeadersKB: e.MaxRequestHeadersKB,
		RequestHeadersTimeout: time.Duration(e.RequestHeadersTimeout), StreamIdleTimeout: time.Duration(e.StreamIdleTimeout),
		RequestTimeout: time.Duration(e.RequestTimeout), IdleTimeout: time.Duration(e.IdleTimeout),
		BufferLimitBytes: e.BufferLimitBytes, MaxConcurrentStreams: e.MaxConcurrentStreams,
		InitialStreamWindowSize: e.InitialStreamWindowSize, InitialConnectionWindow: e.InitialConnectionWindowSize,
		HeadersWithUnderscores: e.HeadersWithUnderscores, EscapedSlashes: e.EscapedSlashes,
		TLSMinVersion: e.TLSMinVersion, TLSMaxVersion: e.TLSMaxVersion, CipherSuites: e.CipherSuites,
		AccessLog: edge.AccessLog{Path: l.Path, Disabled: l.Disabled},
	}
}

func edgeDefaults() Edge {
	d := edge.Default()
	return Edge{
		TrustedHops: d.TrustedHops, MaxRequestHeadersKB: d.MaxRequestHeadersKB,
		RequestHeadersTimeout: Duration(d.RequestHeadersTimeout), StreamIdleTimeout: Duration(d.StreamIdleTimeout),
		RequestTimeout: Duration(d.RequestTimeout), IdleTimeout: Duration(d.IdleTimeout),
		BufferLimitBytes: d.BufferLimitBytes, MaxConcurrentStreams: d.MaxConcurrentStreams,
		InitialStreamWindowSize: d.InitialStreamWindowSize, InitialConnectionWindowSize: d.InitialConnectionWindow,
		HeadersWithUnderscores: d.HeadersWithUnderscores, EscapedSlashes: d.EscapedSlashes,
		TLSMinVersion: d.TLSMinVersion, TLSMaxVersion: d.TLSMaxVersion,
	}
}

// TLS is the certificate Envoy's HTTPS listener serves, served to Envoy over SDS.
type TLS struct {
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	// ClientCAFile and ClientCertificates ("optional" or "require") turn on mutual TLS.
	ClientCAFile       string             `json:"clientCAFile"`
	ClientCertificates ClientCertificates `json:"clientCertificates"`
}

// PortTLS is TLS on one of Tollgate's own gRPC ports: its certificate and key, and with
// ClientCAFile mutual TLS (every client presents a certificate signed by it). The files are
// read again when they change.
type PortTLS struct {
	CertFile     string `json:"certFile"`
	KeyFile      string `json:"keyFile"`
	ClientCAFile string `json:"clientCAFile"`
}

// EnvoyTLS is the TLS an Envoy speaks to one of Tollgate's ports: files on the Envoy's
// host — the CA that signed Tollgate's certificate, and Envoy's own certificate and key
// for mutual TLS — and the name Tollgate's certificate must carry (sent as SNI).
type EnvoyTLS struct {
	CAFile     string `json:"caFile"`
	CertFile   string `json:"certFile"`
	KeyFile    string `json:"keyFile"`
	ServerName string `json:"serverName"`
}

// Admin configures the HTTP port with /healthz, /readyz and /metrics.
type Admin struct {
	Listen string `json:"listen"`
	// AllowRemote permits a non-loopback admin address.
	AllowRemote bool `json:"allowRemote"`
	// TokenFile holds the bearer token that POST /revoke and /notify/revocation require;
	// without it those endpoints are off.
	TokenFile string `json:"tokenFile"`
	// Profiling serves Go's profiler and execution tracer under /debug/pprof/.
	Profiling bool `json:"profiling"`
	// TLS, if set, serves the admin port over HTTPS (with ClientCAFile, mutual TLS).
	TLS PortTLS `json:"tls"`
	// WSO2Notify, if set, takes WSO2 Identity Server's revocation events on
	// /internal/data/v1/notify.
	WSO2Notify *WSO2Notify `json:"wso2Notify"`
}

// WSO2Notify is who may post WSO2 IS's events (its ApimOauthEventInterceptor's username
// and password, and X-WSO2-KEY-MANAGER header).
type WSO2Notify struct {
	// Users are name → password hash (bcrypt or argon2id, `tollgate hash`).
	Users map[string]string `json:"users"`
	// KeyManagers, if set, are the X-WSO2-KEY-MANAGER values taken (default: any).
	KeyManagers []string `json:"keyManagers"`
}

// Log configures logging.
type Log struct {
	Level  LogLevel  `json:"level"`  // debug, info, warn, error
	Format LogFormat `json:"format"` // json or console
}

// Issuer is a trusted token issuer (the verifier's form is made in cmd/tollgate).
type Issuer struct {
	Name               string   `json:"name"`
	Issuer             string   `json:"issuer"`
	Audiences          []string `json:"audiences"`
	AnyAudience        bool     `json:"anyAudience"`
	JWKSURL            string   `json:"jwksURL"`
	JWKSFile           string   `json:"jwksFile"`
	CertificateFile    string   `json:"certificateFile"`
	HMACSecretFile     string   `json:"hmacSecretFile"`
	Algorithms         []string `json:"algorithms"`
	ClockSkew          Duration `json:"clockSkew"`
	ScopeClaim         string   `json:"scopeClaim"`
	RefreshInterval    Duration `json:"refreshInterval"`
	MinRefreshInterval Duration `json:"minRefreshInterval"`
	// CertificateBound requires the issuer's tokens to be bound to the client certificate
	// (RFC 8705 cnf x5t#S256); bound tokens are checked either way.
	CertificateBound bool `json:"certificateBound"`
	// AcceptedTypes are the typ values of the issuer's access tokens ("" for none); nil:
	// "", JWT, at+jwt.
	AcceptedTypes []string `json:"acceptedTypes"`
	// DPoPBound requires the issuer's tokens to be DPoP-bound (RFC 9449 cnf.jkt).
	DPoPBound bool `json:"dpopBound"`
	// Discovery reads the issuer's metadata (OIDC Discovery's
	// /.well-known/openid-configuration, else RFC 8414's oauth-authorization-server) for its
	// jwks_uri (or introspection_endpoint): at DiscoveryURL if set, else at the issuer's
	// well-known locations. An issuer with no other source of keys is discovered.
	Discovery    bool   `json:"discovery"`
	DiscoveryURL string `json:"discoveryURL"`
	// An issuer of opaque tokens is asked by RFC 7662 introspection instead: its endpoint
	// (or Introspection: true to take it from the metadata), and the gateway's client
	// credentials there.
	IntrospectionURL string   `json:"introspectionURL"`
	Introspection    bool     `json:"introspection"`
	ClientID         string   `json:"clientID"`
	ClientSecretFile string   `json:"clientSecretFile"`
	ActiveTTL        Duration `json:"activeTTL"`
	InactiveTTL      Duration `json:"inactiveTTL"`
}

// checkKeySource checks that the issuer names at most one source of keys; with none, its
// metadata is discovered from the issuer URL.
func (i Issuer) checkKeySource() error {
	n := 0
	for _, src := range []string{i.JWKSURL, i.JWKSFile, i.CertificateFile, i.HMACSecretFile} {
		if src != "" {
			n++
		}
	}
	switch {
	case n > 1 || n == 1 && (i.Discovery || i.DiscoveryURL != ""):
		return fmt.Errorf("issuer %q: set exactly one of jwksURL, jwksFile, certificateFile, hmacSecretFile or discovery", i.Name)
	case n == 0:
		return i.checkDiscoverable()
	}
	return nil
}

// checkDiscoverable checks that the issuer can be discovered: an absolute http(s) URL.
func (i Issuer) checkDiscoverable() error {
	u, err := url.Parse(i.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("issuer %q: no jwksURL, jwksFile, certificateFile or hmacSecretFile, so its keys are discovered from the issuer URL, but issuer %q is not an https URL", i.Name, i.Issuer)
	}
	return nil
}

// Discovered reports whether the issuer's metadata is read from its discovery document.
func (i Issuer) Discovered() bool {
	if i.Opaque() {
		return i.IntrospectionURL == ""
	}
	return i.Discovery || i.DiscoveryURL != "" || i.JWKSURL == "" && i.JWKSFile == "" && i.CertificateFile == "" && i.HMACSecretFile == ""
}

// Opaque reports whether the issuer's tokens are introspected rather than verified as JWTs.
func (i Issuer) Opaque() bool { return i.IntrospectionURL != "" || i.Introspection }

// Default is the configuration with every default filled in.
func Default() Config {
	return Config{
		Prefix:  defaults.Prefix,
		DataDir: defaults.DataDir,
		Etcd: Etcd{
			EmbeddedClientAddr: defaults.EmbeddedClientAddr,
			EmbeddedPeerAddr:   defaults.EmbeddedPeerAddr,
			DialTimeout:        Duration(defaults.EtcdDialTimeout),
			RequestTimeout:     Duration(defaults.EtcdRequestTimeout),
		},
		Authz: Authz{Listen: defaults.AuthzListen, FaultFormat: FaultFormat(defaults.FaultFormat), TokenCacheSize: defaults.TokenCacheSize, MaxTokenBytes: defaults.MaxTokenBytes,
			MutualTLS: MutualTLS{CRLExpiry: CRLExpiry(defaults.CRLExpiry)}, DPoP: DPoP{MaxAge: Duration(defaults.DPoPMaxAge), NonceLifetime: Duration(defaults.DPoPNonceLifetime)}},
		XDS: XDS{Listen: defaults.XDSListen, HTTPPort: defaults.HTTPPort, Groups: []string{defaults.NodeGroup}, MaxGroups: defaults.MaxGroups,
			RouteTimeout: Duration(defaults.RouteTimeout), ConnectTimeout: Duration(defaults.ConnectTimeout), RouteScopes: true,
			UpstreamCAFile: defaults.UpstreamCAFile, Edge: edgeDefaults()},
		Admin:      Admin{Listen: defaults.AdminListen},
		Log:        Log{Level: LogLevel(defaults.LogLevel), Format: LogFormat(defaults.LogFormat)},
		Validation: Validation{MaxBodySize: defaults.MaxBodySize, Response: apimodel.ResponseOff},
		Analytics:  Analytics{Applications: defaults.AnalyticsApplications, FlushInterval: Duration(defaults.AnalyticsFlushInterval)},
		Tracing: Tracing{Endpoint: defaults.TracingEndpoint, Insecure: true, SampleRatio: defaults.TracingSampleRatio, Envoy: true,
			EnvoySampling: defaults.TracingEnvoySampling},
		Throttling: Throttling{Backend: Backend(defaults.ThrottlingBackend), Headers: true,
			ApplicationTierClaim: defaults.ApplicationTierClaim, SubscriptionTierClaim: defaults.SubscriptionTierClaim,
			Redis: Redis{Timeout: Duration(defaults.RedisTimeout), Fallback: Fallback(defaults.RedisFallback),
				Retry: Duration(defaults.RedisRetry), Lease: Duration(defaults.RedisLease)}},
	}
}

// Load reads a config file over the defaults. An empty path gives the defaults. Unknown
// fields are errors, so a typo does not silently do nothing.
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks values that are wrong whatever the role. It reads no file: the files
// the configuration names are read where the components are made (cmd/tollgate).
func (c *Config) Validate() error {
	if !strings.HasPrefix(c.Prefix, "/") {
		return fmt.Errorf("prefix %q must start with '/'", c.Prefix)
	}
	if c.Throttling.Backend == BackendRedis && len(c.Throttling.Redis.Addrs) == 0 {
		return fmt.Errorf("throttling.backend redis needs throttling.redis.addrs")
	}
	if rt := c.Throttling.Redis.TLS; !rt.Enabled && (rt.CAFile != "" || rt.CertFile != "" || rt.KeyFile != "" || rt.ServerName != "") {
		return fmt.Errorf("throttling.redis.tls has files or a server name but enabled is false")
	}
	if c.Throttling.Redis.Lease < 0 || c.Throttling.Redis.Lease > Duration(10*time.Second) {
		return fmt.Errorf("throttling.redis.lease %v must be between 0 (off) and 10s", time.Duration(c.Throttling.Redis.Lease))
	}
	if err := c.XDS.Edge.Settings(c.XDS.AccessLog).Check(); err != nil {
		return fmt.Errorf("xds.edge: %w", err)
	}
	if c.XDS.MaxGroups < max(1, len(c.XDS.Groups)) {
		return fmt.Errorf("xds.maxGroups %d must be at least 1 and at least the %d groups of xds.groups", c.XDS.MaxGroups, len(c.XDS.Groups))
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if err := c.validateAnswers(); err != nil {
		return err
	}
	if err := c.validateObservability(); err != nil {
		return err
	}
	if n := c.Admin.WSO2Notify; n != nil && len(n.Users) == 0 {
		return fmt.Errorf("admin.wso2Notify needs users (name: password hash), the credentials WSO2 IS posts with")
	}
	return c.validateIssuers()
}

// validateAnswers checks validation's settings and the error template.
func (c *Config) validateAnswers() error {
	if v := c.Validation.MaxBodySize; v < 1 || v > defaults.MaxBodySizeLimit {
		return fmt.Errorf("validation.maxBodySize %d must be 1 byte to %d MiB", v, defaults.MaxBodySizeLimit>>20)
	}
	if !c.Validation.Response.Valid() {
		return fmt.Errorf("validation.response %q must be enforce, report or off", c.Validation.Response)
	}
	if c.Faults.Template != "" {
		if _, err := errfmt.Parse(c.Faults.Template, c.Faults.ContentType); err != nil {
			return fmt.Errorf("faults.template: %w", err)
		}
	} else if c.Faults.ContentType != "" {
		return fmt.Errorf("faults.contentType is set without faults.template")
	}
	return nil
}

// validateTLS checks that every TLS setting is whole: a certificate with its key, a client
// CA with a certificate to serve, Envoy's side with the CA and the name to check.
func (c *Config) validateTLS() error {
	for name, t := range map[string]PortTLS{"authz.serverTLS": c.Authz.ServerTLS, "xds.serverTLS": c.XDS.ServerTLS, "admin.tls": c.Admin.TLS} {
		if (t.CertFile == "") != (t.KeyFile == "") || t.ClientCAFile != "" && t.CertFile == "" {
			return fmt.Errorf("%s: certFile and keyFile go together, and clientCAFile needs them", name)
		}
	}
	if a := c.XDS.AuthzTLS; a != (EnvoyTLS{}) && (a.CAFile == "" || a.ServerName == "" || (a.CertFile == "") != (a.KeyFile == "")) {
		return fmt.Errorf("xds.authzTLS needs caFile and serverName (the name in the enforcer's certificate), and certFile with keyFile")
	}
	// Without files, the HTTPS listener's certificate (and client CA) come from the etcd
	// secrets tollgate_server_cert (and tollgate_client_ca).
	if (c.XDS.TLS.CertFile == "") != (c.XDS.TLS.KeyFile == "") {
		return fmt.Errorf("xds.tls.certFile and xds.tls.keyFile go together")
	}
	return nil
}

// validateIssuers checks each issuer's source of keys or introspection endpoint, and that
// names (which schemes' x-tollgate-issuers use) are unique.
func (c *Config) validateIssuers() error {
	names := map[string]bool{}
	for i, is := range c.Issuers {
		name := cmp.Or(is.Name, is.Issuer)
		if names[name] {
			return fmt.Errorf("issuers[%d]: the name %q is used twice", i, name)
		}
		names[name] = true
		if !is.Opaque() {
			if err := is.checkKeySource(); err != nil {
				return fmt.Errorf("issuers[%d]: %w", i, err)
			}
			continue
		}
		switch {
		case is.ClientID == "":
			return fmt.Errorf("issuers[%d]: an introspection issuer needs clientID", i)
		case name == "":
			return fmt.Errorf("issuers[%d]: an introspection issuer needs a name", i)
		case is.IntrospectionURL != "" && (is.Discovery || is.DiscoveryURL != ""):
			return fmt.Errorf("issuers[%d]: introspectionURL, or discovery of the introspection endpoint, not both", i)
		case is.IntrospectionURL == "":
			if err := is.checkDiscoverable(); err != nil {
				return fmt.Errorf("issuers[%d]: %w", i, err)
			}
		}
	}
	return nil
}

// Duration is a time.Duration written as "30s", "5m" or "1h30m".
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string like \"30s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// validateObservability checks analytics' and tracing's settings.
func (c *Config) validateObservability() error {
	if a := c.Analytics; a.Applications < 1 || a.FlushInterval < Duration(100*time.Millisecond) || a.FlushInterval > Duration(time.Minute) {
		return fmt.Errorf("analytics: applications %d must be at least 1 and flushInterval %v between 100ms and 1m", a.Applications, time.Duration(a.FlushInterval))
	}
	return c.Tracing.check()
}

func (t Tracing) check() error {
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		return fmt.Errorf("tracing.sampleRatio %v must be between 0 and 1", t.SampleRatio)
	}
	if t.EnvoySampling < 0 || t.EnvoySampling > 100 {
		return fmt.Errorf("tracing.envoySampling %v must be a percent (0 to 100)", t.EnvoySampling)
	}
	if !t.Enabled {
		return nil
	}
	for _, e := range []struct{ name, addr string }{{"endpoint", t.Endpoint}, {"envoyEndpoint", t.EnvoyEndpoint}} {
		if e.addr == "" && e.name == "envoyEndpoint" {
			continue
		}
		if _, port, err := net.SplitHostPort(e.addr); err != nil || port == "" {
			return fmt.Errorf("tracing.%s %q must be host:port (OTLP/gRPC)", e.name, e.addr)
		}
	}
	return nil
}
