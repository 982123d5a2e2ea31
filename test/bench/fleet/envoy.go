package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
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
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// envoy is one simulated Envoy: one gRPC connection, one ADS stream (state-of-the-world
// or delta), Envoy's order of requests — clusters, then the endpoints of the EDS clusters,
// then listeners, then the route tables they name — and an ACK for every response. It
// keeps what it was sent by name, the way Envoy does, and reports when it has all of it
// and when a change it was told to expect arrives.
type envoy struct {
	id    int
	delta bool
	node  *corev3.Node
	conn  *grpc.ClientConn
	sotw  discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	dstr  discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient

	// Only the receiving goroutine touches these.
	clusters  map[string]bool // name → uses EDS
	endpoints map[string]bool // assignments received
	listeners map[string]bool
	scopes    map[string]string // route scope → its route table
	wanted    map[string]bool   // route tables subscribed to
	routes    map[string]bool   // route tables received
	versions  map[string]string
	nonces    map[string]string
	asked     map[string][]string // names subscribed, by type (SOTW resends the whole list)
	started   bool                // listeners requested (after the first clusters and endpoints)
	received  int64               // bytes of resources received
	// firstAddress, when not nil, records each assignment's first address by cluster.
	firstAddress map[string]string
	// capture, when not nil, keeps what it was last sent, by type and name (under mu).
	capture captured

	mu       sync.Mutex
	want     func(typeURL string, a *anypb.Any) bool // an expected change, or nil
	got      chan time.Time
	ready    chan struct{}
	isReady  bool
	expected counts
	err      error
}

// counts is what a converged Envoy holds.
type counts struct{ clusters, edsClusters, listeners, routes int }

func (e *envoy) counts() counts {
	c := counts{clusters: len(e.clusters), listeners: len(e.listeners), routes: len(e.routes)}
	for _, eds := range e.clusters {
		if eds {
			c.edsClusters++
		}
	}
	return c
}

func newEnvoy(id int, delta bool, expected counts) *envoy {
	return &envoy{id: id, delta: delta, expected: expected,
		node:     &corev3.Node{Id: fmt.Sprintf("envoy-%d", id), Cluster: "default", UserAgentName: "envoy"},
		clusters: map[string]bool{}, endpoints: map[string]bool{}, listeners: map[string]bool{}, routes: map[string]bool{},
		scopes: map[string]string{}, wanted: map[string]bool{},
		versions: map[string]string{}, nonces: map[string]string{}, asked: map[string][]string{},
		got: make(chan time.Time, 1), ready: make(chan struct{})}
}

// start connects and asks for clusters; the rest follows from the responses.
func (e *envoy) start(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.ForceCodecV2(newAliasCodec())))
	if err != nil {
		return err
	}
	e.conn = conn
	client := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	if e.delta {
		if e.dstr, err = client.DeltaAggregatedResources(ctx); err != nil {
			return err
		}
	} else if e.sotw, err = client.StreamAggregatedResources(ctx); err != nil {
		return err
	}
	if err := e.ask(resourcev3.ClusterType, nil, nil); err != nil {
		return err
	}
	go e.loop()
	return nil
}

// ask subscribes to names of a type (nil: all of them); in delta, add and drop are the
// change, in state-of-the-world the whole list is sent.
func (e *envoy) ask(typeURL string, add, drop []string) error {
	if e.delta {
		return e.dstr.Send(&discoveryv3.DeltaDiscoveryRequest{Node: e.firstNode(), TypeUrl: typeURL, ResourceNamesSubscribe: add, ResourceNamesUnsubscribe: drop})
	}
	names := e.asked[typeURL]
	gone := map[string]bool{}
	for _, d := range drop {
		gone[d] = true
	}
	var next []string
	for _, n := range names {
		if !gone[n] {
			next = append(next, n)
		}
	}
	next = append(next, add...)
	e.asked[typeURL] = next
	return e.sotw.Send(&discoveryv3.DiscoveryRequest{Node: e.firstNode(), TypeUrl: typeURL, ResourceNames: next,
		VersionInfo: e.versions[typeURL], ResponseNonce: e.nonces[typeURL]})
}

// firstNode is the node for the stream's first request, nil after: Envoy sends it once, as
// tollgate bootstrap configures it (set_node_on_first_message_only).
func (e *envoy) firstNode() *corev3.Node {
	n := e.node
	e.node = nil
	return n
}

