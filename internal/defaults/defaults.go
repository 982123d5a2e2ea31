// Package defaults holds every default value that more than one place needs: the
// configuration's defaults (internal/config.Default, and so the README's configuration
// reference, which a test compares with it) and the zero-value defaults of the component
// constructors that tests and benchmarks call directly. Each value is written here once.
package defaults

import "time"

// etcd and the store.
const (
	Prefix             = "/tollgate/"
	DataDir            = "./data"
	EmbeddedClientAddr = "127.0.0.1:2379"
	EmbeddedPeerAddr   = "127.0.0.1:2380"
	EtcdDialTimeout    = 5 * time.Second
	EtcdRequestTimeout = 5 * time.Second
)

// The enforcer.
const (
	AuthzListen           = "127.0.0.1:9191"
	FaultFormat           = "wso2"
	TokenCacheSize        = 100000 // verified tokens (and introspection results) kept
	MaxTokenBytes         = 8192
	ApplicationTierClaim  = "application_tier"
	SubscriptionTierClaim = "subscription_tier"
	CRLExpiry             = "hard"
	// CRLRefreshInterval is how often the enforcer looks whether a CRL file changed.
	CRLRefreshInterval = 10 * time.Second
	// DPoPNonceLifetime is how long a server-provided DPoP nonce is good (RFC 9449 §8).
	DPoPNonceLifetime = 5 * time.Minute
	DPoPMaxAge        = time.Minute
	ReplayCacheSize   = 100000 // DPoP proof ids remembered in memory
)

// Request validation.
const (
	// MaxBodySize is the largest request body a validated operation takes (1 MiB); Envoy
	// answers 413 to a larger one without buffering past it.
	MaxBodySize = 1 << 20
	// MaxBodySizeLimit bounds any setting of it: the body is buffered in Envoy and sent to
	// the enforcer whole, in one gRPC message.
	MaxBodySizeLimit = 8 << 20
)

// Token issuers.
const (
	ClockSkew            = 30 * time.Second
	RefreshInterval      = 10 * time.Minute
	MinRefreshInterval   = 10 * time.Second
	IntrospectionTimeout = 2 * time.Second
	ActiveTTL            = 5 * time.Minute
	InactiveTTL          = 30 * time.Second
)

// Throttling.
const (
	ThrottlingBackend = "local"
	RedisTimeout      = 50 * time.Millisecond
	RedisFallback     = "local"
	RedisRetry        = time.Second
	RedisLease        = 100 * time.Millisecond
)

// The control plane and the admin port.
const (
	XDSListen = "127.0.0.1:18000"
	HTTPPort  = 8080
	NodeGroup = "default"
	// MaxGroups bounds the gateway groups a control plane serves: each is built on every
	// change of the configuration.
	MaxGroups      = 64
	RouteTimeout   = 15 * time.Second
	ConnectTimeout = 5 * time.Second
	UpstreamCAFile = "/etc/ssl/certs/ca-certificates.crt"
	AdminListen    = "127.0.0.1:9902"
	LogLevel       = "info"
	LogFormat      = "console"
)

// Analytics from Envoy's access logs.
const (
	// AnalyticsApplications is how many applications get a label of their own.
	AnalyticsApplications = 100
	// AnalyticsFlushInterval is how often Envoy sends its buffered access log entries.
	AnalyticsFlushInterval = time.Second
)

// Tracing (OpenTelemetry), when enabled.
const (
	// TracingEndpoint is the collector's OTLP/gRPC address.
	TracingEndpoint = "127.0.0.1:4317"
	// TracingSampleRatio is the share of requests the enforcer traces when Envoy sent no
	// trace context.
	TracingSampleRatio = 0.01
	// TracingEnvoySampling is the percent of requests Envoy starts a trace for.
	TracingEnvoySampling = 1.0
)
