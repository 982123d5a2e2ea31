// Package rescache serves one gateway group's resources of one type to xDS watches, state of
// the world and delta, for any number of streams at the cost of one: each resource is
// marshalled once when it is set, and every response shares those bytes (and, for the
// types whose state-of-the-world responses carry every resource, one list of them per
// version); a change costs each open watch the changed names, not its subscription; a
// resource that did not change is never resent.
//
// The files follow its jobs: this one holds and frames the resources (Set); held.go is
// what a stream holds and the one answer to what it lacks; sotw.go and delta.go open and
// answer watches of each protocol; response.go is the answers as the stream server sends
// them. The stream servers are xds/ads's: they keep each stream's Subscription, with what
// it holds (Held), and replace that with each answer's once it is sent.
package rescache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Cache holds the resources of one type for one group of clients.
//
// Versions: a state-of-the-world response's version is "<prefix><n>.<content>": n counts
// this cache's changes (the prefix is distinct per process), content is a hash of what the
// cache holds. A client presenting a version of this process is known to hold what changed
// up to n; a client presenting another process's version with the same content (a
// restarted or another replica) holds what the cache holds. A delta resource's version is
// the hash of its bytes, the same on every replica.
type Cache struct {
	typeURL string
	names   *Names // the names held, shared with the request decoder
	// full: state-of-the-world responses carry every subscribed resource (listeners,
	// clusters and route scopes: one left out is removed); otherwise only what changed.
	full   bool
	prefix string

	setMu   sync.Mutex
	mu      sync.Mutex
	n       uint64 // changes so far; 0: nothing set yet
	content string // hash of what is held
	res     map[string]*entry
	// everything is every resource sorted by name, framed for state-of-the-world and
	// for delta responses: built at most once per change, when a response needs it.
	everything, deltaEverything []byte
	lastChange                  uint64 // n of the last change that a full response must reflect
	// recent are the names changed by the last changes, oldest first: a watch of a
	// client that is a few changes behind looks at those instead of its subscription.
	recent []changeLog
	// removedAt is, by name, the change that last removed a resource not held now, for
	// streams further behind than recent; forgotten is the change up to which removals may
	// have been dropped from it (it is emptied when it reaches maxRemoved names).
	removedAt map[string]uint64
	forgotten uint64
	watches   map[uint64]*watch
	deltas    map[uint64]*deltaWatch
	nextID    uint64
}

// entry is a resource as it is sent: marshalled once, with the framing of a
// DiscoveryResponse's and a DeltaDiscoveryResponse's resources field around it.
type entry struct {
	name    string
	msg     types.Resource
	value   []byte // the resource's bytes (within wire)
	wire    []byte // DiscoveryResponse field 2: Any{type_url, value}
	dwire   []byte // DeltaDiscoveryResponse field 2: Resource{version, resource: Any, name}
	hash    string // content version
	changed uint64 // n at which it last changed
}

type changeLog struct {
	n     uint64
	names []string // changed or removed
}

// recentChanges keeps this many changes' names.
const recentChanges = 64

// maxRemoved bounds removedAt: far more names than a gateway's APIs come and go with.
const maxRemoved = 1 << 16

// New makes an empty cache for resources of typeURL; prefix starts its state-of-the-world
// versions and must differ between processes. names (may be nil) is told which names the
// cache holds.
func New(typeURL, prefix string, names *Names) *Cache {
	return &Cache{typeURL: typeURL, prefix: prefix, names: names,
		full: typeURL == resourcev3.ListenerType || typeURL == resourcev3.ClusterType || typeURL == resourcev3.ScopedRouteType,
		res:  map[string]*entry{}, watches: map[uint64]*watch{}, deltas: map[uint64]*deltaWatch{}}
}

// Set makes the cache hold exactly all: a resource whose bytes differ from what is held
// is updated, one that is held and not in all is removed, and the watches the change
// concerns are answered. Setting what is held changes nothing and sends nothing. The
// first Set, even of nothing, opens the cache: until then watches wait.
func (c *Cache) Set(all []types.Resource) error {
	// Sets are serialised; only Set changes c.res, so it may be read here without c.mu
	// while the resources are marshalled.
	c.setMu.Lock()
	defer c.setMu.Unlock()
	fresh, err := c.marshal(all)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	changed, removed := c.diff(fresh)
	if len(changed) == 0 && len(removed) == 0 && c.n > 0 {
		return nil
	}
	c.commit(changed, removed)
	c.notify()
	return nil
}

