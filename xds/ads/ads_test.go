package ads

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/xds/rescache"
)

// caches is a Watcher with one rescache per type, as the control plane has per group.
type caches map[string]*rescache.Cache

func (c caches) CreateWatch(r *cachev3.Request, sub rescache.Subscription, ch chan cachev3.Response) (func(), error) {
	if c[r.TypeUrl] == nil {
		return nil, fmt.Errorf("type %s is not served", r.TypeUrl)
	}
	return c[r.TypeUrl].CreateWatch(r, sub, ch)
}

func (c caches) CreateDeltaWatch(r *cachev3.DeltaRequest, sub rescache.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	if c[r.TypeUrl] == nil {
		return nil, fmt.Errorf("type %s is not served", r.TypeUrl)
	}
	return c[r.TypeUrl].CreateDeltaWatch(r, sub, ch)
}

// heard records what the hooks are told.
type heard struct {
	mu      sync.Mutex
	nodes   []string
	refused []string // type version message
	acked   []string // type version
	sent    int
	ended   int
}

func (h *heard) Node(_ uint64, n *corev3.Node) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nodes = append(h.nodes, n.GetId())
	if n.GetId() == "refused" {
		return status.Error(codes.PermissionDenied, "refused")
	}
	return nil
}
func (h *heard) Refused(_ uint64, _ *corev3.Node, typeURL, version, msg string) {
	h.mu.Lock()
	h.refused = append(h.refused, typeURL+" "+version+" "+msg)
	h.mu.Unlock()
}
func (h *heard) Acked(_ uint64, _ *corev3.Node, typeURL, version string) {
	h.mu.Lock()
	h.acked = append(h.acked, typeURL+" "+version)
	h.mu.Unlock()
}
func (h *heard) Sent(string)  { h.mu.Lock(); h.sent++; h.mu.Unlock() }
func (h *heard) Ended(uint64) { h.mu.Lock(); h.ended++; h.mu.Unlock() }

type fixture struct {
	eds   *rescache.Cache
	srv   *Server
	hooks *heard
	conn  *grpc.ClientConn
}

func cla(name, addr string) types.Resource {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: addr}}}}}}}}}}
}

func names(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("cluster-%03d", i))
	}
	return out
}

func assignments(names []string, addr string) []types.Resource {
	var out []types.Resource
	for _, n := range names {
		out = append(out, cla(n, addr))
	}
	return out
}

// start serves EDS from a rescache holding the named assignments, over a real socket.
func start(t *testing.T, held []string) *fixture {
	t.Helper()
	f := &fixture{eds: rescache.New(resourcev3.EndpointType, "t-", nil), hooks: &heard{}}
	if err := f.eds.Set(assignments(held, "10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	f.srv = New(t.Context(), caches{resourcev3.EndpointType: f.eds}, f.hooks)
	lis, err := tu.ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	f.srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	f.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.conn.Close() })
	return f
}

// sotwClient is a raw state-of-the-world stream.
type sotwClient struct {
	t      *testing.T
	stream grpc.BidiStreamingClient[discoveryv3.DiscoveryRequest, discoveryv3.DiscoveryResponse]
	in     chan *discoveryv3.DiscoveryResponse
	done   chan error
	cancel context.CancelFunc
	last   *discoveryv3.DiscoveryResponse
}

func (f *fixture) ads(t *testing.T) *sotwClient {
	ctx, cancel := context.WithCancel(t.Context())
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(f.conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &sotwClient{t: t, stream: st, in: make(chan *discoveryv3.DiscoveryResponse, 16), done: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			r, err := st.Recv()
			if err != nil {
				c.done <- err
				return
			}
			c.in <- r
		}
	}()
	return c
}

func (c *sotwClient) send(r *discoveryv3.DiscoveryRequest) {
	c.t.Helper()
	if r.TypeUrl == "" {
		r.TypeUrl = resourcev3.EndpointType
	}
	if err := c.stream.Send(r); err != nil {
		c.t.Fatal(err)
	}
}

