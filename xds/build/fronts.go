package build

// Fronts: endpoint sets whose URLs differ in scheme or path (WSO2's
// `urls: [https://h/v1, https://h/v2]` with load_balance or failover).
//
// Envoy rewrites a request's path per route, never per backend host, and a weighted
// cluster has no path rewrite of its own (envoyproxy/envoy#13992, #7668: a retry to another
// host would need the request rewritten again). So such a set is served in two hops
// inside the same Envoy:
//
//	route (base path rewritten to "/") → front cluster → one internal listener per part
//	→ its route rewrites "/" to the part's path → the part's own cluster
//
// A part is the URLs of one scheme and path; it is an ordinary cluster with the set's
// policy (TLS, health checks, circuit breakers, retries). The front balances over the
// parts weighted by their URLs (load_balance) or gives each part its own priority, in the
// order of the URLs (failover). A part that cannot be reached (no connection, no healthy
// host, overflow, timeout) answers with a marker header; the front's route retries on it —
// on another part (previous_hosts) or the next priority (previous_priorities) — and
// removes the header before the client sees an answer.

import (
	"sort"
	"strconv"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	previousprioritiesv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// UnreachableHeader marks a part's answer that Envoy made because the part could not be
// reached; the front retries on it.
const UnreachableHeader = "x-tollgate-unreachable"

// unreachableFlags are the response flags of those answers: upstream connection failure,
// no healthy upstream, retries exhausted, overflow (circuit breaker), request timeout.
var unreachableFlags = []string{"UF", "UH", "URX", "UO", "UT"}

// partsOf groups a set's URLs by scheme and path; shapes holds each URL's TLS, Path, SNI
// and DNS. load_balance gathers all URLs of a shape into one part, in order of first
// appearance; failover keeps the order of the URLs, a part per run of one shape.
func partsOf(s EndpointSet, shapes []EndpointSet) []EndpointSet {
	var parts []EndpointSet
	index := map[string]int{}
	for i, sh := range shapes {
		key := strconv.FormatBool(sh.TLS) + sh.Path
		at, seen := index[key]
		if s.Type == apimodel.Failover {
			last := len(parts) - 1
			seen = last >= 0 && parts[last].TLS == sh.TLS && parts[last].Path == sh.Path
			at = last
		}
		if !seen {
			at = len(parts)
			index[key] = at
			parts = append(parts, EndpointSet{Type: s.Type, Policy: s.Policy, TLS: sh.TLS, Path: sh.Path, SNI: sh.SNI})
		}
		parts[at].Endpoints = append(parts[at].Endpoints, s.Endpoints[i])
		parts[at].DNS = parts[at].DNS || sh.DNS
	}
	return parts
}

// internalName is the internal listener in front of a part's cluster.
func internalName(part string) string { return "internal_" + part }

// partTimeout bounds one attempt on a part.
func partTimeout(s EndpointSet, opt Options) time.Duration {
	if s.Policy.Timeout > 0 {
		return s.Policy.Timeout
	}
	return opt.RouteTimeout
}

// frontAction is the route action toward a front: the base path becomes "/" (each part's
// listener puts its own path in front), the Host header is left to the parts, each part
// gets its own timeout, and an unreachable part's answer is retried on the next.
func frontAction(base string, s EndpointSet, name string, opt Options) *routev3.RouteAction {
	rp := &routev3.RetryPolicy{
		RetryOn:    "retriable-headers",
		NumRetries: wrapperspb.UInt32(uint32(len(s.Parts) - 1)),
		RetriableHeaders: []*routev3.HeaderMatcher{{
			Name: UnreachableHeader, HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true},
		}},
		RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{
			Name:       "envoy.retry_host_predicates.previous_hosts",
			ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: mustAny(&previoushostsv3.PreviousHostsPredicate{})},
		}},
		HostSelectionRetryMaxAttempts: 5,
		// The next part at once: nothing was sent to the one that failed.
		RetryBackOff: &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(time.Millisecond), MaxInterval: durationpb.New(5 * time.Millisecond)},
	}
	if s.Type == "failover" {
		rp.RetryPriority = &routev3.RetryPolicy_RetryPriority{
			Name:       "envoy.retry_priorities.previous_priorities",
			ConfigType: &routev3.RetryPolicy_RetryPriority_TypedConfig{TypedConfig: mustAny(&previousprioritiesv3.PreviousPrioritiesConfig{UpdateFrequency: 1})},
		}
	}
	return &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name},
		Timeout:          durationpb.New(partTimeout(s, opt) * time.Duration(len(s.Parts))),
		RegexRewrite:     baseRewrite(base, ""),
		RetryPolicy:      rp,
	}
}

