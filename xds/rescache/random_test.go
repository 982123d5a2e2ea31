package rescache

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Random histories against a model: resources added, changed and removed; streams of both
// protocols, by name and wildcard, changing what they subscribe to, reconnecting with and
// without what they hold, and some sleeping through more changes than the cache logs.
// Whenever every stream has taken what it was sent, each holds every resource it
// subscribes to as the cache holds it, and a delta stream holds nothing that is gone.
func TestRandomHistoriesConverge(t *testing.T) {
	for seed := range uint64(seeds()) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomHistory(t, seed) })
	}
}

// seeds is how many histories to try: RESCACHE_SEEDS, else 150.
func seeds() int {
	if n, err := strconv.Atoi(os.Getenv("RESCACHE_SEEDS")); err == nil {
		return n
	}
	return 150
}

// rclient is a client of either protocol and what it holds: name → priority.
type rclient struct {
	delta    bool
	sub      sub
	version  string            // state of the world: the last version taken
	versions map[string]string // delta: each resource's version
	holds    map[string]uint32
	ch       chan cachev3.Response
	dch      chan cachev3.DeltaResponse
	cancel   func()
	fresh    []string // delta: names subscribed since the last request
	asleep   int      // steps it still takes nothing
}

func randomHistory(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	c := New(resourcev3.EndpointType, "r-", nil)
	pool := make([]string, 12)
	for i := range pool {
		pool[i] = fmt.Sprint("c", i)
	}
	world := map[string]uint32{}
	set := func() {
		var rs []types.Resource
		for _, n := range slices.Sorted(maps.Keys(world)) {
			rs = append(rs, cla(n, world[n]))
		}
		if err := c.Set(rs); err != nil {
			t.Fatal(err)
		}
	}
	subset := func() []string { // never empty: a named stream stays named
		out := []string{pool[rng.IntN(len(pool))]}
		for _, n := range pool {
			if rng.IntN(3) == 0 && n != out[0] {
				out = append(out, n)
			}
		}
		return out
	}
	set()
	var clients []*rclient
	for i := range 8 {
		cl := &rclient{delta: i%2 == 1, holds: map[string]uint32{}, versions: map[string]string{}}
		names := subset()
		if i < 2 {
			names = nil // wildcard, one of each protocol
		}
		cl.sub = newSub(names...)
		cl.fresh = names
		clients = append(clients, cl)
	}
	for step := range 240 {
		switch op := rng.IntN(10); {
		case op < 5: // a change to the resources
			for range 1 + rng.IntN(3) {
				n := pool[rng.IntN(len(pool))]
				if _, ok := world[n]; ok && rng.IntN(3) == 0 {
					delete(world, n)
				} else {
					world[n] = uint32(step + 1)
				}
			}
			set()
		case op < 7: // a client changes what it subscribes to
			cl := clients[2+rng.IntN(len(clients)-2)]
			cl.stop()
			names := subset()
			for _, n := range names {
				if _, had := cl.sub.names[n]; !had {
					cl.fresh = append(cl.fresh, n)
				}
			}
			for n := range cl.sub.names {
				if !slices.Contains(names, n) {
					delete(cl.holds, n) // a client drops what it no longer subscribes to
					delete(cl.versions, n)
					delete(cl.sub.held.Versions, n) // as the stream server does (xds/ads)
				}
			}
			held := cl.sub.held
			cl.sub.setNames(names...)
			if cl.delta {
				cl.sub.held.AsOf, cl.sub.held.Versions = held.AsOf, held.Versions
			}
		case op < 8: // a client reconnects, presenting what it holds or nothing
			cl := clients[rng.IntN(len(clients))]
			cl.stop()
			keep := rng.IntN(2) == 0
			names := slices.Collect(maps.Keys(cl.sub.names))
			cl.sub = newSub(names...)
			cl.fresh = names
			if !keep {
				cl.version, cl.versions, cl.holds = "", map[string]string{}, map[string]uint32{}
			} else if cl.delta {
				cl.sub.held.Versions = maps.Clone(cl.versions)
			}
		case op < 9: // a client stops taking answers for a while (past the cache's log)
			clients[rng.IntN(len(clients))].asleep = 1 + rng.IntN(3*recentChanges)
		}
		for _, cl := range clients {
			cl.run(t, c)
		}
	}
	// Everyone awake, everything taken: each holds what it subscribes to as it is now.
	for _, cl := range clients {
		cl.asleep = 0
		cl.run(t, c)
		for n, p := range world {
			if _, ok := cl.sub.names[n]; (ok || cl.sub.wildcard) && cl.holds[n] != p {
				t.Errorf("delta %v client of %v holds %s at %d (held: %v), the cache at %d", cl.delta, slices.Sorted(maps.Keys(cl.sub.names)), n, cl.holds[n], cl.holds[n] != 0, p)
			}
		}
		if cl.delta {
			for n := range cl.holds {
				if _, ok := world[n]; !ok {
					t.Errorf("delta client of %v still holds %s, which is gone", slices.Sorted(maps.Keys(cl.sub.names)), n)
				}
			}
		}
	}
}

