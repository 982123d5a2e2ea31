package validate

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func hcmListener(name, rds string, statPrefix string) *listenerv3.Listener {
	router, _ := anypb.New(&routerv3.Router{})
	hcm, _ := anypb.New(&hcmv3.HttpConnectionManager{StatPrefix: statPrefix,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: rds, ConfigSource: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}}})
	return &listenerv3.Listener{Name: name, Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm}}}}}}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}}
}

func table(name, cluster string, domains ...string) *routev3.RouteConfiguration {
	var vhs []*routev3.VirtualHost
	for i, d := range domains {
		vhs = append(vhs, &routev3.VirtualHost{Name: "vh" + string(rune('a'+i)), Domains: []string{d}, Routes: []*routev3.Route{{Name: "r",
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}}}}})
	}
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: vhs}
}

func ms(m ...proto.Message) []proto.Message { return m }

// sdsListener is hcmListener with a TLS certificate by SDS.
func sdsListener(name, rds, secret string) *listenerv3.Listener {
	l := hcmListener(name, rds, "https")
	tls, _ := anypb.New(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: secret, SdsConfig: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}}}})
	l.FilterChains[0].TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tls}}
	return l
}

// hcmListenerWith is hcmListener with another route specifier.
func hcmListenerWith(name string, set func(*hcmv3.HttpConnectionManager)) *listenerv3.Listener {
	l := hcmListener(name, "unused", "http")
	hcm := &hcmv3.HttpConnectionManager{}
	f := l.FilterChains[0].Filters[0]
	if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
		panic(err)
	}
	set(hcm)
	a, _ := anypb.New(hcm)
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	return l
}

func scopedListener(name string) *listenerv3.Listener {
	ads := &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	return hcmListenerWith(name, func(h *hcmv3.HttpConnectionManager) {
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_ScopedRoutes{ScopedRoutes: &hcmv3.ScopedRoutes{Name: "scopes",
			ScopeKeyBuilder: &hcmv3.ScopedRoutes_ScopeKeyBuilder{Fragments: []*hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder{{
				Type: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor_{HeaderValueExtractor: &hcmv3.ScopedRoutes_ScopeKeyBuilder_FragmentBuilder_HeaderValueExtractor{Name: ":authority"}}}}},
			RdsConfigSource: ads, ConfigSpecifier: &hcmv3.ScopedRoutes_ScopedRds{ScopedRds: &hcmv3.ScopedRds{ScopedRdsConfigSource: ads}}}}
	})
}

func inlineListener(name string, rc *routev3.RouteConfiguration) *listenerv3.Listener {
	return hcmListenerWith(name, func(h *hcmv3.HttpConnectionManager) {
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
	})
}

