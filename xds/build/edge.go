package build

import (
	"fmt"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Edge is how the generated listeners face untrusted clients. The defaults are Envoy's own
// "Configuring Envoy as an edge proxy" best practices; each can be changed in the config
// (xds.edge, xds.accessLog).
type Edge struct {
	// TrustedHops is how many proxies in front of Envoy append to x-forwarded-for (0: Envoy
	// is the edge and the client's address is the connection's).
	TrustedHops uint32
	// MaxRequestHeadersKB bounds the request headers (default 60; raise it for large
	// tokens, at most 8192).
	MaxRequestHeadersKB uint32
	// RequestHeadersTimeout: time for a client to send its headers (default 10s).
	RequestHeadersTimeout time.Duration
	// StreamIdleTimeout: a stream with no activity is reset (default 5m); RequestTimeout
	// bounds a whole request, body included (default 5m); IdleTimeout closes a connection
	// with no streams (default 1h).
	StreamIdleTimeout, RequestTimeout, IdleTimeout time.Duration
	// BufferLimitBytes is the per-connection read/write buffer (default 32 KiB).
	BufferLimitBytes uint32
	// HTTP/2: concurrent streams per connection (default 100) and flow-control windows
	// (default 64 KiB per stream, 1 MiB per connection).
	MaxConcurrentStreams                             uint32
	InitialStreamWindowSize, InitialConnectionWindow uint32
	// HeadersWithUnderscores: "reject" (default: 400, so no header smuggling past a
	// backend that maps _ and - alike), "drop" or "allow".
	HeadersWithUnderscores string
	// EscapedSlashes, for %2F and %5C in a path: "unescape-and-redirect" (default),
	// "reject", "unescape-and-forward" or "keep".
	EscapedSlashes string
	// TLSMinVersion and TLSMaxVersion ("1.2", "1.3"; default 1.2 and 1.3) and CipherSuites
	// (Envoy's names; empty: Envoy's defaults) for the HTTPS listener.
	TLSMinVersion, TLSMaxVersion string
	CipherSuites                 []string
	// AccessLog: where each request is logged, as one JSON object per line.
	AccessLog AccessLog
}

// AccessLog configures the listeners' access log.
type AccessLog struct {
	// Path is a file on the Envoy host; empty: Envoy's standard output.
	Path string
	// Disabled turns the access log off.
	Disabled bool
}

// DefaultEdge is the edge settings with every default filled in.
func DefaultEdge() Edge {
	var e Edge
	e.defaults()
	return e
}

func (e *Edge) defaults() {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&e.MaxRequestHeadersKB, 60)
	def(&e.BufferLimitBytes, 32<<10)
	def(&e.MaxConcurrentStreams, 100)
	def(&e.InitialStreamWindowSize, 64<<10)
	def(&e.InitialConnectionWindow, 1<<20)
	defDur(&e.RequestHeadersTimeout, 10*time.Second)
	defDur(&e.StreamIdleTimeout, 5*time.Minute)
	defDur(&e.RequestTimeout, 5*time.Minute)
	defDur(&e.IdleTimeout, time.Hour)
	if e.HeadersWithUnderscores == "" {
		e.HeadersWithUnderscores = "reject"
	}
	if e.EscapedSlashes == "" {
		e.EscapedSlashes = "unescape-and-redirect"
	}
	if e.TLSMinVersion == "" {
		e.TLSMinVersion = "1.2"
	}
	if e.TLSMaxVersion == "" {
		e.TLSMaxVersion = "1.3"
	}
}

// Check says what is wrong with the settings (for the config's validation).
func (e Edge) Check() error {
	e.defaults()
	if _, ok := underscores[e.HeadersWithUnderscores]; !ok {
		return fmt.Errorf("headersWithUnderscores %q must be reject, drop or allow", e.HeadersWithUnderscores)
	}
	if _, ok := escapedSlashes[e.EscapedSlashes]; !ok {
		return fmt.Errorf("escapedSlashes %q must be unescape-and-redirect, reject, unescape-and-forward or keep", e.EscapedSlashes)
	}
	min, ok1 := tlsVersions[e.TLSMinVersion]
	max, ok2 := tlsVersions[e.TLSMaxVersion]
	if !ok1 || !ok2 || min < tlsv3.TlsParameters_TLSv1_2 || max < min {
		return fmt.Errorf("tls versions %q..%q: each 1.2 or 1.3, the minimum at least 1.2 and not above the maximum", e.TLSMinVersion, e.TLSMaxVersion)
	}
	if e.MaxRequestHeadersKB > 8192 {
		return fmt.Errorf("maxRequestHeadersKB %d is above Envoy's limit of 8192", e.MaxRequestHeadersKB)
	}
	return nil
}

