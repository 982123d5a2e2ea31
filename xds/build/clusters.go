package build

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// ADS is the config source of every dynamic resource: the same ADS stream.
func ADS() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// clusters makes an EDS cluster per endpoint set, the fronts' clusters, and the
// enforcer's cluster.
func clusters(sets, fronts map[string]EndpointSet, opt Options) []types.Resource {
	names := sortedNames(sets)
	out := make([]types.Resource, 0, len(names)+len(fronts)+1)
	for _, n := range names {
		s := sets[n]
		c := &clusterv3.Cluster{
			Name:                 n,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ADS()},
			ConnectTimeout:       durationpb.New(opt.ConnectTimeout),
			LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
			// Envoy's edge guidance: bounded buffers toward backends too.
			PerConnectionBufferLimitBytes: wrapperspb.UInt32(opt.Edge.BufferLimitBytes),
		}
		if s.DNS {
			// Host names: Envoy resolves them and follows DNS changes itself.
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
			c.EdsClusterConfig = nil
			c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
			c.LoadAssignment = dnsAssignment(n, s)
		}
		applyPolicy(c, s, opt)
		out = append(out, c)
	}
	out = append(out, frontClusters(fronts, opt)...)
	out = append(out, authzCluster(opt))
	if opt.Tracing != nil {
		out = append(out, otlpCluster(opt))
	}
	return out
}

// otlpCluster is the trace collector Envoy exports to: HTTP/2 (OTLP/gRPC), addressed by
// name or IP, with TLS when the collector's CA is given.
func otlpCluster(opt Options) *clusterv3.Cluster {
	t := opt.Tracing
	c := grpcCluster(OTLPCluster, t.Collector, opt.ConnectTimeout)
	if t.CAFile != "" {
		host, _, _ := net.SplitHostPort(t.Collector)
		c.TransportSocket = FileTLSSocket(FileTLS{CAFile: t.CAFile, ServerName: host})
	}
	return c
}

// applyPolicy sets what the endpoint policy asks of a cluster: balancing, circuit
// breakers, health checks, the protocol, and TLS (verified by the set's CA or the trust
// store, with the backend's name checked, and a client certificate for mutual TLS).
func applyPolicy(c *clusterv3.Cluster, s EndpointSet, opt Options) {
	p := s.Policy
	if p.LB == "least_request" {
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	}
	if cb := p.CircuitBreaker; cb != (apimodel.CircuitBreaker{}) {
		t := &clusterv3.CircuitBreakers_Thresholds{}
		set := func(v uint32) *wrapperspb.UInt32Value {
			if v == 0 {
				return nil
			}
			return wrapperspb.UInt32(v)
		}
		t.MaxConnections, t.MaxPendingRequests, t.MaxRequests, t.MaxRetries = set(cb.MaxConnections), set(cb.MaxPendingRequests), set(cb.MaxRequests), set(cb.MaxRetries)
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{t}}
	}
	if ej := p.Ejection; ej.FailurePercent > 0 {
		// Failure-ratio ejection only (consecutive-error ejection off): what MGW 3.x's
		// circuit breaker does, for any number of backends.
		c.OutlierDetection = &clusterv3.OutlierDetection{
			Interval:                           durationpb.New(ej.Interval),
			BaseEjectionTime:                   durationpb.New(ej.EjectionTime),
			MaxEjectionPercent:                 wrapperspb.UInt32(100),
			FailurePercentageThreshold:         wrapperspb.UInt32(ej.FailurePercent),
			EnforcingFailurePercentage:         wrapperspb.UInt32(100),
			FailurePercentageMinimumHosts:      wrapperspb.UInt32(1),
			FailurePercentageRequestVolume:     wrapperspb.UInt32(ej.RequestVolume),
			EnforcingConsecutive_5Xx:           wrapperspb.UInt32(0),
			EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(0),
			EnforcingSuccessRate:               wrapperspb.UInt32(0),
		}
	}
	if hc := p.HealthCheck; hc.Path != "" {
		interval, timeout := hc.Interval, hc.Timeout
		if interval == 0 {
			interval = 10 * time.Second
		}
		if timeout == 0 {
			timeout = 2 * time.Second
		}
		c.HealthChecks = []*corev3.HealthCheck{{
			Timeout: durationpb.New(timeout), Interval: durationpb.New(interval),
			HealthyThreshold: wrapperspb.UInt32(max(hc.Healthy, 1)), UnhealthyThreshold: wrapperspb.UInt32(max(hc.Unhealthy, 2)),
			HealthChecker: &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{Path: hc.Path}},
		}}
	}
	var alpn []string
	switch p.Protocol {
	case "h2":
		c.TypedExtensionProtocolOptions = explicitHTTP2()
		alpn = []string{"h2"}
	case "auto":
		if s.TLS {
			c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpOptionsKey: mustAny(&httpv3.HttpProtocolOptions{
				UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_AutoConfig{AutoConfig: &httpv3.HttpProtocolOptions_AutoHttpConfig{
					HttpProtocolOptions: &corev3.Http1ProtocolOptions{}, Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				}},
			})}
			alpn = []string{"h2", "http/1.1"}
		}
	}
	if !s.TLS {
		return
	}
	common := &tlsv3.CommonTlsContext{AlpnProtocols: alpn}
	validation := &tlsv3.CertificateValidationContext{}
	if net.ParseIP(s.SNI) == nil && s.SNI != "" {
		validation.MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{{
			SanType: tlsv3.SubjectAltNameMatcher_DNS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s.SNI}},
		}}
	}
	if p.TLS.CA != "" {
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         validation,
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: p.TLS.CA, SdsConfig: ADS()},
		}}
	} else {
		validation.TrustedCa = &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: opt.UpstreamCAFile}}
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: validation}
	}
	if p.TLS.ClientCert != "" {
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{{Name: p.TLS.ClientCert, SdsConfig: ADS()}}
	}
	sni := s.SNI
	if net.ParseIP(sni) != nil {
		sni = "" // SNI carries names only
	}
	c.TransportSocket = &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: common})},
	}
}

const httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// explicitHTTP2 is a cluster's protocol options for HTTP/2 only (gRPC to the enforcer, h2
// backends, a front's internal listeners).
func explicitHTTP2() map[string]*anypb.Any {
	return map[string]*anypb.Any{httpOptionsKey: mustAny(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}},
	})}
}

// authzCluster is the enforcer: HTTP/2 (gRPC), addressed by name or IP.
func authzCluster(opt Options) *clusterv3.Cluster {
	c := grpcCluster(opt.AuthzCluster, opt.AuthzAddress, opt.ConnectTimeout)
	if opt.AuthzTLS.CAFile != "" {
		c.TransportSocket = FileTLSSocket(opt.AuthzTLS)
	}
	return c
}

// grpcCluster is a cluster of one gRPC server at address (host:port): HTTP/2, the host
// resolved by Envoy when it is a name.
func grpcCluster(name, address string, connect time.Duration) *clusterv3.Cluster {
	host, port, _ := net.SplitHostPort(address)
	p, _ := strconv.Atoi(port)
	kind := clusterv3.Cluster_STATIC
	if net.ParseIP(host) == nil {
		kind = clusterv3.Cluster_STRICT_DNS
	}
	return &clusterv3.Cluster{
		Name:                          name,
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: kind},
		ConnectTimeout:                durationpb.New(connect),
		TypedExtensionProtocolOptions: explicitHTTP2(),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint(host, uint32(p), 1)}}},
		},
	}
}

// FileTLSSocket is the upstream TLS transport socket for t: the peer verified against
// t.CAFile with its DNS SAN equal to t.ServerName (also sent as SNI), ALPN h2 (gRPC), and
// Envoy's own certificate when t names one.
func FileTLSSocket(t FileTLS) *corev3.TransportSocket {
	file := func(f string) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: f}}
	}
	common := &tlsv3.CommonTlsContext{
		AlpnProtocols: []string{"h2"},
		TlsParams:     &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: file(t.CAFile),
			MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: t.ServerName}},
			}},
		}},
	}
	if t.CertFile != "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{CertificateChain: file(t.CertFile), PrivateKey: file(t.KeyFile)}}
	}
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{Sni: t.ServerName, CommonTlsContext: common})},
	}
}

// DiscoveryShape is the scheme and path that every URL of a stored endpoints/<key> value
// shares; ok is false when the value is unusable or its URLs disagree (the definition's
// default URL then decides).
func DiscoveryShape(raw string) (scheme, path string, ok bool) {
	ts, err := store.ParseDiscovery(raw)
	if err != nil || len(ts) == 0 {
		return "", "", false
	}
	for _, t := range ts[1:] {
		if t.Scheme != ts[0].Scheme || t.Path != ts[0].Path {
			return "", "", false
		}
	}
	return ts[0].Scheme, ts[0].Path, true
}

