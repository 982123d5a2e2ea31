package ads_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
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
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/xds/ads"
	"github.com/tollgate-gw/tollgate/xds/rescache"
)

// The differential test: the same configuration changes, served once by go-control-plane's
// own server (server/v3 over cache/v3's snapshot cache) and once by xds/ads over
// xds/rescache, to the same scripted Envoy-like clients — state of the world and delta,
// wildcard listeners and clusters, endpoints and route tables by name as the clusters and
// listeners held name them, one client that refuses a route table. After every step each
// client must hold, on every server, what an Envoy holds for that configuration; and from
// ours, the rules an Envoy relies on: a route never arrives before a cluster it routes to,
// and a refused version is not sent again on the stream that refused it.

// config is the configuration at one step: clusters (each with an address), route tables
// (each routing to some clusters) and listeners (each using a route table).
type config struct {
	addrs     map[string]string
	routes    map[string][]string
	listeners map[string]string
	poison    bool // the route tables carry a virtual host the picky clients refuse
}

func (c config) clone() config {
	n := config{addrs: maps.Clone(c.addrs), routes: map[string][]string{}, listeners: maps.Clone(c.listeners)}
	for k, v := range c.routes {
		n.routes[k] = slices.Clone(v)
	}
	return n
}

const refusedHost = "reject-me"

func (c config) resources(t *testing.T) map[string][]types.Resource {
	out := map[string][]types.Resource{}
	ads := &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}, ResourceApiVersion: corev3.ApiVersion_V3}
	for _, name := range slices.Sorted(maps.Keys(c.addrs)) {
		out[resourcev3.ClusterType] = append(out[resourcev3.ClusterType], &clusterv3.Cluster{Name: name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}, EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads}})
		out[resourcev3.EndpointType] = append(out[resourcev3.EndpointType], cla(name, c.addrs[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(c.routes)) {
		vh := &routev3.VirtualHost{Name: "api", Domains: []string{"*"}}
		for _, cl := range c.routes[name] {
			vh.Routes = append(vh.Routes, &routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/" + cl}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cl}}}})
		}
		rc := &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{vh}}
		if c.poison {
			rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: refusedHost, Domains: []string{"refused.example"}})
		}
		out[resourcev3.RouteType] = append(out[resourcev3.RouteType], rc)
	}
	for _, name := range slices.Sorted(maps.Keys(c.listeners)) {
		hcm, err := anypb.New(&hcmv3.HttpConnectionManager{StatPrefix: name, RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{
			Rds: &hcmv3.Rds{RouteConfigName: c.listeners[name], ConfigSource: ads}}})
		if err != nil {
			t.Fatal(err)
		}
		out[resourcev3.ListenerType] = append(out[resourcev3.ListenerType], &listenerv3.Listener{Name: name, ApiListener: &listenerv3.ApiListener{ApiListener: hcm}})
	}
	return out
}

func cla(name, addr string) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}}}}}}}}}}}
}

// holding is what a client holds: type → name → the resource's bytes.
type holding map[string]map[string]string

// expected is what an Envoy holds for c: every listener and cluster, the endpoints of the
// clusters, the route tables the listeners use (for a picky client facing a poisoned
// configuration: the route tables it held before).
func (c config) expected(t *testing.T, picky bool, before holding) holding {
	h := holding{}
	for typ, rs := range c.resources(t) {
		for _, r := range rs {
			name := cachev3.GetResourceName(r)
			if typ == resourcev3.RouteType && !slices.Contains(slices.Collect(maps.Values(c.listeners)), name) {
				continue
			}
			if h[typ] == nil {
				h[typ] = map[string]string{}
			}
			h[typ][name] = wire(t, r)
		}
	}
	if picky && c.poison {
		h[resourcev3.RouteType] = maps.Clone(before[resourcev3.RouteType])
	}
	return h
}

func wire(t *testing.T, m proto.Message) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// plane is one server under test.
type plane struct {
	name string
	addr string
	set  func(version int, res map[string][]types.Resource)
}

// groupHash keys go-control-plane's snapshots by the node's cluster, as the control plane
// keys its caches by gateway group.
type groupHash struct{}

func (groupHash) ID(n *corev3.Node) string { return n.GetCluster() }