var underscores = map[string]corev3.HttpProtocolOptions_HeadersWithUnderscoresAction{
	"reject": corev3.HttpProtocolOptions_REJECT_REQUEST,
	"drop":   corev3.HttpProtocolOptions_DROP_HEADER,
	"allow":  corev3.HttpProtocolOptions_ALLOW,
}

var escapedSlashes = map[string]hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction{
	"unescape-and-redirect": hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
	"reject":                hcmv3.HttpConnectionManager_REJECT_REQUEST,
	"unescape-and-forward":  hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD,
	"keep":                  hcmv3.HttpConnectionManager_KEEP_UNCHANGED,
}

var tlsVersions = map[string]tlsv3.TlsParameters_TlsProtocol{
	"1.0": tlsv3.TlsParameters_TLSv1_0, "1.1": tlsv3.TlsParameters_TLSv1_1,
	"1.2": tlsv3.TlsParameters_TLSv1_2, "1.3": tlsv3.TlsParameters_TLSv1_3,
}

// harden sets the edge settings on a client-facing connection manager.
func (e Edge) harden(hcm *hcmv3.HttpConnectionManager) {
	hcm.UseRemoteAddress = wrapperspb.Bool(true)
	hcm.XffNumTrustedHops = e.TrustedHops
	hcm.NormalizePath = wrapperspb.Bool(true)
	hcm.MergeSlashes = true
	hcm.PathWithEscapedSlashesAction = escapedSlashes[e.EscapedSlashes]
	hcm.MaxRequestHeadersKb = wrapperspb.UInt32(e.MaxRequestHeadersKB)
	hcm.RequestHeadersTimeout = durationpb.New(e.RequestHeadersTimeout)
	hcm.StreamIdleTimeout = durationpb.New(e.StreamIdleTimeout)
	hcm.RequestTimeout = durationpb.New(e.RequestTimeout)
	hcm.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{
		IdleTimeout:                  durationpb.New(e.IdleTimeout),
		HeadersWithUnderscoresAction: underscores[e.HeadersWithUnderscores],
	}
	hcm.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{
		MaxConcurrentStreams:        wrapperspb.UInt32(e.MaxConcurrentStreams),
		InitialStreamWindowSize:     wrapperspb.UInt32(e.InitialStreamWindowSize),
		InitialConnectionWindowSize: wrapperspb.UInt32(e.InitialConnectionWindow),
	}
	if !e.AccessLog.Disabled {
		hcm.AccessLog = []*accesslogv3.AccessLog{e.accessLog()}
	}
}

// tlsParams are the HTTPS listener's protocol versions and ciphers.
func (e Edge) tlsParams() *tlsv3.TlsParameters {
	return &tlsv3.TlsParameters{
		TlsMinimumProtocolVersion: tlsVersions[e.TLSMinVersion],
		TlsMaximumProtocolVersion: tlsVersions[e.TLSMaxVersion],
		CipherSuites:              e.CipherSuites,
	}
}

// AccessLogFields are the access log's JSON fields: Envoy's view of the request and the
// enforcer's decision (its dynamic metadata).
var AccessLogFields = map[string]string{
	"start_time":     "%START_TIME%",
	"method":         "%REQ(:METHOD)%",
	"path":           "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	"protocol":       "%PROTOCOL%",
	"authority":      "%REQ(:AUTHORITY)%",
	"status":         "%RESPONSE_CODE%",
	"response_flags": "%RESPONSE_FLAGS%",
	"bytes_received": "%BYTES_RECEIVED%",
	"bytes_sent":     "%BYTES_SENT%",
	"duration_ms":    "%DURATION%",
	"upstream_host":  "%UPSTREAM_HOST%",
	"upstream_ms":    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
	"client_address": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
	"user_agent":     "%REQ(USER-AGENT)%",
	"request_id":     "%REQ(X-REQUEST-ID)%",
	"route":          "%ROUTE_NAME%",
	"api":            "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:api)%",
	"operation":      "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:operation)%",
	"subject":        "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:subject)%",
	"client_id":      "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:client_id)%",
	"auth_type":      "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:auth_type)%",
}

func (e Edge) accessLog() *accesslogv3.AccessLog {
	fields := make(map[string]any, len(AccessLogFields))
	for k, v := range AccessLogFields {
		fields[k] = v
	}
	st, _ := structpb.NewStruct(fields)
	format := &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: st}}
	if e.AccessLog.Path != "" {
		return &accesslogv3.AccessLog{Name: "envoy.access_loggers.file", ConfigType: &accesslogv3.AccessLog_TypedConfig{
			TypedConfig: mustAny(&filev3.FileAccessLog{Path: e.AccessLog.Path, AccessLogFormat: &filev3.FileAccessLog_LogFormat{LogFormat: format}})}}
	}
	return &accesslogv3.AccessLog{Name: "envoy.access_loggers.stdout", ConfigType: &accesslogv3.AccessLog_TypedConfig{
		TypedConfig: mustAny(&streamv3.StdoutAccessLog{AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: format}})}}
}
