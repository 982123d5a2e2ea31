package build

import (
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	grpcalsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// listeners makes the gateway's HTTP and HTTPS listeners (ext_authz, then the router) and an
// API listener per gRPC API.
func listeners(apis []apiRoutes, scoped bool, opt Options) (out, grpc []types.Resource) {
	if opt.HTTPPort != 0 {
		out = append(out, &listenerv3.Listener{
			Name:                          ListenerHTTP,
			Address:                       socket("0.0.0.0", opt.HTTPPort),
			PerConnectionBufferLimitBytes: wrapperspb.UInt32(opt.Edge.BufferLimitBytes),
			FilterChains:                  []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{hcmFilter("http", scoped, opt)}}},
		})
	}
	if opt.HTTPSPort != 0 {
		common := &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: ServerCertSecret, SdsConfig: ADS()}},
			AlpnProtocols:                  []string{"h2", "http/1.1"},
			TlsParams:                      tlsParams(opt.Edge),
		}
		down := &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
		if opt.ClientCertificates != "" {
			common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
				ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: ClientCASecret, SdsConfig: ADS()},
			}
			down.RequireClientCertificate = wrapperspb.Bool(opt.ClientCertificates == "require")
		}
		out = append(out, &listenerv3.Listener{
			Name:                          ListenerHTTPS,
			Address:                       socket("0.0.0.0", opt.HTTPSPort),
			PerConnectionBufferLimitBytes: wrapperspb.UInt32(opt.Edge.BufferLimitBytes),
			FilterChains: []*listenerv3.FilterChain{{
				Filters: []*listenerv3.Filter{hcmFilter("https", scoped, opt)},
				TransportSocket: &corev3.TransportSocket{
					Name:       "envoy.transport_sockets.tls",
					ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(down)},
				},
			}},
		})
	}
	for _, ar := range apis {
		if ar.grpcCluster == "" {
			continue
		}
		hcm := &hcmv3.HttpConnectionManager{
			StatPrefix: "grpc_" + ar.api.Name,
			RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
				ConfigSource: ADS(), RouteConfigName: GRPCRouteName(ar.api.Name),
			}},
			HttpFilters: []*hcmv3.HttpFilter{routerFilter()},
		}
		grpc = append(grpc, &listenerv3.Listener{
			Name:        ar.api.Name,
			ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(hcm)},
		})
	}
	return out, grpc
}

// enforcerService is the enforcer's gRPC service, for ext_authz and ext_proc alike.
func enforcerService(opt Options) *corev3.GrpcService {
	return &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: opt.AuthzCluster}},
		Timeout:         durationpb.New(opt.AuthzTimeout),
	}
}

// tracing is the connection manager's OpenTelemetry tracer. Envoy sends its span's
// context on to the enforcer in the request's headers (traceparent), so the enforcer's
// Check span is its child.
func tracing(t Tracing) *hcmv3.HttpConnectionManager_Tracing {
	return &hcmv3.HttpConnectionManager_Tracing{
		RandomSampling: &typev3.Percent{Value: t.Sampling},
		Provider: &tracev3.Tracing_Http{Name: "envoy.tracers.opentelemetry", ConfigType: &tracev3.Tracing_Http_TypedConfig{
			TypedConfig: mustAny(&tracev3.OpenTelemetryConfig{
				GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: OTLPCluster}},
					Timeout: durationpb.New(time.Second)},
				ServiceName: t.ServiceName,
			})}},
	}
}

// AnalyticsLogName names the access log stream Envoy opens to the enforcer.
const AnalyticsLogName = "tollgate"

// analyticsLog is the http_grpc access logger that sends every finished request to the
// enforcer's access log service, buffered (16 KiB or FlushInterval, whichever comes
// first). The stream is the enforcer's long-lived one, so it has no timeout.
func analyticsLog(opt Options) *accesslogv3.AccessLog {
	service := enforcerService(opt)
	service.Timeout = nil
	return &accesslogv3.AccessLog{Name: "envoy.access_loggers.http_grpc", ConfigType: &accesslogv3.AccessLog_TypedConfig{
		TypedConfig: mustAny(&grpcalsv3.HttpGrpcAccessLogConfig{CommonConfig: &grpcalsv3.CommonGrpcAccessLogConfig{
			LogName: AnalyticsLogName, GrpcService: service, TransportApiVersion: corev3.ApiVersion_V3,
			BufferFlushInterval: durationpb.New(opt.Analytics.FlushInterval),
			BufferSizeBytes:     wrapperspb.UInt32(16 << 10),
		}})}}
}