// ask sends names with the version and nonce of the last response (an ACK, when the names
// are the ones it was answered for).
func (c *sotwClient) ask(names []string) {
	c.t.Helper()
	r := &discoveryv3.DiscoveryRequest{ResourceNames: names}
	if c.last != nil {
		r.VersionInfo, r.ResponseNonce = c.last.VersionInfo, c.last.Nonce
	}
	c.send(r)
}

func (c *sotwClient) recv() *discoveryv3.DiscoveryResponse {
	c.t.Helper()
	select {
	case r := <-c.in:
		c.last = r
		return r
	case err := <-c.done:
		c.t.Fatalf("stream ended: %v", err)
	case <-time.After(5 * time.Second):
		c.t.Fatal("no response")
	}
	return nil
}

func (c *sotwClient) quiet(why string) {
	c.t.Helper()
	select {
	case r := <-c.in:
		c.t.Fatalf("%s: got version %s with %d resources", why, r.VersionInfo, len(r.Resources))
	case <-time.After(200 * time.Millisecond):
	}
}

func clusterNames(t *testing.T, rs []*anypb.Any) []string {
	t.Helper()
	var out []string
	for _, a := range rs {
		c := &endpointv3.ClusterLoadAssignment{}
		if err := a.UnmarshalTo(c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c.ClusterName)
	}
	sort.Strings(out)
	return out
}