// ack acknowledges the last response of a type.
func (e *envoy) ack(typeURL string) error {
	if e.delta {
		return e.dstr.Send(&discoveryv3.DeltaDiscoveryRequest{Node: e.firstNode(), TypeUrl: typeURL, ResponseNonce: e.nonces[typeURL]})
	}
	return e.sotw.Send(&discoveryv3.DiscoveryRequest{Node: e.firstNode(), TypeUrl: typeURL, ResourceNames: e.asked[typeURL],
		VersionInfo: e.versions[typeURL], ResponseNonce: e.nonces[typeURL]})
}

// resource is one resource of a response, by name (empty when the name is in the body).
type resource struct {
	name string
	any  *anypb.Any
}

func (e *envoy) loop() {
	for {
		var typeURL string
		var res []resource
		var removed []string
		full := false // the response holds every resource of the type the Envoy has
		if e.delta {
			r, err := e.dstr.Recv()
			if err != nil {
				e.fail(err)
				return
			}
			typeURL = r.TypeUrl
			e.nonces[typeURL] = r.Nonce
			for _, x := range r.Resources {
				res = append(res, resource{x.Name, x.Resource})
			}
			removed = r.RemovedResources
		} else {
			r, err := e.sotw.Recv()
			if err != nil {
				e.fail(err)
				return
			}
			typeURL = r.TypeUrl
			e.nonces[typeURL], e.versions[typeURL] = r.Nonce, r.VersionInfo
			for _, a := range r.Resources {
				res = append(res, resource{"", a})
			}
			full = typeURL == resourcev3.ClusterType || typeURL == resourcev3.ListenerType || typeURL == resourcev3.ScopedRouteType
		}
		now := time.Now()
		if os.Getenv("FLEET_DEBUG") != "" && e.id == 0 && e.want == nil {
			fmt.Fprintln(os.Stderr, now.Format("15:04:05.000"), "envoy 0 got", typeURL, len(res), len(removed), e.counts(), e.want != nil)
		}
		for _, r := range res {
			e.received += int64(len(r.any.GetValue()))
		}
		e.mu.Lock()
		want := e.want
		e.mu.Unlock()
		if want != nil {
			for _, r := range res {
				if want(typeURL, r.any) {
					e.mu.Lock()
					e.want = nil
					e.mu.Unlock()
					e.got <- now
					break
				}
			}
		}
		if e.capture != nil {
			e.keep(typeURL, res, removed, full)
		}
		if err := e.take(typeURL, res, removed, full); err != nil {
			e.fail(err)
			return
		}
		e.checkReady()
	}
}

// keep adds a response to the capture.
func (e *envoy) keep(typeURL string, res []resource, removed []string, full bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if full || e.capture[typeURL] == nil {
		e.capture[typeURL] = map[string]*anypb.Any{}
	}
	for _, r := range res {
		name := r.name
		if name == "" {
			name = routeConfigName(r.any.GetValue()) // every type's name is its field 1
		}
		e.capture[typeURL][name] = r.any
	}
	for _, name := range removed {
		delete(e.capture[typeURL], name)
	}
}

// take records a response and sends what Envoy would: the ACK, and subscriptions to what
// the response makes it need.
func (e *envoy) take(typeURL string, res []resource, removed []string, full bool) error {
	switch typeURL {
	case resourcev3.ClusterType:
		return e.takeClusters(res, removed, full)
	case resourcev3.EndpointType:
		return e.takeEndpoints(res)
	case resourcev3.ListenerType:
		return e.takeListeners(res, removed, full)
	case resourcev3.ScopedRouteType:
		return e.takeScopes(res, removed, full)
	case resourcev3.RouteType:
		for _, r := range res {
			name := r.name
			if name == "" {
				name = routeConfigName(r.any.GetValue())
			}
			e.routes[name] = true
		}
	}
	return e.ack(typeURL)
}

// gone reports whether a name held is no longer served: left out of a full response, or
// named removed.
func gone(name string, seen map[string]bool, removed []string, full bool) bool {
	return full && !seen[name] || contains(removed, name)
}