// marshal is every resource of all as an entry, marshalled unless it is the very message
// held.
func (c *Cache) marshal(all []types.Resource) (map[string]*entry, error) {
	opts := proto.MarshalOptions{Deterministic: true}
	fresh := make(map[string]*entry, len(all))
	for _, r := range all {
		name := cachev3.GetResourceName(r)
		if _, dup := fresh[name]; dup {
			return nil, errors.New("rescache: two resources named " + strconv.Quote(name))
		}
		if old := c.res[name]; old != nil && old.msg == r {
			fresh[name] = old // nothing to marshal or compare
			continue
		}
		b, err := opts.Marshal(r)
		if err != nil {
			return nil, err
		}
		fresh[name] = &entry{name: name, msg: r, value: b}
	}
	return fresh, nil
}

// diff is what fresh changes of what is held; c.mu is held.
func (c *Cache) diff(fresh map[string]*entry) (changed []*entry, removed []string) {
	for name, e := range fresh {
		if old, ok := c.res[name]; ok && (old == e || string(old.value) == string(e.value)) {
			// Unchanged. The held entry takes the message it was given this time, which
			// the next Set is most likely given again (an endpoint change hands back every
			// message of the last full build): that Set then marshals none of them.
			old.msg = e.msg
			continue
		}
		changed = append(changed, e)
	}
	for name := range c.res {
		if _, ok := fresh[name]; !ok {
			removed = append(removed, name)
		}
	}
	return changed, removed
}

// commit makes a change: the next change count, the entries framed, the change logged;
// c.mu is held.
func (c *Cache) commit(changed []*entry, removed []string) {
	c.n++
	var added []string
	for _, e := range changed {
		if _, had := c.res[e.name]; !had {
			added = append(added, e.name)
		}
	}
	c.names.count(added, 1)
	c.names.count(removed, -1)
	c.tombstones(added, removed)
	names := make([]string, 0, len(changed)+len(removed))
	for _, e := range changed {
		sum := sha256.Sum256(e.value)
		e.hash = hex.EncodeToString(sum[:8])
		e.changed = c.n
		c.frame(e)
		c.res[e.name] = e
		names = append(names, e.name)
	}
	for _, name := range removed {
		delete(c.res, name)
	}
	c.lastChange = c.n
	names = append(names, removed...)
	if len(c.recent) == recentChanges {
		c.recent = append(c.recent[:0], c.recent[1:]...)
	}
	c.recent = append(c.recent, changeLog{c.n, names})
	c.refresh()
}

// tombstones notes the names removed by change c.n and forgets those added again; c.mu
// is held.
func (c *Cache) tombstones(added, removed []string) {
	for _, name := range added {
		delete(c.removedAt, name)
	}
	if len(removed) == 0 {
		return
	}
	switch {
	case c.removedAt == nil:
		c.removedAt = map[string]uint64{}
	case len(c.removedAt)+len(removed) > maxRemoved:
		c.removedAt, c.forgotten = map[string]uint64{}, c.n-1
	}
	for _, name := range removed {
		c.removedAt[name] = c.n
	}
}

// frame encodes e as a response's resources field; e.value then points into it.
func (c *Cache) frame(e *entry) {
	anyLen := protowire.SizeTag(1) + protowire.SizeBytes(len(c.typeURL)) + protowire.SizeTag(2) + protowire.SizeBytes(len(e.value))
	w := make([]byte, 0, protowire.SizeTag(2)+protowire.SizeBytes(anyLen))
	w = protowire.AppendTag(w, 2, protowire.BytesType)
	w = protowire.AppendVarint(w, uint64(anyLen))
	w = protowire.AppendTag(w, 1, protowire.BytesType)
	w = protowire.AppendString(w, c.typeURL)
	w = protowire.AppendTag(w, 2, protowire.BytesType)
	w = protowire.AppendVarint(w, uint64(len(e.value)))
	start := len(w)
	w = append(w, e.value...)
	e.value = w[start:]
	e.wire = w
	any := w[len(w)-anyLen:]
	resLen := protowire.SizeTag(1) + protowire.SizeBytes(len(e.hash)) + protowire.SizeTag(2) + protowire.SizeBytes(anyLen) + protowire.SizeTag(3) + protowire.SizeBytes(len(e.name))
	d := make([]byte, 0, protowire.SizeTag(2)+protowire.SizeBytes(resLen))
	d = protowire.AppendTag(d, 2, protowire.BytesType)
	d = protowire.AppendVarint(d, uint64(resLen))
	d = protowire.AppendTag(d, 1, protowire.BytesType)
	d = protowire.AppendString(d, e.hash)
	d = protowire.AppendTag(d, 2, protowire.BytesType)
	d = protowire.AppendBytes(d, any)
	d = protowire.AppendTag(d, 3, protowire.BytesType)
	d = protowire.AppendString(d, e.name)
	e.dwire = d
}