func serveGo(t *testing.T) *plane {
	// Not in ADS mode: that mode answers a request by name only when it names every
	// resource of the type, which an Envoy subscribing to its clusters' endpoints does not.
	cache := cachev3.NewSnapshotCache(false, groupHash{}, nil)
	srv := serverv3.NewServer(t.Context(), cache, nil)
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, srv)
	return listen(t, g, &plane{name: "go-control-plane", set: func(v int, res map[string][]types.Resource) {
		snap, err := cachev3.NewSnapshot(strconv.Itoa(v), res)
		if err != nil {
			t.Fatal(err)
		}
		if err := cache.SetSnapshot(context.Background(), "edge", snap); err != nil {
			t.Fatal(err)
		}
	}})
}

// order is the order the control plane hands a change to its caches (xds.publishOrder,
// endpoints first): make before break.
var order = []string{resourcev3.EndpointType, resourcev3.ClusterType, resourcev3.RouteType, resourcev3.ListenerType}

func serveOurs(t *testing.T) *plane {
	cs := typeCaches{}
	names := rescache.NewNames()
	for _, typ := range order {
		cs[typ] = rescache.New(typ, "d-", names)
	}
	g := grpc.NewServer()
	ads.New(t.Context(), cs, hooks{}).Register(g)
	return listen(t, g, &plane{name: "tollgate", set: func(_ int, res map[string][]types.Resource) {
		for _, typ := range order {
			if err := cs[typ].Set(res[typ]); err != nil {
				t.Fatal(err)
			}
		}
	}})
}

// typeCaches serves each type from its cache, as the control plane does for one group.
type typeCaches map[string]*rescache.Cache

func (c typeCaches) CreateWatch(r *cachev3.Request, sub rescache.Subscription, ch chan cachev3.Response) (func(), error) {
	return c[r.TypeUrl].CreateWatch(r, sub, ch)
}

func (c typeCaches) CreateDeltaWatch(r *cachev3.DeltaRequest, sub rescache.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	return c[r.TypeUrl].CreateDeltaWatch(r, sub, ch)
}

type hooks struct{}

func (hooks) Node(uint64, *corev3.Node) error                      { return nil }
func (hooks) Refused(uint64, *corev3.Node, string, string, string) {}
func (hooks) Acked(uint64, *corev3.Node, string, string)           {}
func (hooks) Sent(string)                                          {}
func (hooks) Ended(uint64)                                         {}

func listen(t *testing.T, g *grpc.Server, p *plane) *plane {
	lis, err := tu.ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	p.addr = lis.Addr().String()
	return p
}

// client is an Envoy-like ADS client: it subscribes to every listener and cluster, to the
// endpoints of the clusters it holds and to the route tables of the listeners it holds, and
// ACKs (or, when picky, NACKs a route table with the refused virtual host).
type client struct {
	t     *testing.T
	name  string
	delta bool
	picky bool
	conn  *grpc.ClientConn

	mu       sync.Mutex
	held     holding
	versions map[string]map[string]string // delta: each resource's version
	accepted map[string]string            // SOTW: the last version accepted per type
	subs     map[string][]string          // by-name subscriptions (endpoints, routes)
	nonces   map[string]string            // the last response's nonce per type, on this stream
	poisoned int                          // responses on this stream carrying the refused host
	orphans  []string                     // routes received before a cluster they route to
	answers  int                          // responses received
	send     func(typ string, nonce string, nack string, sub, unsub []string) error
	cancel   context.CancelFunc
}

func newClient(t *testing.T, p *plane, name string, delta, picky bool) *client {
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, name: name, delta: delta, picky: picky, conn: conn}
	c.connect(false)
	return c
}

func (c *client) node() *corev3.Node { return &corev3.Node{Id: c.name, Cluster: "edge"} }

// connect opens a stream; with keep, it presents what it holds (versions), else it starts
// from nothing.
func (c *client) connect(keep bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	if !keep {
		c.held, c.versions, c.accepted, c.subs = holding{}, map[string]map[string]string{}, map[string]string{}, map[string][]string{}
	}
	ctx, cancel := context.WithCancel(c.t.Context())
	c.cancel, c.nonces, c.poisoned = cancel, map[string]string{}, 0
	if c.delta {
		c.connectDelta(ctx, keep)
	} else {
		c.connectSotw(ctx)
	}
}