// Streams that subscribe to the same names share one set, whatever the order they name
// them in; a stream that names another is sent that one only and holds a set of its own; a
// request answering a superseded response is ignored; sets go with their streams.
func TestStreamsWithTheSameNamesShareOneSet(t *testing.T) {
	all := names(200)
	f := start(t, all)
	var clients []*sotwClient
	for i := range 20 {
		c := f.ads(t)
		c.send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: fmt.Sprint("envoy-", i)}, ResourceNames: all[:100]})
		if r := c.recv(); len(r.Resources) != 100 {
			t.Fatalf("%d assignments for 100 names", len(r.Resources))
		}
		c.ask(all[:100]) // the ACK restates the names
		clients = append(clients, c)
	}
	time.Sleep(200 * time.Millisecond)
	for _, c := range clients {
		select {
		case r := <-c.in:
			t.Fatalf("an ACK with the same names was answered with %d resources", len(r.Resources))
		default:
		}
	}
	if n := f.srv.SharedSets(); n != 1 {
		t.Fatalf("20 streams with the same names hold %d sets", n)
	}
	if len(f.hooks.nodes) != 20 {
		t.Errorf("hooks heard %d nodes for 20 streams that sent one each", len(f.hooks.nodes))
	}

	rev := slices.Clone(all[:100])
	slices.Reverse(rev)
	clients[0].ask(rev)
	clients[0].quiet("the same names in another order")
	if n := f.srv.SharedSets(); n != 1 {
		t.Fatalf("the same names in another order made a set of their own: %d sets", n)
	}

	more := append(slices.Clone(all[:100]), "cluster-150")
	clients[1].ask(more)
	if got := clusterNames(t, clients[1].recv().Resources); !slices.Equal(got, []string{"cluster-150"}) {
		t.Fatalf("a new name sent %v", got)
	}
	clients[1].ask(more)
	if n := f.srv.SharedSets(); n != 2 {
		t.Fatalf("a stream with other names: %d sets, want 2", n)
	}

	// A change reaches the streams that subscribe to it, once each.
	if err := f.eds.Set(assignments(all, "10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if r := c.recv(); len(r.Resources) < 100 {
			t.Fatalf("a change sent %d assignments", len(r.Resources))
		}
	}
	// A request made before that response arrived (it answers the one before): ignored.
	clients[1].send(&discoveryv3.DiscoveryRequest{ResourceNames: all[100:], ResponseNonce: "1"})
	if err := f.eds.Set(assignments(all, "10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	clients[1].quiet("a change, with no request since the last response but a stale one")
	if n := f.srv.SharedSets(); n != 2 {
		t.Fatalf("a stale request changed a subscription: %d sets", n)
	}
	clients[1].ask(more)
	if r := clients[1].recv(); len(r.Resources) != 101 {
		t.Fatalf("the ACK of the last response got %d assignments, want the 101 changed", len(r.Resources))
	}

	for _, c := range clients {
		c.cancel()
		<-c.done
	}
	tu.Eventually(t, "the sets of ended streams go", func() bool { return f.srv.SharedSets() == 0 })
}

// An ACK that restates the names a stream subscribes to costs no allocation.
func TestAnACKWithTheSameNamesAllocatesNothing(t *testing.T) {
	sets := newSets()
	list := names(1000)
	sub := newSotwSubscription(sets, list)
	again := slices.Clone(list) // another request's slice, the same strings
	if n := testing.AllocsPerRun(100, func() { sub.update(sets, again) }); n != 0 {
		t.Errorf("an ACK with the same names allocated %.0f times", n)
	}
	other := newSotwSubscription(sets, slices.Clone(list))
	if other.set != sub.set {
		t.Error("a second stream with the same names made its own set")
	}
}

// A NACK is heard with the version refused; that version is not sent again, the next is.
func TestANACKIsHeardAndTheRefusedVersionNotResent(t *testing.T) {
	all := names(10)
	f := start(t, all)
	c := f.ads(t)
	c.send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "envoy"}, ResourceNames: all})
	first := c.recv()
	c.ask(all)
	tu.Eventually(t, "the ACK is heard", func() bool {
		f.hooks.mu.Lock()
		defer f.hooks.mu.Unlock()
		return slices.Equal(f.hooks.acked, []string{resourcev3.EndpointType + " " + first.VersionInfo})
	})
	if err := f.eds.Set(assignments(all, "10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	refused := c.recv()
	c.send(&discoveryv3.DiscoveryRequest{ResourceNames: all, VersionInfo: "", ResponseNonce: refused.Nonce,
		ErrorDetail: &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: "bad address"}})
	want := resourcev3.EndpointType + " " + refused.VersionInfo + " bad address"
	tu.Eventually(t, "the NACK is heard", func() bool {
		f.hooks.mu.Lock()
		defer f.hooks.mu.Unlock()
		return slices.Equal(f.hooks.refused, []string{want})
	})
	c.quiet("after a NACK")
	if err := f.eds.Set(assignments(all, "10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	if next := c.recv(); next.VersionInfo == refused.VersionInfo || len(next.Resources) != 10 {
		t.Errorf("after the NACK: version %s with %d resources", next.VersionInfo, len(next.Resources))
	}
	f.hooks.mu.Lock()
	if len(f.hooks.acked) != 1 {
		t.Errorf("a NACK was heard as an ACK too: %v", f.hooks.acked)
	}
	f.hooks.mu.Unlock()
	c.stream.CloseSend()
	tu.Eventually(t, "the stream's end is heard", func() bool {
		f.hooks.mu.Lock()
		defer f.hooks.mu.Unlock()
		return f.hooks.ended == 1
	})
}

// A first request that names nothing subscribes to everything (legacy wildcard) until one
// names something; "*" subscribes to everything with names besides.
func TestWildcardSubscriptions(t *testing.T) {
	all := names(5)
	f := start(t, all)
	c := f.ads(t)
	c.ask(nil) // and no node: the hooks hear of it all the same
	if got := clusterNames(t, c.recv().Resources); !slices.Equal(got, all) {
		t.Fatalf("a legacy wildcard stream got %v", got)
	}
	f.hooks.mu.Lock()
	if !slices.Equal(f.hooks.nodes, []string{""}) {
		t.Errorf("for a stream without a node the hooks heard %q", f.hooks.nodes)
	}
	f.hooks.mu.Unlock()
	c.ask(nil)
	c.quiet("an ACK of a legacy wildcard stream")
	if err := f.eds.Set(assignments(append(slices.Clone(all), "cluster-new"), "10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if got := clusterNames(t, c.recv().Resources); !slices.Equal(got, []string{"cluster-new"}) {
		t.Fatalf("a new resource sent %v to a wildcard stream", got)
	}
	c.ask([]string{all[0]}) // names one: by name from now on
	tu.Eventually(t, "the stream subscribes by name", func() bool { return f.srv.SharedSets() == 1 })
	c.quiet("naming one it holds")
	if err := f.eds.Set(assignments(append(slices.Clone(all), "cluster-new"), "10.0.0.9")); err != nil {
		t.Fatal(err)
	}
	if got := clusterNames(t, c.recv().Resources); !slices.Equal(got, []string{all[0]}) {
		t.Fatalf("a change sent %v to a stream subscribed to %s", got, all[0])
	}
	c.ask([]string{"*", all[0]})
	if got := clusterNames(t, c.recv().Resources); len(got) != 5 {
		// It holds all[0] as of the last version: it is sent the five others.
		t.Fatalf("an explicit wildcard sent %v", got)
	}
}

// A node the hooks refuse ends its stream with their error.
func TestARefusedNodeEndsItsStream(t *testing.T) {
	f := start(t, names(1))
	for _, delta := range []bool{false, true} {
		var err error
		if delta {
			st, _ := discoveryv3.NewAggregatedDiscoveryServiceClient(f.conn).DeltaAggregatedResources(t.Context())
			st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "refused"}, TypeUrl: resourcev3.EndpointType})
			_, err = st.Recv()
		} else {
			st, _ := discoveryv3.NewAggregatedDiscoveryServiceClient(f.conn).StreamAggregatedResources(t.Context())
			st.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "refused"}, TypeUrl: resourcev3.EndpointType})
			_, err = st.Recv()
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("delta %v: a refused node's stream ended with %v", delta, err)
		}
	}
}

