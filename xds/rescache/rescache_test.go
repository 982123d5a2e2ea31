package rescache

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func cla(name string, priority uint32) types.Resource {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{Priority: priority}}}
}

func cluster(name string, seconds int64) types.Resource {
	return &clusterv3.Cluster{Name: name, ConnectTimeout: durationpb.New(time.Duration(seconds) * time.Second)}
}

// wire is a response as a client decodes it from the bytes a server sends.
func wire(t testing.TB, m proto.Message, into proto.Message) {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

// sub is a stream's subscription as the stream server keeps it (xds/ads's, reduced to
// what the cache reads).
type sub struct {
	names    map[string]struct{}
	wildcard bool
	held     Held
}

func newSub(names ...string) sub {
	s := sub{wildcard: len(names) == 0}
	s.setNames(names...)
	return s
}

func (s *sub) IsWildcard() bool                         { return s.wildcard }
func (s *sub) SubscribedResources() map[string]struct{} { return s.names }
func (s *sub) Fingerprint() uint64                      { return FingerprintOf(s.names) }
func (s *sub) Held() Held                               { return s.held }

// setNames replaces the names, forgetting that it holds those it no longer names.
func (s *sub) setNames(names ...string) {
	s.names = map[string]struct{}{}
	for _, n := range names {
		s.names[n] = struct{}{}
	}
	if s.held.Names != nil {
		kept := map[string]struct{}{}
		for n := range s.held.Names {
			if _, ok := s.names[n]; ok {
				kept[n] = struct{}{}
			}
		}
		s.held.Names, s.held.Set = kept, FingerprintOf(kept)
	}
}

// client is one state-of-the-world stream as the stream server keeps it: its
// subscription and the version it last took.
type client struct {
	t       testing.TB
	typeURL string
	sub     sub
	version string
	ch      chan cachev3.Response
	cancel  func()
}

func newClient(t testing.TB, typeURL string, names ...string) *client {
	return &client{t: t, typeURL: typeURL, sub: newSub(names...), ch: make(chan cachev3.Response, 1)}
}

// watch opens a watch as the server does after each request (an ACK of what it holds).
func (cl *client) watch(c *Cache) {
	cl.t.Helper()
	req := &discoveryv3.DiscoveryRequest{TypeUrl: cl.typeURL, VersionInfo: cl.version, ResourceNames: slices.Collect(mapKeys(cl.sub.SubscribedResources()))}
	cancel, err := c.CreateWatch(req, &cl.sub, cl.ch)
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.cancel = cancel
}

// take decodes an answer as a client receives it and records it as the server does.
func (cl *client) take(r cachev3.Response) *discoveryv3.DiscoveryResponse {
	cl.t.Helper()
	d, err := r.GetDiscoveryResponse()
	if err != nil {
		cl.t.Fatal(err)
	}
	d.Nonce = "1"
	cl.sub.held = r.(Answer).Held()
	got := &discoveryv3.DiscoveryResponse{}
	wire(cl.t, d, got)
	cl.version = got.VersionInfo
	return got
}

// recv is the names the watch was answered with, or nil when no answer came.
func (cl *client) recv() []string {
	cl.t.Helper()
	select {
	case r := <-cl.ch:
		return names(cl.t, cl.take(r).Resources)
	case <-time.After(50 * time.Millisecond):
		return nil
	}
}

func names(t testing.TB, rs []*anypb.Any) []string {
	out := []string{}
	for _, a := range rs {
		m, err := a.UnmarshalNew()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cachev3.GetResourceName(m))
	}
	slices.Sort(out)
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// The contract for types sent by name (endpoints, routes, secrets): a new client gets
// what it subscribes to; an up-to-date client waits; a change answers only the watches it
// concerns, with only what changed; a client of another process gets everything again,
// unless the content it holds is what the cache holds; nothing is sent before the first Set.
func TestContractByName(t *testing.T) {
	c := New(resourcev3.EndpointType, "p1-", nil)
	early := newClient(t, resourcev3.EndpointType, "a")
	early.watch(c)
	if got := early.recv(); got != nil {
		t.Fatalf("before the first Set a client got %v (an empty answer would drop its endpoints)", got)
	}
	if err := c.Set([]types.Resource{cla("a", 1), cla("b", 1)}); err != nil {
		t.Fatal(err)
	}
	if got := early.recv(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("the waiting client got %v, want [a]", got)
	}
	onlyB := newClient(t, resourcev3.EndpointType, "b")
	onlyB.watch(c)
	if got := onlyB.recv(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("a new client of b got %v", got)
	}
	early.watch(c)
	onlyB.watch(c)
	if early.recv() != nil || onlyB.recv() != nil {
		t.Fatal("an up-to-date client was answered again")
	}
	// A change of a answers a's client only, with a only.
	c.Set([]types.Resource{cla("a", 2), cla("b", 1)})
	if got := early.recv(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after a changed: %v", got)
	}
	if got := onlyB.recv(); got != nil {
		t.Errorf("b's client was sent %v for a change of a", got)
	}
	// A new name in a subscription is sent at once, alone.
	early.sub.setNames("a", "b")
	early.watch(c)
	if got := early.recv(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("a newly subscribed name: got %v, want [b]", got)
	}
	// Another process's version: everything again — also when it is of the same content,
	// since a version of a type sent by name does not tell which names it holds.
	v := c.Version()
	for _, version := range []string{"other-7.0123456789abcdef", "other-7" + v[len(v)-17:]} {
		stale := newClient(t, resourcev3.EndpointType, "a", "b")
		stale.version = version
		stale.watch(c)
		if got := stale.recv(); len(got) != 2 {
			t.Errorf("a client of another process (version %s) got %v", version, got)
		}
	}
	// A cancelled watch is not answered.
	onlyB.cancel()
	c.Set([]types.Resource{cla("a", 2), cla("b", 3)})
	if got := onlyB.recv(); got != nil {
		t.Errorf("a cancelled watch got %v", got)
	}
	if _, err := c.CreateWatch(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType}, &sub{wildcard: true}, make(chan cachev3.Response, 1)); err == nil {
		t.Error("a cluster watch was taken by an endpoints cache")
	}
	// A client a few changes behind, and one further behind than the recent changes
	// kept, get what changed since their version: a, not b.
	early.cancel()
	early.watch(c)
	early.recv()
	behind := *early
	for p := range uint32(3 * recentChanges) {
		c.Set([]types.Resource{cla("a", 10+p), cla("b", 3)})
		if p == 2 {
			few := behind
			few.watch(c)
			if got := few.recv(); !slices.Equal(got, []string{"a"}) {
				t.Errorf("a client 3 changes behind got %v, want [a]", got)
			}
		}
	}
	behind.ch = make(chan cachev3.Response, 1)
	behind.watch(c)
	if got := behind.recv(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("a client %d changes behind got %v, want [a]", 3*recentChanges, got)
	}
}