func (c *client) connectSotw(ctx context.Context) {
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(c.conn).StreamAggregatedResources(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	first := true
	var sendMu sync.Mutex
	c.send = func(typ, nonce, nack string, _, _ []string) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typ, VersionInfo: c.accepted[typ], ResponseNonce: nonce, ResourceNames: c.subs[typ]}
		if first {
			req.Node, first = c.node(), false
		}
		if nack != "" {
			req.ErrorDetail = &rpcstatus.Status{Code: 3, Message: nack}
		}
		return st.Send(req)
	}
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.EndpointType, resourcev3.RouteType} {
		if typ == resourcev3.ClusterType || typ == resourcev3.ListenerType || len(c.subs[typ]) > 0 {
			c.send(typ, "", "", nil, nil)
		}
	}
	go receiveAll(st.Recv, c.takeSotw)
}

func (c *client) takeSotw(resp *discoveryv3.DiscoveryResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers++
	typ := resp.TypeUrl
	c.nonces[typ] = resp.Nonce
	got := map[string]string{}
	for _, a := range resp.Resources {
		m, err := a.UnmarshalNew()
		if err != nil {
			c.t.Error(err)
			return
		}
		got[cachev3.GetResourceName(m)] = wire(c.t, m)
		c.check(typ, m)
	}
	if reason := c.refuse(typ, resp.Resources); reason != "" {
		c.send(typ, resp.Nonce, reason, nil, nil)
		return
	}
	full := typ == resourcev3.ClusterType || typ == resourcev3.ListenerType
	if full || c.held[typ] == nil {
		c.held[typ] = map[string]string{}
	}
	maps.Copy(c.held[typ], got)
	c.accepted[typ] = resp.VersionInfo
	c.send(typ, resp.Nonce, "", nil, nil)
	c.follow(typ)
}

func (c *client) connectDelta(ctx context.Context, keep bool) {
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(c.conn).DeltaAggregatedResources(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	first := true
	var sendMu sync.Mutex
	c.send = func(typ, nonce, nack string, sub, unsub []string) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: nonce, ResourceNamesSubscribe: sub, ResourceNamesUnsubscribe: unsub}
		if first {
			req.Node, first = c.node(), false
		}
		if nack != "" {
			req.ErrorDetail = &rpcstatus.Status{Code: 3, Message: nack}
		}
		return st.Send(req)
	}
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.EndpointType, resourcev3.RouteType} {
		wildcard := typ == resourcev3.ClusterType || typ == resourcev3.ListenerType
		if !wildcard && len(c.subs[typ]) == 0 {
			continue
		}
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, ResourceNamesSubscribe: c.subs[typ]}
		if first {
			req.Node, first = c.node(), false
		}
		if keep {
			req.InitialResourceVersions = maps.Clone(c.versions[typ])
		}
		if err := st.Send(req); err != nil {
			c.t.Fatal(err)
		}
	}
	go receiveAll(st.Recv, c.takeDelta)
}

// receiveAll hands every response of a stream to take until the stream ends.
func receiveAll[T any](recv func() (*T, error), take func(*T)) {
	for {
		resp, err := recv()
		if err != nil {
			return
		}
		take(resp)
	}
}

func (c *client) takeDelta(resp *discoveryv3.DeltaDiscoveryResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers++
	typ := resp.TypeUrl
	c.nonces[typ] = resp.Nonce
	var anys []*anypb.Any
	for _, r := range resp.Resources {
		anys = append(anys, r.Resource)
	}
	if reason := c.refuse(typ, anys); reason != "" {
		c.send(typ, resp.Nonce, reason, nil, nil)
		return
	}
	if c.held[typ] == nil {
		c.held[typ], c.versions[typ] = map[string]string{}, map[string]string{}
	}
	for _, r := range resp.Resources {
		m, err := r.Resource.UnmarshalNew()
		if err != nil {
			c.t.Error(err)
			return
		}
		c.check(typ, m)
		c.held[typ][r.Name] = wire(c.t, m)
		c.versions[typ][r.Name] = r.Version
	}
	for _, name := range resp.RemovedResources {
		delete(c.held[typ], name)
		delete(c.versions[typ], name)
	}
	c.send(typ, resp.Nonce, "", nil, nil)
	c.follow(typ)
}