// stop cancels the client's open watch, as the stream server does before a request.
func (cl *rclient) stop() {
	if cl.cancel != nil {
		cl.cancel()
		cl.cancel = nil
	}
	cl.ch, cl.dch = nil, nil
}

// run takes what the cache answered and watches again, until nothing more comes (a
// sleeping client takes nothing, and its watch stays as it is).
func (cl *rclient) run(t *testing.T, c *Cache) {
	if cl.asleep > 0 {
		cl.asleep--
		return
	}
	for range 10 {
		if cl.cancel == nil {
			cl.watch(t, c)
		}
		if !cl.take(t) {
			return
		}
	}
	t.Fatal("a client is answered again and again")
}

func (cl *rclient) watch(t *testing.T, c *Cache) {
	var err error
	if cl.delta {
		cl.dch = make(chan cachev3.DeltaResponse, 1)
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: cl.fresh}
		if cl.sub.held.AsOf == 0 && len(cl.sub.held.Versions) > 0 {
			req.InitialResourceVersions = cl.sub.held.Versions
		}
		if cl.sub.held.AsOf > 0 || len(cl.versions) > 0 {
			req.ResponseNonce = "n"
		}
		cl.cancel, err = c.CreateDeltaWatch(req, &cl.sub, cl.dch)
	} else {
		cl.ch = make(chan cachev3.Response, 1)
		req := &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, VersionInfo: cl.version, ResourceNames: slices.Collect(maps.Keys(cl.sub.names))}
		cl.cancel, err = c.CreateWatch(req, &cl.sub, cl.ch)
	}
	if err != nil {
		t.Fatal(err)
	}
	cl.fresh = nil
}

// take applies an answer, if one came.
func (cl *rclient) take(t *testing.T) bool {
	select {
	case r := <-cl.ch:
		d, _ := r.GetDiscoveryResponse()
		got := &discoveryv3.DiscoveryResponse{}
		wire(t, d, got)
		for _, a := range got.Resources {
			m := &endpointv3.ClusterLoadAssignment{}
			if err := a.UnmarshalTo(m); err != nil {
				t.Fatal(err)
			}
			cl.holds[m.ClusterName] = m.Endpoints[0].Priority
		}
		cl.version, cl.sub.held = got.VersionInfo, r.(Answer).Held()
	case r := <-cl.dch:
		d, _ := r.GetDeltaDiscoveryResponse()
		got := &discoveryv3.DeltaDiscoveryResponse{}
		wire(t, d, got)
		for _, res := range got.Resources {
			m := &endpointv3.ClusterLoadAssignment{}
			if err := res.Resource.UnmarshalTo(m); err != nil {
				t.Fatal(err)
			}
			cl.holds[res.Name], cl.versions[res.Name] = m.Endpoints[0].Priority, res.Version
		}
		for _, n := range got.RemovedResources {
			delete(cl.holds, n)
			delete(cl.versions, n)
		}
		cl.sub.held = r.(Answer).Held()
	default:
		return false
	}
	cl.cancel = nil
	return true
}