// unknownFilterListener is hcmListener with a network filter of a type no one knows.
func unknownFilterListener(name string) *listenerv3.Listener {
	l := hcmListener(name, "rt", "http")
	l.FilterChains[0].Filters = append(l.FilterChains[0].Filters, &listenerv3.Filter{Name: "x",
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/example.Unknown"}}})
	return l
}

func scope(name, table, key string) *routev3.ScopedRouteConfiguration {
	return &routev3.ScopedRouteConfiguration{Name: name, RouteConfigurationName: table, Key: &routev3.ScopedRouteConfiguration_Key{
		Fragments: []*routev3.ScopedRouteConfiguration_Key_Fragment{{Type: &routev3.ScopedRouteConfiguration_Key_Fragment_StringKey{StringKey: key}}}}}
}

// Set refuses what Envoy would: a message failing its rules inside an Any, and references to
// what is not served.
func TestSet(t *testing.T) {
	good := func() ([]proto.Message, []proto.Message, []proto.Message, []proto.Message) {
		return ms(hcmListener("l", "rt", "http")), ms(table("rt", "c", "*")), ms(edsCluster("c")), ms(&endpointv3.ClusterLoadAssignment{ClusterName: "c"})
	}
	l, r, c, e := good()
	if err := Set(l, r, c, e, nil); err != nil {
		t.Fatalf("a consistent set: %v", err)
	}
	// The fixtures below are consistent but for the one thing each breaks.
	cert := &tlsv3.Secret{Name: "cert", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}}
	for name, set := range map[string][][]proto.Message{
		"a listener with its secret":                 {ms(sdsListener("l", "rt", "cert")), r, c, e, ms(cert)},
		"a listener of scoped routes with its scope": {ms(scopedListener("l")), append(ms(scope("s", "rt", "a")), r...), c, e, nil},
		"a listener with its route table inline":     {ms(inlineListener("l", table("inline", "c", "*"))), nil, c, e, nil},
	} {
		if err := Set(set[0], set[1], set[2], set[3], set[4]); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	addr := &corev3.Address{Address: &corev3.Address_EnvoyInternalAddress{EnvoyInternalAddress: &corev3.EnvoyInternalAddress{
		AddressNameSpecifier: &corev3.EnvoyInternalAddress_ServerListenerName{ServerListenerName: "nowhere"}}}}
	lb := &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: addr}}}
	internal := &clusterv3.Cluster{Name: "front", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "front", Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{lb}}}}}
	for name, c := range map[string]struct {
		l, r, c, e []proto.Message
		want       string
	}{
		"an empty stat_prefix inside the HCM's Any": {ms(hcmListener("l", "rt", "")), r, c, e, "StatPrefix"},
		"a route to no cluster":                     {l, ms(table("rt", "absent", "*")), c, e, `names cluster "absent"`},
		"an EDS cluster without endpoints":          {l, r, c, nil, "has no endpoints"},
		"endpoints of no EDS cluster":               {l, r, c, ms(&endpointv3.ClusterLoadAssignment{ClusterName: "c"}, &endpointv3.ClusterLoadAssignment{ClusterName: "x"}), "not an EDS cluster"},
		"a listener naming no route table":          {ms(hcmListener("l", "other", "http")), r, c, e, `route table "other"`},
		"one domain in two virtual hosts":           {l, ms(table("rt", "c", "*", "*")), c, e, "is in virtual hosts"},
		"an internal address to no listener":        {l, r, append(c, internal), e, `internal listener "nowhere"`},
		"a listener naming no secret":               {ms(sdsListener("l", "rt", "cert")), r, c, e, `secret "cert"`},
		"a listener of scoped routes, no scope":     {ms(scopedListener("l")), r, c, e, "no scope is served"},
		"two scopes of one name":                    {ms(scopedListener("l")), append(ms(scope("s", "rt", "a"), scope("s", "rt", "b")), r...), c, e, `two scopes are named "s"`},
		"two scopes of one key":                     {ms(scopedListener("l")), append(ms(scope("s1", "rt", "a"), scope("s2", "rt", "a")), r...), c, e, "have the same key"},
		"a scope naming no route table":             {ms(scopedListener("l")), append(ms(scope("s", "absent", "a")), r...), c, e, `uses route table "absent"`},
		"a scope failing its own rules":             {ms(scopedListener("l")), append(ms(scope("", "rt", "a")), r...), c, e, "Name"},
		"an inline route to no cluster":             {ms(inlineListener("l", table("inline", "absent", "*"))), nil, c, e, `names cluster "absent"`},
		"an Any of a type not known":                {ms(unknownFilterListener("l")), r, c, e, "cannot unpack type.googleapis.com/example.Unknown"},
	} {
		if err := Set(c.l, c.r, c.c, c.e, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A problem deep in a message (not inside an Any) is found, and the error says where.
func TestMessageFindsDeepProblems(t *testing.T) {
	rc := &routev3.RouteConfiguration{Name: "t", VirtualHosts: []*routev3.VirtualHost{{
		Name: "v", Domains: []string{"*"},
		Routes: []*routev3.Route{
			{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}, Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200}}},
			{Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 200}}},                                                                                     // no match
			{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/x"}}, Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 99}}}, // status < 100
		},
	}}}
	err := Message(rc)
	if err == nil {
		t.Fatal("a route without a match and a status below 100 passed")
	}
	for _, want := range []string{"Routes[1]", "Match", "Routes[2]", "Status"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}