// takeClusters keeps the clusters and subscribes to the endpoints of the EDS ones.
func (e *envoy) takeClusters(res []resource, removed []string, full bool) error {
	seen := map[string]bool{}
	var add []string
	for _, r := range res {
		name, typ, err := clusterHead(r.any.GetValue())
		if err != nil {
			return err
		}
		eds := typ == clusterv3.Cluster_EDS
		seen[name] = true
		if eds && !e.clusters[name] {
			add = append(add, name)
		}
		e.clusters[name] = eds
	}
	var drop []string
	for name, eds := range e.clusters {
		if gone(name, seen, removed, full) {
			delete(e.clusters, name)
			delete(e.endpoints, name)
			if eds {
				drop = append(drop, name)
			}
		}
	}
	if err := e.ack(resourcev3.ClusterType); err != nil {
		return err
	}
	if len(add) > 0 || len(drop) > 0 {
		return e.ask(resourcev3.EndpointType, add, drop)
	}
	return nil
}

// takeEndpoints keeps the assignments (and, for the probe, each one's first address) and
// asks for the listeners once the first have come.
func (e *envoy) takeEndpoints(res []resource) error {
	for _, r := range res {
		name := r.name
		if name == "" {
			name = routeConfigName(r.any.GetValue()) // field 1 too: cluster_name
		}
		if e.firstAddress != nil {
			cla := &endpointv3.ClusterLoadAssignment{}
			if err := r.any.UnmarshalTo(cla); err != nil {
				return err
			}
			name = cla.ClusterName
			e.noteFirstAddress(cla)
		}
		e.endpoints[name] = true
	}
	if err := e.ack(resourcev3.EndpointType); err != nil {
		return err
	}
	if !e.started {
		e.started = true
		return e.ask(resourcev3.ListenerType, nil, nil)
	}
	return nil
}

func (e *envoy) noteFirstAddress(cla *endpointv3.ClusterLoadAssignment) {
	if len(cla.Endpoints) > 0 && len(cla.Endpoints[0].LbEndpoints) > 0 {
		e.mu.Lock()
		e.firstAddress[cla.ClusterName] = cla.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
		e.mu.Unlock()
	}
}

// takeListeners keeps the listeners and subscribes to the route tables (or scopes) they use.
func (e *envoy) takeListeners(res []resource, removed []string, full bool) error {
	seen := map[string]bool{}
	var add []string
	scoped := false
	for _, r := range res {
		l := &listenerv3.Listener{}
		if err := r.any.UnmarshalTo(l); err != nil {
			return err
		}
		seen[l.Name] = true
		e.listeners[l.Name] = true
		names, s := routeNames(l)
		scoped = scoped || s
		for _, rc := range names {
			if !e.wanted[rc] && !contains(add, rc) {
				add = append(add, rc)
			}
		}
	}
	for name := range e.listeners {
		if gone(name, seen, removed, full) {
			delete(e.listeners, name)
		}
	}
	if err := e.ack(resourcev3.ListenerType); err != nil {
		return err
	}
	if scoped && !e.wanted[scopesAsked] {
		e.wanted[scopesAsked] = true
		if err := e.ask(resourcev3.ScopedRouteType, nil, nil); err != nil {
			return err
		}
	}
	return e.wantRoutes(add)
}

// takeScopes keeps the route scopes and subscribes to their route tables.
func (e *envoy) takeScopes(res []resource, removed []string, full bool) error {
	seen := map[string]bool{}
	var add []string
	for _, r := range res {
		sc := &routev3.ScopedRouteConfiguration{}
		if err := r.any.UnmarshalTo(sc); err != nil {
			return err
		}
		seen[sc.Name] = true
		e.scopes[sc.Name] = sc.RouteConfigurationName
		if !e.wanted[sc.RouteConfigurationName] && !contains(add, sc.RouteConfigurationName) {
			add = append(add, sc.RouteConfigurationName)
		}
	}
	for name := range e.scopes {
		if gone(name, seen, removed, full) {
			delete(e.scopes, name)
		}
	}
	if err := e.ack(resourcev3.ScopedRouteType); err != nil {
		return err
	}
	return e.wantRoutes(add)
}

// scopesAsked marks, in wanted, that the route scopes were subscribed to.
const scopesAsked = "\x00scopes"