// refuse is why a picky client refuses a response ("" when it does not); c.mu is held.
func (c *client) refuse(typ string, rs []*anypb.Any) string {
	if typ != resourcev3.RouteType {
		return ""
	}
	for _, a := range rs {
		rc := &routev3.RouteConfiguration{}
		if a.UnmarshalTo(rc) == nil && slices.ContainsFunc(rc.VirtualHosts, func(v *routev3.VirtualHost) bool { return v.Name == refusedHost }) {
			c.poisoned++
			if c.picky {
				return "virtual host " + refusedHost + " refused"
			}
		}
	}
	return ""
}

// check notes a route table that routes to a cluster the client does not hold; c.mu is held.
func (c *client) check(typ string, m proto.Message) {
	rc, ok := m.(*routev3.RouteConfiguration)
	if !ok || typ != resourcev3.RouteType {
		return
	}
	for _, vh := range rc.VirtualHosts {
		for _, r := range vh.Routes {
			if cl := r.GetRoute().GetCluster(); c.held[resourcev3.ClusterType][cl] == "" {
				c.orphans = append(c.orphans, rc.Name+"→"+cl)
			}
		}
	}
}

// follow subscribes to the endpoints of the clusters held and the route tables of the
// listeners held, when those changed; c.mu is held.
func (c *client) follow(typ string) {
	var dep string
	var want []string
	switch typ {
	case resourcev3.ClusterType:
		dep, want = resourcev3.EndpointType, slices.Sorted(maps.Keys(c.held[typ]))
	case resourcev3.ListenerType:
		dep = resourcev3.RouteType
		seen := map[string]bool{}
		for _, b := range c.held[typ] {
			l := &listenerv3.Listener{}
			hcm := &hcmv3.HttpConnectionManager{}
			if proto.Unmarshal([]byte(b), l) != nil || l.GetApiListener().GetApiListener().UnmarshalTo(hcm) != nil {
				c.t.Error("a listener the client cannot read")
				return
			}
			seen[hcm.GetRds().GetRouteConfigName()] = true
		}
		want = slices.Sorted(maps.Keys(seen))
	default:
		return
	}
	had := c.subs[dep]
	if slices.Equal(had, want) {
		return
	}
	c.subs[dep] = want
	// What it no longer subscribes to, it no longer holds (an Envoy drops a removed
	// cluster's endpoints and an unused route table).
	for name := range c.held[dep] {
		if !slices.Contains(want, name) {
			delete(c.held[dep], name)
			delete(c.versions[dep], name)
		}
	}
	if c.delta {
		var sub, unsub []string
		for _, n := range want {
			if !slices.Contains(had, n) {
				sub = append(sub, n)
			}
		}
		for _, n := range had {
			if !slices.Contains(want, n) {
				unsub = append(unsub, n)
			}
		}
		c.send(dep, c.nonces[dep], "", sub, unsub)
		return
	}
	c.send(dep, c.nonces[dep], "", nil, nil)
}

func (c *client) snapshot() (holding, int, int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := holding{}
	for typ, m := range c.held {
		if len(m) > 0 {
			h[typ] = maps.Clone(m)
		}
	}
	return h, c.poisoned, c.answers, slices.Clone(c.orphans)
}

func equal(a, b holding) bool {
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.RouteType, resourcev3.ListenerType} {
		if !maps.Equal(a[typ], b[typ]) {
			return false
		}
	}
	return true
}

func describe(h holding) string {
	s := ""
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.RouteType, resourcev3.ListenerType} {
		s += fmt.Sprintf(" %s%v", typ[len("type.googleapis.com/envoy.config."):], slices.Sorted(maps.Keys(h[typ])))
	}
	return s
}

// step is one change: to the configuration, or to the clients' streams.
type step struct {
	name   string
	change func(c config) config
	client func(c *client) // instead of a change: what each client does
}