// A by-name stream holds, per its last answer, the set of names it subscribed to then —
// the subscription's own map, not a copy per stream; a request that swaps one name for
// another (the same count) is sent the new one; a name dropped and named again is sent
// again.
func TestByNameStreamsHoldTheirSet(t *testing.T) {
	c := New(resourcev3.EndpointType, "p1-", nil)
	c.Set([]types.Resource{cla("a", 1), cla("b", 1), cla("c", 1)})
	cl := newClient(t, resourcev3.EndpointType, "a", "b")
	cl.watch(c)
	if got := cl.recv(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("first answer %v", got)
	}
	if h := cl.sub.held; h.AsOf != 1 || reflect.ValueOf(h.Names).UnsafePointer() != reflect.ValueOf(cl.sub.names).UnsafePointer() || h.Set != cl.sub.Fingerprint() {
		t.Errorf("the stream holds %+v, want its subscription's own set as of change 1", h)
	}
	cl.sub.setNames("a", "c") // b dropped, c added
	cl.watch(c)
	if got := cl.recv(); !slices.Equal(got, []string{"c"}) {
		t.Errorf("after swapping b for c: %v, want [c]", got)
	}
	cl.watch(c)
	if got := cl.recv(); got != nil {
		t.Errorf("an up-to-date stream was sent %v", got)
	}
	cl.cancel()
	cl.sub.setNames("a") // c dropped: nothing to send
	cl.watch(c)
	if got := cl.recv(); got != nil {
		t.Errorf("dropping a name sent %v", got)
	}
	cl.cancel()
	cl.sub.setNames("a", "c") // named again: sent again
	cl.watch(c)
	if got := cl.recv(); !slices.Equal(got, []string{"c"}) {
		t.Errorf("a name dropped and named again: %v, want [c]", got)
	}
}