// A per-type service's stream needs no type URL; an aggregated one does, and a type the
// watcher does not serve ends the stream.
func TestTypeURLs(t *testing.T) {
	all := names(3)
	f := start(t, all)
	st, err := endpointservice.NewEndpointDiscoveryServiceClient(f.conn).StreamEndpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discoveryv3.DiscoveryRequest{ResourceNames: all}); err != nil {
		t.Fatal(err)
	}
	r, err := st.Recv()
	if err != nil || r.TypeUrl != resourcev3.EndpointType || len(r.Resources) != 3 {
		t.Fatalf("the EDS service answered %v, %v", r, err)
	}
	for _, typeURL := range []string{"", resourcev3.ClusterType} {
		st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(f.conn).StreamAggregatedResources(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: typeURL})
		if _, err := st.Recv(); status.Code(err) != codes.InvalidArgument {
			t.Errorf("an aggregated request for %q: %v, want InvalidArgument", typeURL, err)
		}
	}
}

// Delta streams share sets too; an unsubscribed name is no longer sent; a NACK is heard
// with the system version of the response refused.
func TestDeltaStreams(t *testing.T) {
	all := names(50)
	f := start(t, all)
	type deltaClient = grpc.BidiStreamingClient[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]
	var clients []deltaClient
	for i := range 2 {
		st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(f.conn).DeltaAggregatedResources(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: fmt.Sprint("d-", i)}, TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: all})
		r, err := st.Recv()
		if err != nil || len(r.Resources) != 50 {
			t.Fatalf("delta: %d resources, %v", len(r.GetResources()), err)
		}
		st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResponseNonce: r.Nonce})
		clients = append(clients, st)
	}
	if n := f.srv.SharedSets(); n != 1 {
		t.Fatalf("two delta streams with the same names hold %d sets", n)
	}
	clients[1].Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesUnsubscribe: all[:1]})
	tu.Eventually(t, "the stream that unsubscribed has a set of its own", func() bool { return f.srv.SharedSets() == 2 })
	changed := assignments(all, "10.0.0.1")
	changed[0] = cla(all[0], "10.0.0.7")
	if err := f.eds.Set(changed); err != nil {
		t.Fatal(err)
	}
	r, err := clients[0].Recv()
	if err != nil || !slices.Equal(clusterNamesOf(t, r.Resources), all[:1]) {
		t.Fatalf("the subscribed stream got %v, %v", r, err)
	}
	clients[0].Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResponseNonce: r.Nonce,
		ErrorDetail: &rpcstatus.Status{Message: "no"}})
	tu.Eventually(t, "the delta NACK is heard", func() bool {
		f.hooks.mu.Lock()
		defer f.hooks.mu.Unlock()
		return slices.Contains(f.hooks.refused, resourcev3.EndpointType+" "+r.SystemVersionInfo+" no")
	})
	f.hooks.mu.Lock()
	if len(f.hooks.acked) != 2 || slices.Contains(f.hooks.acked, resourcev3.EndpointType+" "+r.SystemVersionInfo) {
		t.Errorf("delta ACKs heard: %v (one per stream's first response, not the NACKed one)", f.hooks.acked)
	}
	f.hooks.mu.Unlock()
	changed[1] = cla(all[1], "10.0.0.8")
	if err := f.eds.Set(changed); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		r, err := c.Recv()
		if err != nil || !slices.Equal(clusterNamesOf(t, r.Resources), all[1:2]) {
			t.Fatalf("stream %d got %v, %v (the unsubscribed change must not come)", i, r, err)
		}
	}
}