// refresh recomputes the content hash after a change; c.mu is held.
func (c *Cache) refresh() {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(c.res)) {
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write([]byte(c.res[name].hash))
	}
	c.content = hex.EncodeToString(h.Sum(nil)[:8])
	c.everything, c.deltaEverything = nil, nil
}

// all is every resource framed, sorted by name, made once per change; c.mu is held.
func (c *Cache) all(delta bool) []byte {
	p := &c.everything
	if delta {
		p = &c.deltaEverything
	}
	if *p == nil {
		names := slices.Sorted(maps.Keys(c.res))
		size := 0
		for _, name := range names {
			size += len(c.res[name].wire) + 32
		}
		b := make([]byte, 0, size)
		for _, name := range names {
			if delta {
				b = append(b, c.res[name].dwire...)
			} else {
				b = append(b, c.res[name].wire...)
			}
		}
		*p = b
	}
	return *p
}

// join is the framed resources of es: one shared slice for one resource or for all of
// them, else a new one.
func (c *Cache) join(es []*entry, delta bool) []byte {
	pick := func(e *entry) []byte {
		if delta {
			return e.dwire
		}
		return e.wire
	}
	switch {
	case len(es) == 0:
		return nil
	case len(es) == 1:
		return pick(es[0])
	case len(es) == len(c.res):
		return c.all(delta)
	}
	slices.SortFunc(es, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
	size := 0
	for _, e := range es {
		size += len(pick(e))
	}
	b := make([]byte, 0, size)
	for _, e := range es {
		b = append(b, pick(e)...)
	}
	return b
}

// Resources returns what the cache holds, for tests and tools.
func (c *Cache) Resources() map[string]types.Resource {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]types.Resource, len(c.res))
	for name, e := range c.res {
		out[name] = e.msg
	}
	return out
}

// Version is the state-of-the-world version of what the cache holds ("" before the first
// Set).
func (c *Cache) Version() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		return ""
	}
	return c.version()
}

func (c *Cache) version() string { return c.prefix + strconv.FormatUint(c.n, 10) + "." + c.content }

// known reads a client's version: the change count it has seen everything up to. ok is
// false when it tells nothing (empty, or another process's version of other content).
func (c *Cache) known(v string) (uint64, bool) {
	dot := strings.LastIndexByte(v, '.')
	if dot < 0 {
		return 0, false
	}
	if rest, mine := strings.CutPrefix(v[:dot], c.prefix); mine {
		n, err := strconv.ParseUint(rest, 10, 64)
		if err == nil && n <= c.n {
			return n, true
		}
	}
	if v[dot+1:] == c.content {
		return c.n, true // another process's version of what we hold
	}
	return 0, false
}

// notify answers the open watches a change concerns, and notes that the others are up to
// date with it; c.mu is held.
func (c *Cache) notify() {
	for id, w := range c.watches {
		h := holding{known: true, asOf: w.asOf, all: w.sub.IsWildcard()}
		send, gone := c.lacks(w.sub, h)
		if len(send) == 0 && len(gone) == 0 {
			w.asOf = c.n
			continue
		}
		delete(c.watches, id)
		w.ch <- c.answer(w, send)
	}
	for id, w := range c.deltas {
		h := holding{known: true, asOf: w.asOf, all: w.sub.IsWildcard()}
		send, gone := c.lacks(w.sub, h)
		if len(send) == 0 && len(gone) == 0 {
			w.asOf = c.n
			continue
		}
		delete(c.deltas, id)
		w.ch <- c.deltaAnswer(w, send, gone)
	}
}

// open keeps a watch until a change concerns it; cancel forgets it.
func open[W any](c *Cache, m map[uint64]W, w W) func() {
	c.nextID++
	id := c.nextID
	m[id] = w
	return func() {
		c.mu.Lock()
		delete(m, id)
		c.mu.Unlock()
	}
}