// Listeners and clusters: every answer carries all the client subscribes to (one left
// out is removed), and a removal is an answer too.
func TestContractFullState(t *testing.T) {
	c := New(resourcev3.ClusterType, "p1-", nil)
	if err := c.Set([]types.Resource{cluster("a", 1), cluster("b", 1)}); err != nil {
		t.Fatal(err)
	}
	all := newClient(t, resourcev3.ClusterType)
	all.watch(c)
	if got := all.recv(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("a wildcard client got %v", got)
	}
	named := newClient(t, resourcev3.ClusterType, "b")
	named.watch(c)
	if got := named.recv(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("a client of b got %v", got)
	}
	all.watch(c)
	named.watch(c)
	c.Set([]types.Resource{cluster("a", 2), cluster("b", 1)})
	if got := all.recv(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("after a changed, the wildcard client got %v, want all", got)
	}
	if got := named.recv(); got != nil {
		t.Errorf("b's client was sent %v for a change of a", got)
	}
	all.watch(c)
	c.Set([]types.Resource{cluster("a", 2)})
	if got := all.recv(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("after b was removed: %v, want [a]", got)
	}
	if got := named.recv(); got == nil || len(got) != 0 {
		t.Errorf("b's client should be told b is gone (an empty answer), got %v", got)
	}
	// Setting what is held sends nothing.
	all.watch(c)
	c.Set([]types.Resource{cluster("a", 2)})
	if got := all.recv(); got != nil {
		t.Errorf("an unchanged Set was sent: %v", got)
	}
}

// Every stream shares one copy of a resource's bytes: the response's resources are the
// same memory for every client of a version.
func TestEncodedOnceForEveryStream(t *testing.T) {
	for _, typeURL := range []string{resourcev3.ClusterType, resourcev3.EndpointType} {
		c := New(typeURL, "p1-", nil)
		mk := cla
		if typeURL == resourcev3.ClusterType {
			mk = func(n string, p uint32) types.Resource { return cluster(n, int64(p)) }
		}
		c.Set([]types.Resource{mk("a", 1), mk("b", 1)})
		var first []byte
		for i := range 3 {
			cl := newClient(t, typeURL, "a", "b")
			cl.watch(c)
			d, _ := (<-cl.ch).GetDiscoveryResponse()
			u := d.ProtoReflect().GetUnknown()
			if len(u) == 0 {
				t.Fatalf("%s: the resources are not pre-encoded", typeURL)
			}
			if i == 0 {
				first = u
			} else if &u[0] != &first[0] {
				t.Fatalf("%s: the resources were encoded again for another client", typeURL)
			}
		}
	}
}

// deltaClient is one delta stream as the stream server keeps it.
type deltaClient struct {
	t        testing.TB
	sub      sub
	ch       chan cachev3.DeltaResponse
	versions map[string]string // what it was sent, as Envoy keeps it
}