// extProc is the ext_proc filter: the enforcer's response validation. It is disabled, and
// sends nothing, unless a route enables it with the processing its operation needs
// (responseProcessing).
func extProc(opt Options) *hcmv3.HttpFilter {
	service := enforcerService(opt)
	service.Timeout = nil // a stream lasts as long as its response; each message has MessageTimeout
	return &hcmv3.HttpFilter{
		Name:     extProcFilter,
		Disabled: true,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&extprocv3.ExternalProcessor{
			GrpcService:      service,
			FailureModeAllow: false,
			ProcessingMode: &extprocv3.ProcessingMode{
				RequestHeaderMode: extprocv3.ProcessingMode_SKIP, ResponseHeaderMode: extprocv3.ProcessingMode_SKIP,
				RequestTrailerMode: extprocv3.ProcessingMode_SKIP, ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
			},
			MessageTimeout: durationpb.New(opt.AuthzTimeout),
		})},
	}
}

func hcmFilter(prefix string, scoped bool, opt Options) *listenerv3.Filter {
	authz := &extauthzv3.ExtAuthz{
		Services:               &extauthzv3.ExtAuthz_GrpcService{GrpcService: enforcerService(opt)},
		TransportApiVersion:    corev3.ApiVersion_V3,
		IncludePeerCertificate: true,
		FailureModeAllow:       false,
		StatusOnError:          &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
		// The enforcer may set the environment header: pick the route again after it.
		ClearRouteCache: true,
		// Header values as bytes: a value that is not UTF-8 reaches the enforcer, which
		// denies it, instead of failing the CheckRequest's decoding.
		EncodeRawHeaders: true,
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: prefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: ADS(), RouteConfigName: RouteConfigName,
		}},
		HttpFilters: []*hcmv3.HttpFilter{
			// CORS first: it answers preflights (which carry no credentials) before ext_authz.
			{Name: corsFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&corsv3.Cors{})}},
			{Name: extAuthzFilter, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(authz)}},
			extProc(opt),
			routerFilter(),
		},
	}
	if scoped {
		hcm.RouteSpecifier = scopedRoutes()
	}
	hcm.LocalReplyConfig = localReplyConfig(opt.Faults)
	harden(opt.Edge, hcm)
	if opt.Analytics != nil {
		hcm.AccessLog = append(hcm.AccessLog, analyticsLog(opt))
	}
	if opt.Tracing != nil {
		hcm.Tracing = tracing(*opt.Tracing)
	}
	if prefix == "https" && opt.ClientCertificates != "" {
		// The client's certificate chain reaches the enforcer (and the backend) in
		// x-forwarded-client-cert, set by Envoy alone (a client's own header is dropped):
		// ext_authz forwards only the leaf, and the chain completes the path to the CA.
		hcm.ForwardClientCertDetails = hcmv3.HttpConnectionManager_SANITIZE_SET
		hcm.SetCurrentClientCertDetails = &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{Cert: true, Chain: true}
	}
	return &listenerv3.Filter{
		Name:       "envoy.filters.network.http_connection_manager",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
	}
}

func routerFilter() *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{
		Name:       "envoy.filters.http.router",
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
	}
}

func socket(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// secretResources makes SDS secrets: a server certificate, or a client CA.
func secretResources(secrets []store.Secret) []types.Resource {
	var out []types.Resource
	for _, s := range secrets {
		sec := &tlsv3.Secret{Name: s.Name}
		if len(s.CA) > 0 {
			sec.Type = &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: inline(s.CA),
			}}
		} else {
			sec.Type = &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: inline(s.CertPEM), PrivateKey: inline(s.KeyPEM),
			}}
		}
		out = append(out, sec)
	}
	return out
}

func inline(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}
