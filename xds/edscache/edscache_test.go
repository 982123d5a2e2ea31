package edscache

import (
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	stream "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
)

func newCache() *Cache {
	return New("t1-", cachev3.NewLinearCache(resourcev3.EndpointType, cachev3.WithVersionPrefix("t1-d")))
}

func cla(name string) types.Resource { return &endpointv3.ClusterLoadAssignment{ClusterName: name} }

// client is one state-of-the-world stream: its subscription and what it was last sent.
type client struct {
	t       *testing.T
	sub     stream.Subscription
	version string
	ch      chan cachev3.Response
	cancel  func()
}

func newClient(t *testing.T, names ...string) *client {
	return &client{t: t, sub: stream.NewSotwSubscription(names, true), ch: make(chan cachev3.Response, 1)}
}

// watch opens a watch as the server does after each request (an ACK of what it holds).
func (cl *client) watch(c *Cache) {
	cl.t.Helper()
	req := &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, VersionInfo: cl.version, ResourceNames: keys(cl.sub.SubscribedResources())}
	cancel, err := c.CreateWatch(req, cl.sub, cl.ch)
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.cancel = cancel
}

// recv is the answer the watch got (names sent), or nil when none came.
func (cl *client) recv() []string {
	cl.t.Helper()
	select {
	case r := <-cl.ch:
		d, err := r.GetDiscoveryResponse()
		if err != nil {
			cl.t.Fatal(err)
		}
		cl.version = d.VersionInfo
		cl.sub.SetReturnedResources(r.GetReturnedResources())
		var names []string
		for _, a := range d.Resources {
			var m endpointv3.ClusterLoadAssignment
			a.UnmarshalTo(&m)
			names = append(names, m.ClusterName)
		}
		return names
	case <-time.After(50 * time.Millisecond):
		return nil
	}
}

func keys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The contract: a new client gets what it subscribes to; an up-to-date client waits; an
// update answers only the watches it concerns, with only what changed; a client of another
// cache instance gets everything again; nothing is sent before the first update.
func TestContract(t *testing.T) {
	c := newCache()
	early := newClient(t, "a")
	early.watch(c)
	if got := early.recv(); got != nil {
		t.Fatalf("before the first update a client got %v (an empty answer would drop its endpoints)", got)
	}
	if err := c.Update(map[string]types.Resource{"a": cla("a"), "b": cla("b")}, nil); err != nil {
		t.Fatal(err)
	}
	if got := early.recv(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("the waiting client got %v, want [a]", got)
	}
	onlyB := newClient(t, "b")
	onlyB.watch(c)
	if got := onlyB.recv(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("a new client of b got %v", got)
	}
	// Up to date: both wait.
	early.watch(c)
	onlyB.watch(c)
	if early.recv() != nil || onlyB.recv() != nil {
		t.Fatal("an up-to-date client was answered again")
	}
	// A change of a answers a's client only, with a only.
	c.Update(map[string]types.Resource{"a": cla("a")}, nil)
	if got := early.recv(); len(got) != 1 || got[0] != "a" {
		t.Errorf("after a changed: %v", got)
	}
	if got := onlyB.recv(); got != nil {
		t.Errorf("b's client was sent %v for a change of a", got)
	}
	// A client with another instance's version gets everything it subscribes to.
	stale := newClient(t, "a", "b")
	stale.version = "other-7"
	stale.watch(c)
	if got := stale.recv(); len(got) != 2 {
		t.Errorf("a client of another instance got %v", got)
	}
	// A cancelled watch is not answered.
	onlyB.cancel()
	c.Update(map[string]types.Resource{"b": cla("b")}, nil)
	if got := onlyB.recv(); got != nil {
		t.Errorf("a cancelled watch got %v", got)
	}
	if _, err := c.CreateWatch(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType}, stream.NewSotwSubscription(nil, true), make(chan cachev3.Response, 1)); err == nil {
		t.Error("a cluster watch was taken")
	}
}

// Each assignment is marshalled once per version, whatever the number of clients.
func TestMarshalledOnce(t *testing.T) {
	c := newCache()
	c.Update(map[string]types.Resource{"a": cla("a")}, nil)
	var first []byte
	for range 3 {
		cl := newClient(t, "a")
		cl.watch(c)
		r := <-cl.ch
		d, _ := r.GetDiscoveryResponse()
		if first == nil {
			first = d.Resources[0].Value
		} else if &d.Resources[0].Value[0] != &first[0] {
			t.Fatal("the assignment was marshalled again for another client")
		}
	}
}

// Set is the whole group's assignments: an equal assignment (the same message or a new
// equal one) is not resent, a changed one is, to its clients only, and one left out is
// removed (a new client no longer gets it).
func TestSetSendsOnlyWhatDiffers(t *testing.T) {
	c := newCache()
	a := &endpointv3.ClusterLoadAssignment{ClusterName: "a", Endpoints: []*endpointv3.LocalityLbEndpoints{{Priority: 1}}}
	if err := c.Set([]types.Resource{a, cla("b")}); err != nil {
		t.Fatal(err)
	}
	ca, cb := newClient(t, "a"), newClient(t, "b")
	ca.watch(c)
	cb.watch(c)
	if ca.recv() == nil || cb.recv() == nil {
		t.Fatal("new clients got nothing after the first Set")
	}
	ca.watch(c)
	cb.watch(c)
	// The same message for a, an equal new one for b: nothing to send.
	if err := c.Set([]types.Resource{a, cla("b")}); err != nil {
		t.Fatal(err)
	}
	if got := ca.recv(); got != nil {
		t.Errorf("an unchanged a was resent: %v", got)
	}
	if got := cb.recv(); got != nil {
		t.Errorf("an equal b was resent: %v", got)
	}
	// b changes: only b's client hears of it.
	b2 := &endpointv3.ClusterLoadAssignment{ClusterName: "b", Endpoints: []*endpointv3.LocalityLbEndpoints{{Priority: 2}}}
	if err := c.Set([]types.Resource{a, b2}); err != nil {
		t.Fatal(err)
	}
	if got := cb.recv(); len(got) != 1 || got[0] != "b" {
		t.Errorf("after b changed its client got %v", got)
	}
	if got := ca.recv(); got != nil {
		t.Errorf("a's client was sent %v for a change of b", got)
	}
	// b left out: removed.
	if err := c.Set([]types.Resource{a}); err != nil {
		t.Fatal(err)
	}
	fresh := newClient(t, "a", "b")
	fresh.watch(c)
	if got := fresh.recv(); len(got) != 1 || got[0] != "a" {
		t.Errorf("after b was removed a new client got %v, want [a]", got)
	}
}