func clusterNamesOf(t *testing.T, rs []*discoveryv3.Resource) []string {
	var anys []*anypb.Any
	for _, r := range rs {
		anys = append(anys, r.Resource)
	}
	return clusterNames(t, anys)
}

// A delta stream's first names find the set other streams have without a map of their own;
// later changes make (or find) the new set.
func TestDeltaFirstNamesShareTheSetWithoutAMap(t *testing.T) {
	sets := newSets()
	list := names(1000)
	first := newDeltaSubscription(sets, list, nil, nil)
	again := slices.Clone(list)
	var second *subscription
	if n := testing.AllocsPerRun(1, func() { second = newDeltaSubscription(sets, again, nil, nil) }); n > 3 {
		t.Errorf("a second stream's first names allocated %.0f times", n)
	}
	if second.set != first.set {
		t.Fatal("the same first names made a second set")
	}
	second.change(sets, []string{"extra"}, list[:1])
	if _, ok := second.set.m["extra"]; !ok || len(second.set.m) != 1000 || second.set == first.set {
		t.Fatalf("after a change the set holds %d names", len(second.set.m))
	}
	if _, ok := first.set.m["extra"]; ok {
		t.Fatal("a change of one stream changed another's set")
	}
}

// What a state-of-the-world stream holds follows its subscription: names dropped leave it
// (sent again when named again), names added do not join it, and the set it holds is
// shared, not copied, when only names were dropped.
func TestSubscriptionForgetsDroppedNames(t *testing.T) {
	ss := newSets()
	s := newSotwSubscription(ss, []string{"a", "b", "c"})
	s.held = rescache.Held{AsOf: 3, Names: s.set.m, Set: s.set.fp}
	s.update(ss, []string{"a", "b", "c", "d"})
	if len(s.held.Names) != 3 {
		t.Errorf("after naming d it holds %v", s.held.Names)
	}
	s.update(ss, []string{"a", "d"})
	if _, ok := s.held.Names["b"]; ok || len(s.held.Names) != 1 || s.held.Set != rescache.FingerprintOf(s.held.Names) {
		t.Errorf("after dropping b and c it holds %v (set %x)", s.held.Names, s.held.Set)
	}
	s.update(ss, []string{"a"})
	if len(s.held.Names) != 1 || s.held.Set != s.set.fp {
		t.Errorf("after dropping d it holds %v, want its subscription's set", s.held.Names)
	}
	if s.held.AsOf != 3 {
		t.Errorf("the change it holds as of moved to %d", s.held.AsOf)
	}
}

// A delta stream that unsubscribes by name from what its wildcard still covers is to be
// sent it again; one that unsubscribes from a name it subscribed to alone drops its version.
func TestDeltaUnsubscribeUnderWildcard(t *testing.T) {
	ss := newSets()
	s := newDeltaSubscription(ss, []string{"*", "a", "b"}, nil, map[string]string{"a": "v1", "b": "v1"})
	s.change(ss, nil, []string{"a"})
	if v, ok := s.held.Versions["a"]; !ok || v != "" {
		t.Errorf("a, still covered by the wildcard, has version %q (%v), want \"\"", v, ok)
	}
	s.change(ss, nil, []string{"*"})
	s.change(ss, nil, []string{"b"})
	if _, ok := s.held.Versions["b"]; ok || s.wildcard {
		t.Errorf("b unsubscribed without a wildcard still has a version (wildcard %v)", s.wildcard)
	}
	if _, ok := s.set.m["b"]; ok {
		t.Error("b is still subscribed")
	}
}
