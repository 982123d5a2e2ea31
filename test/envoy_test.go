package test

import (
	"cmp"
	"context"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/xds/build"
)

// envoy is an ADS client that behaves like Envoy on a state-of-the-world stream: it asks
// for all clusters and listeners, then for the route tables the listeners name and the
// endpoints of the EDS clusters, and ACKs every response. What it holds is what an Envoy
// would hold.
type envoy struct {
	t      *testing.T
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *corev3.Node

	mu        sync.Mutex
	observe   func(*discoveryv3.DiscoveryResponse) // when set, hears every response (e.mu held)
	responses int
	listeners map[string]*listenerv3.Listener
	routes    map[string]*routev3.RouteConfiguration
	scopes    map[string]*routev3.ScopedRouteConfiguration // nil until the route scopes arrive
	scoped    bool                                         // a listener picks its route tables by scope
	listed    []string                                     // route tables the listeners name
	clusters  map[string]*clusterv3.Cluster
	endpoints map[string]*endpointv3.ClusterLoadAssignment
	asked     map[string][]string // type → names subscribed
	changed   chan struct{}
}

// connectEnvoy opens an ADS stream to addr as a node of the default group; it retries
// until the port answers, so it can be started together with the server.
func connectEnvoy(t *testing.T, ctx context.Context, addr, id string) *envoy {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	e := &envoy{t: t, stream: stream, node: &corev3.Node{Id: id, Cluster: "default", UserAgentName: "envoy"},
		listeners: map[string]*listenerv3.Listener{}, routes: map[string]*routev3.RouteConfiguration{},
		clusters: map[string]*clusterv3.Cluster{}, endpoints: map[string]*endpointv3.ClusterLoadAssignment{},
		asked: map[string][]string{}, changed: make(chan struct{}, 1)}
	e.send(resourcev3.ClusterType, nil, "", "")
	e.send(resourcev3.ListenerType, nil, "", "")
	go e.recv()
	return e
}

func (e *envoy) send(typeURL string, names []string, version, nonce string) {
	e.asked[typeURL] = names
	_ = e.stream.Send(&discoveryv3.DiscoveryRequest{Node: e.node, TypeUrl: typeURL, ResourceNames: names, VersionInfo: version, ResponseNonce: nonce})
}

func (e *envoy) recv() {
	for {
		resp, err := e.stream.Recv()
		if err != nil {
			return
		}
		e.mu.Lock()
		if e.observe != nil {
			e.observe(resp)
		}
		e.apply(resp)
		e.responses++
		e.mu.Unlock()
		select {
		case e.changed <- struct{}{}:
		default:
		}
	}
}

// apply takes a response in, ACKs it, and subscribes to what it references. e.mu is held.
func (e *envoy) apply(resp *discoveryv3.DiscoveryResponse) {
	typeURL := resp.GetTypeUrl()
	switch typeURL {
	case resourcev3.ClusterType:
		e.clusters = map[string]*clusterv3.Cluster{}
		var eds []string
		for _, a := range resp.Resources {
			c := &clusterv3.Cluster{}
			if a.UnmarshalTo(c) == nil {
				e.clusters[c.Name] = c
				if c.GetType() == clusterv3.Cluster_EDS {
					eds = append(eds, cmp.Or(c.GetEdsClusterConfig().GetServiceName(), c.Name))
				}
			}
		}
		e.send(typeURL, nil, resp.VersionInfo, resp.Nonce)
		sort.Strings(eds)
		if !slices.Equal(eds, e.asked[resourcev3.EndpointType]) && len(eds) > 0 {
			e.send(resourcev3.EndpointType, eds, "", "")
		}
	case resourcev3.ListenerType:
		e.listeners = map[string]*listenerv3.Listener{}
		var rds []string
		scoped := false
		for _, a := range resp.Resources {
			l := &listenerv3.Listener{}
			if a.UnmarshalTo(l) != nil {
				continue
			}
			e.listeners[l.Name] = l
			for _, fc := range l.FilterChains {
				for _, f := range fc.Filters {
					h := &hcmv3.HttpConnectionManager{}
					if f.GetTypedConfig().UnmarshalTo(h) == nil && h.GetRds() != nil {
						rds = append(rds, h.GetRds().GetRouteConfigName())
					}
					if h.GetScopedRoutes() != nil {
						scoped = true
					}
				}
			}
		}
		e.send(typeURL, nil, resp.VersionInfo, resp.Nonce)
		if scoped && !e.scoped {
			e.send(resourcev3.ScopedRouteType, nil, "", "")
		}
		e.scoped, e.listed = scoped, uniq(rds)
		e.askRoutes()
	case resourcev3.ScopedRouteType:
		// Like listeners, every response holds all the scopes.
		e.scopes = map[string]*routev3.ScopedRouteConfiguration{}
		for _, a := range resp.Resources {
			sc := &routev3.ScopedRouteConfiguration{}
			if a.UnmarshalTo(sc) == nil {
				e.scopes[sc.Name] = sc
			}
		}
		e.send(typeURL, nil, resp.VersionInfo, resp.Nonce)
		e.askRoutes()
	case resourcev3.RouteType:
		for _, a := range resp.Resources {
			r := &routev3.RouteConfiguration{}
			if a.UnmarshalTo(r) == nil {
				e.routes[r.Name] = r
			}
		}
		e.send(typeURL, e.asked[typeURL], resp.VersionInfo, resp.Nonce)
	case resourcev3.EndpointType:
		for _, a := range resp.Resources {
			c := &endpointv3.ClusterLoadAssignment{}
			if a.UnmarshalTo(c) == nil {
				e.endpoints[c.ClusterName] = c
			}
		}
		e.send(typeURL, e.asked[typeURL], resp.VersionInfo, resp.Nonce)
	}
}