func newDeltaClient(t testing.TB, names ...string) *deltaClient {
	return &deltaClient{t: t, sub: newSub(names...), ch: make(chan cachev3.DeltaResponse, 1)}
}

func (cl *deltaClient) watch(c *Cache, nonce string) {
	cl.t.Helper()
	if _, err := c.CreateDeltaWatch(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResponseNonce: nonce}, &cl.sub, cl.ch); err != nil {
		cl.t.Fatal(err)
	}
}

// recv is the names sent and removed, or nil, nil when no answer came.
func (cl *deltaClient) recv() (sent, removed []string) {
	cl.t.Helper()
	select {
	case r := <-cl.ch:
		d, _ := r.GetDeltaDiscoveryResponse()
		cl.sub.held = r.(Answer).Held()
		got := &discoveryv3.DeltaDiscoveryResponse{}
		wire(cl.t, d, got)
		sent = []string{}
		for _, res := range got.Resources {
			m, err := res.Resource.UnmarshalNew()
			if err != nil || cachev3.GetResourceName(m) != res.Name || res.Version == "" {
				cl.t.Fatalf("delta resource %q (version %q) does not hold itself: %v", res.Name, res.Version, err)
			}
			sent = append(sent, res.Name)
			if cl.versions == nil {
				cl.versions = map[string]string{}
			}
			cl.versions[res.Name] = res.Version
		}
		slices.Sort(sent)
		return sent, got.RemovedResources
	case <-time.After(50 * time.Millisecond):
		return nil, nil
	}
}