// wantRoutes subscribes to route tables not subscribed to yet.
func (e *envoy) wantRoutes(add []string) error {
	if len(add) == 0 {
		return nil
	}
	for _, n := range add {
		e.wanted[n] = true
	}
	return e.ask(resourcev3.RouteType, add, nil)
}

// routeNames are the route tables a listener's HTTP connection managers name, and whether
// one picks its tables by scope (SRDS).
func routeNames(l *listenerv3.Listener) (names []string, scoped bool) {
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			hcm := &hcmv3.HttpConnectionManager{}
			if f.GetTypedConfig().UnmarshalTo(hcm) != nil {
				continue
			}
			if n := hcm.GetRds().GetRouteConfigName(); n != "" && !contains(names, n) {
				names = append(names, n)
			}
			scoped = scoped || hcm.GetScopedRoutes() != nil
		}
	}
	return names, scoped
}

// clusterHead reads a Cluster's name and discovery type (fields 1 and 2) without decoding
// the rest: the simulated fleet shares the CPUs with the server it measures, so it does
// not parse what it does not use.
func clusterHead(b []byte) (string, clusterv3.Cluster_DiscoveryType, error) {
	var name string
	typ := clusterv3.Cluster_STATIC
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", 0, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && wt == protowire.BytesType:
			v, m := protowire.ConsumeString(b)
			if m < 0 {
				return "", 0, protowire.ParseError(m)
			}
			name, b = v, b[m:]
			continue
		case num == 2 && wt == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return "", 0, protowire.ParseError(m)
			}
			typ, b = clusterv3.Cluster_DiscoveryType(v), b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, wt, b)
		if m < 0 {
			return "", 0, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return name, typ, nil
}

// routeConfigName reads field 1 (name) of a RouteConfiguration or a ClusterLoadAssignment
// (cluster_name) without decoding the rest.
func routeConfigName(b []byte) string {
	if len(b) < 2 || b[0] != 0x0a {
		return ""
	}
	n, i := 0, 1
	for shift := 0; i < len(b); shift += 7 {
		c := b[i]
		i++
		n |= int(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	if i+n > len(b) {
		return ""
	}
	return string(b[i : i+n])
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func (e *envoy) checkReady() {
	c := e.counts()
	if c.clusters < e.expected.clusters || c.listeners < e.expected.listeners || c.routes < e.expected.routes ||
		c.edsClusters < e.expected.edsClusters || len(e.endpoints) < c.edsClusters {
		return
	}
	for n := range e.wanted {
		if n != scopesAsked && !e.routes[n] {
			return
		}
	}
	if e.wanted[scopesAsked] && len(e.scopes) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.isReady {
		e.isReady = true
		close(e.ready)
	}
}

func (e *envoy) fail(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = err
	}
}

// expect arms the Envoy for a change: match says whether a received resource is it.
func (e *envoy) expect(match func(typeURL string, a *anypb.Any) bool) {
	e.mu.Lock()
	e.want = match
	e.mu.Unlock()
}

// wait is the time from t0 to the expected change's arrival.
func (e *envoy) wait(t0 time.Time, limit time.Duration) (time.Duration, error) {
	select {
	case t := <-e.got:
		return t.Sub(t0), nil
	case <-time.After(limit):
		e.mu.Lock()
		defer e.mu.Unlock()
		return 0, fmt.Errorf("envoy %d: the change did not arrive in %v (stream error: %v)", e.id, limit, e.err)
	}
}

// assignmentAt matches the assignment of cluster whose first address is addr.
func assignmentAt(cluster, addr string) func(string, *anypb.Any) bool {
	return func(typeURL string, a *anypb.Any) bool {
		if typeURL != resourcev3.EndpointType || !bytes.Contains(a.GetValue(), []byte(cluster)) {
			return false
		}
		cla := &endpointv3.ClusterLoadAssignment{}
		if a.UnmarshalTo(cla) != nil || cla.ClusterName != cluster || len(cla.Endpoints) == 0 || len(cla.Endpoints[0].LbEndpoints) == 0 {
			return false
		}
		return cla.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress() == addr
	}
}

// routeWith matches a route table holding marker.
func routeWith(marker string) func(string, *anypb.Any) bool {
	m := []byte(marker)
	return func(typeURL string, a *anypb.Any) bool {
		return typeURL == resourcev3.RouteType && bytes.Contains(a.GetValue(), m)
	}
}