// askRoutes subscribes to the route tables the listeners and the scopes name, when they
// differ from what it asked for; e.mu is held.
func (e *envoy) askRoutes() {
	rds := append([]string(nil), e.listed...)
	if e.scoped {
		for _, sc := range e.scopes {
			rds = append(rds, sc.RouteConfigurationName)
		}
	}
	rds = uniq(rds)
	if !slices.Equal(rds, e.asked[resourcev3.RouteType]) && len(rds) > 0 {
		e.send(resourcev3.RouteType, rds, "", "")
	}
}

// tableFor is a copy of the route table Envoy picks for a request path: the table of the
// scope whose key is the path's first segment (build.ScopeOf), or the listeners' one.
func (e *envoy) tableFor(path string) *routev3.RouteConfiguration {
	e.mu.Lock()
	defer e.mu.Unlock()
	name := ""
	if e.scoped {
		key := build.ScopeOf(path)
		for _, sc := range e.scopes {
			if f := sc.GetKey().GetFragments(); len(f) == 1 && f[0].GetStringKey() == key {
				name = sc.RouteConfigurationName
			}
		}
	} else if len(e.listed) > 0 {
		name = e.listed[0]
	}
	if rc := e.routes[name]; rc != nil {
		return proto.Clone(rc).(*routev3.RouteConfiguration)
	}
	return nil
}

// config is what the Envoy holds: resource names by kind, and route names.
type config struct {
	Listeners, RouteTables, Routes, Clusters, Endpoints []string
	// Addresses are "cluster host:port" of every endpoint.
	Addresses []string
}

func (e *envoy) config() config {
	e.mu.Lock()
	defer e.mu.Unlock()
	var c config
	for n := range e.listeners {
		c.Listeners = append(c.Listeners, n)
	}
	for n, rc := range e.routes {
		c.RouteTables = append(c.RouteTables, n)
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				c.Routes = append(c.Routes, r.Name)
			}
		}
	}
	for n := range e.clusters {
		c.Clusters = append(c.Clusters, n)
	}
	for n, cla := range e.endpoints {
		c.Endpoints = append(c.Endpoints, n)
		for _, l := range cla.Endpoints {
			for _, le := range l.LbEndpoints {
				sa := le.GetEndpoint().GetAddress().GetSocketAddress()
				c.Addresses = append(c.Addresses, n+" "+sa.GetAddress()+":"+strconv.FormatUint(uint64(sa.GetPortValue()), 10))
			}
		}
	}
	for _, s := range []*[]string{&c.Listeners, &c.RouteTables, &c.Routes, &c.Clusters, &c.Endpoints, &c.Addresses} {
		*s = uniq(*s)
	}
	return c
}

// complete reports whether every route table and every EDS assignment that the listeners
// and clusters reference has arrived.
func (e *envoy) complete() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.listeners) == 0 || len(e.clusters) == 0 || e.scoped && e.scopes == nil {
		return false
	}
	for _, n := range e.asked[resourcev3.RouteType] {
		if e.routes[n] == nil {
			return false
		}
	}
	for _, n := range e.asked[resourcev3.EndpointType] {
		if e.endpoints[n] == nil {
			return false
		}
	}
	return true
}

// waitFor waits until cond holds on a complete configuration.
func (e *envoy) waitFor(what string, d time.Duration, cond func(config) bool) config {
	e.t.Helper()
	deadline := time.After(d)
	for {
		if e.complete() {
			if c := e.config(); cond(c) {
				return c
			}
		}
		select {
		case <-e.changed:
		case <-deadline:
			c := e.config()
			e.t.Fatalf("the Envoy did not get %s within %v; it holds %d listeners, %d route tables, %d routes, %d clusters: %.2000v", what, d, len(c.Listeners), len(c.RouteTables), len(c.Routes), len(c.Clusters), c)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// received is how many responses the control plane has sent.
func (e *envoy) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.responses
}

func uniq(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