// Delta: a client gets the resources whose version it does not hold and is told of those
// removed; a change costs the watches it concerns only; a reconnecting client that presents
// the versions it holds (initial_resource_versions) is sent nothing unchanged.
func TestContractDelta(t *testing.T) {
	c := New(resourcev3.EndpointType, "p1-", nil)
	c.Set([]types.Resource{cla("a", 1), cla("b", 1)})
	ab := newDeltaClient(t, "a", "b")
	ab.watch(c, "")
	if sent, _ := ab.recv(); !slices.Equal(sent, []string{"a", "b"}) {
		t.Fatalf("a new delta client got %v", sent)
	}
	onlyA := newDeltaClient(t, "a")
	onlyA.watch(c, "")
	onlyA.recv()
	ab.watch(c, "1")
	onlyA.watch(c, "1")
	c.Set([]types.Resource{cla("a", 1), cla("b", 2)})
	if sent, _ := ab.recv(); !slices.Equal(sent, []string{"b"}) {
		t.Errorf("after b changed: %v, want [b]", sent)
	}
	if sent, removed := onlyA.recv(); sent != nil || removed != nil {
		t.Errorf("a's client was sent %v/%v for a change of b", sent, removed)
	}
	ab.watch(c, "2")
	c.Set([]types.Resource{cla("a", 1)})
	if sent, removed := ab.recv(); len(sent) != 0 || !slices.Equal(removed, []string{"b"}) {
		t.Errorf("after b was removed: sent %v removed %v", sent, removed)
	}
	// An ACK after several changes, one of them to a name it does not hold, costs the
	// changes since its last response (and sends only those it subscribes to).
	c.Set([]types.Resource{cla("a", 1), cla("z", 1)})
	c.Set([]types.Resource{cla("a", 5), cla("z", 1)})
	ab.watch(c, "3")
	if sent, removed := ab.recv(); !slices.Equal(sent, []string{"a"}) || len(removed) != 0 {
		t.Errorf("after a changed: sent %v removed %v, want [a]", sent, removed)
	}
	c.Set([]types.Resource{cla("a", 5), cla("b", 7), cla("z", 1)})
	ab.watch(c, "4")
	if sent, _ := ab.recv(); !slices.Equal(sent, []string{"b"}) {
		t.Errorf("b is back: sent %v, want [b]", sent)
	}
	// A stream keeps only the change it is up to date as of, whatever it subscribes to.
	if h := ab.sub.held; h.Names != nil || h.Versions != nil || h.AsOf != 6 {
		t.Errorf("a delta stream holds %+v, want only change 6", h)
	}
	// A reconnect presenting the versions it holds, as Envoy does: nothing current is
	// sent again; a stale one is.
	for _, stale := range []bool{false, true} {
		versions := map[string]string{"a": ab.versions["a"]}
		if stale {
			versions["a"] = "old"
		}
		again := &deltaClient{t: t, sub: newSub("a"), ch: make(chan cachev3.DeltaResponse, 1)}
		again.sub.held.Versions = versions
		if _, err := c.CreateDeltaWatch(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: []string{"a"}, InitialResourceVersions: versions}, &again.sub, again.ch); err != nil {
			t.Fatal(err)
		}
		sent, removed := again.recv()
		if stale && !slices.Equal(sent, []string{"a"}) || !stale && (sent != nil || removed != nil) {
			t.Errorf("a reconnecting client (stale %v) was sent %v/%v", stale, sent, removed)
		}
	}
	// A new subscription on a stream that is up to date: only the new name is sent.
	c.Set([]types.Resource{cla("a", 5), cla("b", 7), cla("c", 1), cla("z", 1)})
	ab.watch(c, "5")
	ab.recv() // c is not subscribed: nothing, or nothing for ab
	ab.sub.setNames("a", "b", "c")
	if _, err := c.CreateDeltaWatch(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResponseNonce: "6", ResourceNamesSubscribe: []string{"c"}}, &ab.sub, ab.ch); err != nil {
		t.Fatal(err)
	}
	if sent, _ := ab.recv(); !slices.Equal(sent, []string{"c"}) {
		t.Errorf("subscribing to c sent %v, want [c]", sent)
	}
	c.Set([]types.Resource{cla("a", 5), cla("b", 7), cla("z", 1)})
	// A wildcard stream keeps no names, and still gets only what changed and is told of
	// what was removed.
	all := newDeltaClient(t)
	all.watch(c, "")
	if sent, _ := all.recv(); !slices.Equal(sent, []string{"a", "b", "z"}) {
		t.Fatalf("a wildcard delta client got %v", sent)
	}
	if h := all.sub.held; !h.Wildcard || h.Names != nil || h.Versions != nil {
		t.Errorf("a wildcard stream holds %+v, want only the change it is up to date as of", h)
	}
	all.watch(c, "1")
	c.Set([]types.Resource{cla("a", 6), cla("b", 7), cla("z", 1)})
	if sent, removed := all.recv(); !slices.Equal(sent, []string{"a"}) || len(removed) != 0 {
		t.Errorf("wildcard, after a changed: sent %v removed %v", sent, removed)
	}
	all.watch(c, "2")
	c.Set([]types.Resource{cla("a", 6), cla("b", 7)})
	if sent, removed := all.recv(); len(sent) != 0 || !slices.Equal(removed, []string{"z"}) {
		t.Errorf("wildcard, after z was removed: sent %v removed %v", sent, removed)
	}
	all.watch(c, "3")
	if sent, removed := all.recv(); sent != nil || removed != nil {
		t.Errorf("an up-to-date wildcard stream was sent %v/%v", sent, removed)
	}
}

