package build

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/edge"
)

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
func harden(e edge.Settings, hcm *hcmv3.HttpConnectionManager) {
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
		hcm.AccessLog = []*accesslogv3.AccessLog{accessLog(e)}
	}
}

// tlsParams are the HTTPS listener's protocol versions and ciphers.
func tlsParams(e edge.Settings) *tlsv3.TlsParameters {
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

func accessLog(e edge.Settings) *accesslogv3.AccessLog {
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