func TestDifferentialAgainstGoControlPlane(t *testing.T) {
	start := config{
		addrs:     map[string]string{"orders": "10.0.0.1", "menu": "10.0.0.2"},
		routes:    map[string][]string{"public": {"orders", "menu"}},
		listeners: map[string]string{"http": "public"},
	}
	steps := []step{
		{name: "first configuration", change: func(c config) config { return c }},
		{name: "an API added", change: func(c config) config {
			c.addrs["payments"] = "10.0.1.1"
			c.routes["public"] = append(c.routes["public"], "payments")
			return c
		}},
		{name: "an API changed", change: func(c config) config { c.routes["public"] = []string{"payments", "menu", "orders"}; return c }},
		{name: "an endpoint moved", change: func(c config) config { c.addrs["orders"] = "10.0.0.9"; return c }},
		{name: "a listener and route table added", change: func(c config) config {
			c.routes["internal"] = []string{"menu"}
			c.listeners["https"] = "internal"
			return c
		}},
		{name: "an API removed", change: func(c config) config {
			delete(c.addrs, "orders")
			c.routes["public"] = []string{"payments", "menu"}
			return c
		}},
		{name: "a route table the picky clients refuse", change: func(c config) config { c.poison = true; return c }},
		{name: "reconnect presenting what they hold", client: func(c *client) { c.connect(true) }},
		{name: "the refused table fixed and changed", change: func(c config) config {
			c.poison = false
			c.routes["public"] = []string{"menu", "payments"}
			return c
		}},
		{name: "reconnect from nothing", client: func(c *client) { c.connect(false) }},
		{name: "a listener and its route table removed", change: func(c config) config {
			delete(c.listeners, "https")
			delete(c.routes, "internal")
			return c
		}},
		{name: "an endpoint moved while the cluster is renamed", change: func(c config) config {
			delete(c.addrs, "menu")
			c.addrs["menu-v2"] = "10.0.2.2"
			c.routes["public"] = []string{"menu-v2", "payments"}
			return c
		}},
	}
	planes := []*plane{serveGo(t), serveOurs(t)}
	kinds := []struct {
		name         string
		delta, picky bool
	}{{"sotw", false, false}, {"sotw-picky", false, true}, {"delta", true, false}, {"delta-picky", true, true}}
	clients := map[*plane][]*client{}
	cfg := start
	var before map[string]holding // what each kind held after the last step
	for i, s := range steps {
		if s.change != nil {
			cfg = s.change(cfg.clone())
			for _, p := range planes {
				p.set(i+1, cfg.resources(t))
			}
		}
		if i == 0 {
			for _, p := range planes {
				for _, k := range kinds {
					clients[p] = append(clients[p], newClient(t, p, k.name, k.delta, k.picky))
				}
			}
		}
		if s.client != nil {
			for _, p := range planes {
				for _, c := range clients[p] {
					s.client(c)
				}
			}
		}
		now := map[string]holding{}
		for ki, k := range kinds {
			want := cfg.expected(t, k.picky, before[k.name])
			if k.picky && cfg.poison && before == nil {
				t.Fatal("the script poisons the first configuration")
			}
			var held [2]holding
			for pi, p := range planes {
				c := clients[p][ki]
				deadline := time.Now().Add(5 * time.Second)
				for {
					h, _, _, _ := c.snapshot()
					if equal(h, want) || time.Now().After(deadline) {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(50 * time.Millisecond) // nothing more may change it
				h, poisoned, answers, orphans := c.snapshot()
				held[pi] = h
				if !equal(h, want) {
					t.Errorf("step %d (%s), %s client of %s holds\n%s\nwant\n%s", i+1, s.name, k.name, p.name, describe(h), describe(want))
				}
				t.Logf("step %2d %-48s %-12s %-16s %4d responses so far, refused host received %d times, %d routes before their cluster",
					i+1, s.name, k.name, p.name, answers, poisoned, len(orphans))
				// Only ours is held to these: the snapshot cache answers its watches in no
				// set order, and go-control-plane's server resends a refused version at once,
				// as often as it is refused.
				if p.name == "tollgate" {
					if len(orphans) > 0 {
						t.Errorf("step %d (%s), %s client: route tables arrived before their clusters: %v", i+1, s.name, k.name, orphans)
					}
					if k.picky && poisoned > 1 {
						t.Errorf("step %d (%s), %s client: the refused route table was sent %d times", i+1, s.name, k.name, poisoned)
					}
				}
			}
			if !equal(held[0], held[1]) {
				t.Errorf("step %d (%s), %s client: go-control-plane's holds %s, ours %s", i+1, s.name, k.name, describe(held[0]), describe(held[1]))
			}
			now[k.name] = held[1]
		}
		before = now
	}
}