// frontClusters are the fronts' clusters: static, over the parts' internal listeners,
// spoken to in HTTP/2 (trailers and gRPC pass), with limits high enough that only the
// parts' own circuit breakers decide.
func frontClusters(fronts map[string]EndpointSet, opt Options) []types.Resource {
	names := sortedNames(fronts)
	out := make([]types.Resource, 0, len(names))
	unlimited := wrapperspb.UInt32(1 << 30)
	for _, n := range names {
		s := fronts[n]
		cla := &endpointv3.ClusterLoadAssignment{ClusterName: n}
		for _, p := range s.Parts {
			lb := &endpointv3.LbEndpoint{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_EnvoyInternalAddress{EnvoyInternalAddress: &corev3.EnvoyInternalAddress{
						AddressNameSpecifier: &corev3.EnvoyInternalAddress_ServerListenerName{ServerListenerName: internalName(clusterName(p))},
					}}},
				}},
				LoadBalancingWeight: wrapperspb.UInt32(uint32(len(p.Endpoints))),
			}
			place(cla, s.Type == "failover", lb)
		}
		out = append(out, &clusterv3.Cluster{
			Name:                          n,
			ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
			ConnectTimeout:                durationpb.New(opt.ConnectTimeout),
			LoadAssignment:                cla,
			TypedExtensionProtocolOptions: explicitHTTP2(),
			CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
				MaxConnections: unlimited, MaxPendingRequests: unlimited, MaxRequests: unlimited, MaxRetries: unlimited,
			}}},
		})
	}
	return out
}

// internalListeners are the parts' listeners, one per part cluster however many fronts
// share it: the route rewrites "/" to the part's path and proxies to the part's cluster
// with the set's timeout and retries; an answer Envoy makes because the part could not be
// reached carries UnreachableHeader.
func internalListeners(fronts map[string]EndpointSet, opt Options) []types.Resource {
	parts := map[string]EndpointSet{}
	for _, s := range fronts {
		for _, p := range s.Parts {
			parts[clusterName(p)] = p
		}
	}
	var out []types.Resource
	for _, n := range sortedNames(parts) {
		p := parts[n]
		action := &routev3.RouteAction{
			ClusterSpecifier:     &routev3.RouteAction_Cluster{Cluster: n},
			Timeout:              durationpb.New(partTimeout(p, opt)),
			HostRewriteSpecifier: &routev3.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)},
			RetryPolicy:          retryPolicy(p.Policy),
		}
		if p.Path != "" {
			action.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: "^/"}, Substitution: p.Path + "/"}
		}
		hcm := &hcmv3.HttpConnectionManager{
			StatPrefix: internalName(n),
			CodecType:  hcmv3.HttpConnectionManager_AUTO,
			RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
				Name: internalName(n),
				VirtualHosts: []*routev3.VirtualHost{{
					Name: "part", Domains: []string{"*"},
					Routes: []*routev3.Route{{
						Name:   n,
						Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
						Action: &routev3.Route_Route{Route: action},
					}},
				}},
			}},
			HttpFilters:               []*hcmv3.HttpFilter{routerFilter()},
			PreserveExternalRequestId: true,
			LocalReplyConfig: &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{{
				Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
					ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: unreachableFlags},
				}},
				HeadersToAdd: []*corev3.HeaderValueOption{{
					Header:       &corev3.HeaderValue{Key: UnreachableHeader, Value: "1"},
					AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
				}},
			}}},
		}
		out = append(out, &listenerv3.Listener{
			Name:              internalName(n),
			ListenerSpecifier: &listenerv3.Listener_InternalListener{InternalListener: &listenerv3.Listener_InternalListenerConfig{}},
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
			}}}},
		})
	}
	return out
}

func sortedNames(m map[string]EndpointSet) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