// Rapid changes with many streams at once: every answer holds exactly the resources of the
// version it names, whatever was set while it was being sent (run under -race by make race).
func TestAnswersHoldTheirVersion(t *testing.T) {
	c := New(resourcev3.EndpointType, "p1-", nil)
	const versions, clients = 300, 8
	// The n-th Set (version "p1-<n>.…") sets every resource to priority n.
	set := func(p uint32) { c.Set([]types.Resource{cla("a", p), cla("b", p), cla("c", p)}) }
	set(1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	answers := make([]int, clients)
	for i := range clients {
		wg.Go(func() {
			cl := newClient(t, resourcev3.EndpointType, "a", "b", "c")
			for {
				cl.watch(c)
				select {
				case r := <-cl.ch:
					d := cl.take(r)
					answers[i]++
					n, err := strconv.Atoi(strings.TrimPrefix(d.VersionInfo[:strings.IndexByte(d.VersionInfo, '.')], "p1-"))
					if err != nil {
						t.Errorf("version %q", d.VersionInfo)
						return
					}
					for _, a := range d.Resources {
						var m endpointv3.ClusterLoadAssignment
						if err := a.UnmarshalTo(&m); err != nil {
							t.Error(err)
							return
						}
						if got := m.Endpoints[0].Priority; got != uint32(n) {
							t.Errorf("client %d: version %s holds %s at priority %d, want %d", i, d.VersionInfo, m.ClusterName, got, n)
							return
						}
					}
				case <-done:
					cl.cancel()
					return
				}
			}
		})
	}
	for p := 2; p <= versions; p++ {
		set(uint32(p))
		if p%10 == 0 {
			time.Sleep(200 * time.Microsecond) // let the streams take some versions
		}
	}
	time.Sleep(20 * time.Millisecond)
	close(done)
	wg.Wait()
	for i, n := range answers {
		if n < 2 {
			t.Errorf("client %d was answered %d times over %d versions", i, n, versions)
		}
	}
}

// A Set of new messages with the bytes held changes nothing and keeps the new messages: a
// Set of those same messages again (an endpoint change hands back every message of the
// last full build) marshals none of them.
func TestSettingWhatIsHeldAgainMarshalsNothing(t *testing.T) {
	c := New(resourcev3.EndpointType, "m-", nil)
	build := func() []types.Resource {
		var out []types.Resource
		for i := range 1000 {
			out = append(out, cla(fmt.Sprint("c", i), 1))
		}
		return out
	}
	if err := c.Set(build()); err != nil {
		t.Fatal(err)
	}
	rebuilt := build() // a full rebuild: new messages, the same bytes
	if err := c.Set(rebuilt); err != nil {
		t.Fatal(err)
	}
	v := c.Version()
	if n := testing.AllocsPerRun(5, func() {
		if err := c.Set(rebuilt); err != nil {
			t.Fatal(err)
		}
	}); n > 50 {
		t.Errorf("setting the messages held again allocated %.0f times (marshalled them)", n)
	}
	if c.Version() != v {
		t.Error("setting what is held changed the version")
	}
}

// The names requests may share are those some cache holds now: a name stays while one
// cache holds it and is forgotten when none does.
func TestNamesAreThoseHeldNow(t *testing.T) {
	names := NewNames()
	held := func(name string) bool {
		var ok bool
		names.Lookup(func(lookup func([]byte) (string, bool)) { _, ok = lookup([]byte(name)) })
		return ok
	}
	a, b := New(resourcev3.EndpointType, "n-", names), New(resourcev3.EndpointType, "n-", names)
	for _, c := range []*Cache{a, b} {
		if err := c.Set([]types.Resource{cla("names-shared", 1), cla("names-"+fmt.Sprintf("%p", c), 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if !held("names-shared") {
		t.Fatal("a name two caches hold is not held")
	}
	if err := a.Set(nil); err != nil {
		t.Fatal(err)
	}
	if !held("names-shared") || held("names-"+fmt.Sprintf("%p", a)) {
		t.Error("after one cache dropped its names: the shared one must stay, its own must go")
	}
	if err := b.Set([]types.Resource{cla("names-other", 1)}); err != nil {
		t.Fatal(err)
	}
	if held("names-shared") || !held("names-other") {
		t.Error("a name no cache holds is still held, or a new one is not")
	}
	if n := names.Len(); n != 1 {
		t.Errorf("%d names held after the changes, want 1 (names-other)", n)
	}
}