// Endpoints builds the ClusterLoadAssignment of every EDS cluster. discovery holds the raw
// values of endpoints/<key> from etcd; a key that is absent or unusable falls back to its
// default URL, and the problem is returned so it can be reported.
func Endpoints(sets map[string]EndpointSet, discovery map[string]string) ([]types.Resource, []error) {
	names := make([]string, 0, len(sets))
	for n := range sets {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	out := make([]types.Resource, 0, len(names))
	for _, n := range names {
		s := sets[n]
		if s.DNS {
			continue // resolved by Envoy, not sent over EDS
		}
		cla := &endpointv3.ClusterLoadAssignment{ClusterName: n}
		for i, ep := range s.Endpoints {
			var targets []store.Target
			if strings.HasPrefix(ep.Discovery, apimodel.KubeScheme) {
				// A Service's ready addresses, none until its slices are known: its cluster
				// name is not an address EDS can carry.
				if raw, ok := discovery[ep.Discovery]; ok && raw != "[]" {
					t, err := store.ParseDiscovery(raw)
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", ep.Discovery, err))
					}
					targets = t
				}
				if targets == nil {
					continue
				}
			} else if ep.Discovery != "" {
				if raw, ok := discovery[ep.Discovery]; ok {
					t, err := store.ParseDiscovery(raw)
					if err != nil {
						errs = append(errs, fmt.Errorf("endpoints/%s: %w; using the default %s", ep.Discovery, err, ep.URL))
					}
					targets = t
				}
			}
			if targets == nil {
				t, err := store.ParseTarget(ep.URL, 1)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				targets = []store.Target{t}
			}
			lbs := make([]*endpointv3.LbEndpoint, 0, len(targets))
			for _, t := range targets {
				lbs = append(lbs, lbEndpoint(t.Host, t.Port, t.Weight))
			}
			if s.Type == apimodel.Failover {
				// Each endpoint its own priority: the next serves when the ones before are down.
				cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{
					Locality:    &corev3.Locality{Zone: "priority-" + strconv.Itoa(i)},
					LbEndpoints: lbs, Priority: uint32(i), LoadBalancingWeight: wrapperspb.UInt32(1),
				})
				continue
			}
			if len(cla.Endpoints) == 0 {
				// gRPC clients refuse a locality without an ID and ignore one without a weight.
				cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{Locality: &corev3.Locality{Zone: "default"}, LoadBalancingWeight: wrapperspb.UInt32(1)}}
			}
			cla.Endpoints[0].LbEndpoints = append(cla.Endpoints[0].LbEndpoints, lbs...)
		}
		out = append(out, cla)
	}
	return out, errs
}

// dnsAssignment lists a DNS set's hosts for Envoy to resolve.
func dnsAssignment(name string, s EndpointSet) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
	for _, ep := range s.Endpoints {
		u, _ := url.Parse(ep.URL)
		p, _ := strconv.ParseUint(store.PortOf(u), 10, 16)
		place(cla, s.Type == apimodel.Failover, lbEndpoint(u.Hostname(), uint32(p), 1))
	}
	return cla
}

// place adds a host to an assignment: failover gives it a locality and priority of its
// own, after the others; load balancing puts it in the one locality.
func place(cla *endpointv3.ClusterLoadAssignment, failover bool, lb *endpointv3.LbEndpoint) {
	if failover || len(cla.Endpoints) == 0 {
		n := len(cla.Endpoints)
		cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{
			Locality: &corev3.Locality{Zone: "priority-" + strconv.Itoa(n)}, Priority: uint32(n),
			LbEndpoints: []*endpointv3.LbEndpoint{lb}, LoadBalancingWeight: wrapperspb.UInt32(1),
		})
		return
	}
	cla.Endpoints[0].LbEndpoints = append(cla.Endpoints[0].LbEndpoints, lb)
}

func lbEndpoint(host string, port uint32, weight uint32) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
			}}},
			Hostname: host,
		}},
		LoadBalancingWeight: wrapperspb.UInt32(max(weight, 1)),
	}
}
