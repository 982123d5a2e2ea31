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
