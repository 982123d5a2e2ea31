// Package rescache serves one gateway group's resources of one type to xDS watches, state of
// the world and delta, for any number of streams at the cost of one: each resource is
// marshalled once when it is set, and every response shares those bytes (and, for the
// types whose state-of-the-world responses carry every resource, one list of them per
// version); a change costs each open watch the changed names, not its subscription; a
// resource that did not change is never resent. It implements go-control-plane's
// cache.Cache (the stream servers of xds/ads serve it; the library's own would too). Its
// contract is in rescache_test.go.
package rescache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
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
// restarted or another replica) holds what the cache holds and is sent nothing. A delta
// resource's version is the hash of its bytes, the same on every replica.
//
// Returned resources: the stream server (xds/ads, as go-control-plane's) hands a stream's
// subscription to the cache on each watch and takes the response's map of returned
// resources back, on the stream's own goroutine, after it sends the response. The map a
// response returns is the stream's current map updated in place at that moment — never
// while a watch is open, since the stream cancels a watch before it changes the
// subscription — so a change costs a stream what changed, not one copy of every name it
// knows.
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
	// sets are the subscriptions by-name answers were made for, by fingerprint, shared by
	// every stream that subscribes to the same names; setOrder is oldest first.
	sets     map[uint64]map[string]struct{}
	setOrder []uint64
	watches  map[uint64]*watch
	deltas   map[uint64]*deltaWatch
	nextID   uint64
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

// syncedKey is the key, in a delta stream's returned resources, of the change count its
// last response brought it up to (no resource is named so: names are not empty and do not
// start with a NUL). The stream servers keep keys they do not know.
const syncedKey = "\x00rescache.synced"

// recentChanges keeps this many changes' names.
const recentChanges = 64

type watch struct {
	req *cachev3.Request
	sub cachev3.Subscription
	ch  chan cachev3.Response
}

type deltaWatch struct {
	req *cachev3.DeltaRequest
	sub cachev3.Subscription
	ch  chan cachev3.DeltaResponse
}

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
	held := c.res
	opts := proto.MarshalOptions{Deterministic: true}
	fresh := make(map[string]*entry, len(all))
	for _, r := range all {
		name := cachev3.GetResourceName(r)
		if _, dup := fresh[name]; dup {
			return errors.New("rescache: two resources named " + strconv.Quote(name))
		}
		if old := held[name]; old != nil && old.msg == r {
			fresh[name] = old // the very message held: nothing to marshal or compare
			continue
		}
		b, err := opts.Marshal(r)
		if err != nil {
			return err
		}
		fresh[name] = &entry{name: name, msg: r, value: b}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var changed []*entry
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
	var removed []string
	for name := range c.res {
		if _, ok := fresh[name]; !ok {
			removed = append(removed, name)
		}
	}
	if len(changed) == 0 && len(removed) == 0 && c.n > 0 {
		return nil
	}
	c.n++
	var added []string
	for _, e := range changed {
		if _, had := c.res[e.name]; !had {
			added = append(added, e.name)
		}
	}
	c.names.count(added, 1)
	c.names.count(removed, -1)
	for _, e := range changed {
		sum := sha256.Sum256(e.value)
		e.hash = hex.EncodeToString(sum[:8])
		e.changed = c.n
		c.frame(e)
		c.res[e.name] = e
	}
	for _, name := range removed {
		delete(c.res, name)
	}
	c.lastChange = c.n
	names := make([]string, 0, len(changed)+len(removed))
	for _, e := range changed {
		names = append(names, e.name)
	}
	names = append(names, removed...)
	if len(c.recent) == recentChanges {
		c.recent = append(c.recent[:0], c.recent[1:]...)
	}
	c.recent = append(c.recent, changeLog{c.n, names})
	c.refresh()
	c.notify(changed, removed)
	return nil
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

// subscribed reports whether a subscription covers name.
func subscribed(sub cachev3.Subscription, name string) bool {
	if sub.IsWildcard() {
		return true
	}
	_, ok := sub.SubscribedResources()[name]
	return ok
}

// notify answers the open watches a change concerns; c.mu is held.
func (c *Cache) notify(changed []*entry, removed []string) {
	for id, w := range c.watches {
		var send []*entry
		concerned := false
		for _, e := range changed {
			if subscribed(w.sub, e.name) {
				concerned = true
				if !c.full {
					send = append(send, e)
				}
			}
		}
		if c.full && !concerned {
			returned := w.sub.ReturnedResources()
			for _, name := range removed {
				if _, had := returned[name]; had || w.sub.IsWildcard() {
					concerned = true
					break
				}
			}
		}
		if !concerned {
			continue
		}
		delete(c.watches, id)
		w.ch <- c.answer(w, send)
	}
	for id, w := range c.deltas {
		var send []*entry
		for _, e := range changed {
			if subscribed(w.sub, e.name) {
				send = append(send, e)
			}
		}
		var gone []string
		returned := w.sub.ReturnedResources()
		for _, name := range removed {
			if _, had := returned[name]; had || subscribed(w.sub, name) {
				gone = append(gone, name)
			}
		}
		if len(send) == 0 && len(gone) == 0 {
			continue
		}
		delete(c.deltas, id)
		w.ch <- c.deltaAnswer(w, send, gone)
	}
}

// CreateWatch answers a state-of-the-world request at once when the client lacks something
// — everything it subscribes to when its version tells nothing, else what changed since
// its version and what it newly subscribed to (for listeners and clusters: all it
// subscribes to) — or keeps the watch until a change concerns it.
func (c *Cache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, errors.New("rescache: a watch for " + req.GetTypeUrl() + " on a cache of " + c.typeURL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &watch{req: req, sub: sub, ch: ch}
	if c.n > 0 {
		known, ok := c.known(req.GetVersionInfo())
		if c.full && c.fullLacks(sub, known, ok) {
			ch <- c.answer(w, nil)
			return func() {}, nil
		}
		if !c.full {
			if send := c.lacking(sub, known, ok); len(send) > 0 || !ok {
				ch <- c.answer(w, send)
				return func() {}, nil
			}
		}
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

// fullLacks reports whether a client of a full type lacks something: its version is not
// ours or is older than the last change, or it subscribes to a name it was not sent, or it
// holds one that is gone. The stream servers keep a stream's returned names
// within its subscription, so equal sizes mean no new name; c.mu is held.
func (c *Cache) fullLacks(sub cachev3.Subscription, known uint64, ok bool) bool {
	if !ok || c.lastChange > known {
		return true
	}
	if sub.IsWildcard() {
		return false // it was sent everything at known, and nothing changed since
	}
	returned := sub.ReturnedResources()
	if len(sub.SubscribedResources()) != len(returned) {
		for name := range sub.SubscribedResources() {
			if _, had := returned[name]; !had && c.res[name] != nil {
				return true
			}
		}
	}
	for name := range returned {
		if c.res[name] == nil {
			return true
		}
	}
	return false
}

// lacking is what a client of a by-name type lacks: everything it subscribes to when its
// version is not ours, else what changed since its version and what it newly subscribed
// to. A client a few changes behind with no new names costs the names changed since, not
// its subscription; c.mu is held.
func (c *Cache) lacking(sub cachev3.Subscription, known uint64, ok bool) []*entry {
	var send []*entry
	returned := sub.ReturnedResources()
	logged := known == c.n || len(c.recent) > 0 && c.recent[0].n <= known+1
	if ok && !sub.IsWildcard() {
		if was, found := markOf(returned); found {
			// It holds, as of its version, every name of the set it was last answered for
			// (see answer): it lacks what changed since and what that set did not hold.
			now := fingerprint(sub)
			old, kept := c.sets[was]
			switch {
			case now == was && logged:
				for _, l := range c.recent {
					if l.n <= known {
						continue
					}
					for _, name := range l.names {
						if e := c.res[name]; e != nil && e.changed == l.n && subscribed(sub, name) {
							send = append(send, e)
						}
					}
				}
				return send
			case now == was || kept:
				for name := range sub.SubscribedResources() {
					e := c.res[name]
					if e == nil {
						continue
					}
					if _, had := old[name]; e.changed > known || now != was && !had {
						send = append(send, e)
					}
				}
				return send
			}
		}
	}
	consider := func(e *entry) {
		if _, had := returned[e.name]; !ok || e.changed > known || !had {
			send = append(send, e)
		}
	}
	if sub.IsWildcard() {
		for _, e := range c.res {
			consider(e)
		}
	} else {
		for name := range sub.SubscribedResources() {
			if e := c.res[name]; e != nil {
				consider(e)
			}
		}
	}
	return send
}

// markPrefix starts a subscription mark in a by-name stream's returned map: no version
// this cache makes starts with a NUL.
const markPrefix = "\x00"

// markCopies is how many names a mark is kept under.
const markCopies = 3

// markOf finds the subscription mark in a returned map (of one entry, or a few when the
// stream was answered before marks).
func markOf(returned map[string]string) (uint64, bool) {
	for _, v := range returned {
		if rest, ok := strings.CutPrefix(v, markPrefix); ok {
			fp, err := strconv.ParseUint(rest, 16, 64)
			return fp, err == nil
		}
	}
	return 0, false
}

var fingerprintSeed = maphash.MakeSeed()

// Fingerprint identifies a set of distinct names, whatever their order: the same names give
// the same value within a process. A stream handler that keeps subscriptions shared by
// fingerprint uses it, and gives it to the cache through a subscription's Fingerprint
// method so that it is not computed again for each watch.
func Fingerprint(names iter.Seq[string]) uint64 {
	var h, n uint64
	for name := range names {
		h ^= mix(name)
		n++
	}
	return h ^ n*0x9e3779b97f4a7c15
}

func mix(name string) uint64 {
	x := maphash.String(fingerprintSeed, name)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	return x ^ x>>29
}

// fingerprinted is a subscription that knows its fingerprint.
type fingerprinted interface{ Fingerprint() uint64 }

// fingerprint is the fingerprint of the names a subscription subscribes to.
func fingerprint(sub cachev3.Subscription) uint64 {
	if f, ok := sub.(fingerprinted); ok {
		return f.Fingerprint()
	}
	return Fingerprint(maps.Keys(sub.SubscribedResources()))
}

// keptSets is how many distinct subscriptions a cache remembers.
const keptSets = 32

// keepSet remembers a subscription by its fingerprint. The map is the server's own for that
// request, which it never changes (a state-of-the-world request makes a new one); c.mu is
// held.
func (c *Cache) keepSet(fp uint64, names map[string]struct{}) {
	if _, ok := c.sets[fp]; ok {
		return
	}
	if c.sets == nil {
		c.sets = map[uint64]map[string]struct{}{}
	}
	if len(c.setOrder) == keptSets {
		delete(c.sets, c.setOrder[0])
		c.setOrder = append(c.setOrder[:0], c.setOrder[1:]...)
	}
	c.sets[fp] = names
	c.setOrder = append(c.setOrder, fp)
}

// answer is the state-of-the-world response to w: send, or for a full type every
// subscribed resource; c.mu is held.
func (c *Cache) answer(w *watch, send []*entry) *response {
	r := &response{req: w.req, sub: w.sub, version: c.version(), typeURL: c.typeURL}
	if c.full {
		r.replace = true
		send = send[:0]
		if w.sub.IsWildcard() {
			for _, e := range c.res {
				send = append(send, e)
			}
		} else {
			for name := range w.sub.SubscribedResources() {
				if e := c.res[name]; e != nil {
					send = append(send, e)
				}
			}
		}
	}
	switch {
	case c.full && w.sub.IsWildcard():
		// Sent everything every time, so which names it holds is never asked: its
		// returned map stays empty (a thousand names less per stream).
	case !c.full && !w.sub.IsWildcard():
		// By name: the stream holds what changed up to this version of every name it
		// subscribes to now. Its returned map keeps only a mark of that set — under a few
		// of its names, which the server keeps while they are subscribed — and the set is
		// kept here once for all the streams that subscribe to the same names, so a
		// later request with new names is sent those (lacking). A stream that drops all
		// the names its mark is under is sent everything it subscribes to, once.
		r.replace = true
		subscribedNow := w.sub.SubscribedResources()
		fp := fingerprint(w.sub)
		c.keepSet(fp, subscribedNow)
		r.mark = markPrefix + strconv.FormatUint(fp, 16)
		for name := range subscribedNow {
			if len(r.markNames) == markCopies {
				break
			}
			r.markNames = append(r.markNames, name)
		}
	default:
		r.names = make([]string, len(send))
		for i, e := range send {
			r.names[i] = e.name
		}
	}
	r.resources = c.join(send, false)
	return r
}

// CreateDeltaWatch answers a delta request at once with the subscribed resources whose
// version the client does not hold and the ones it holds that are gone (or, to a new
// wildcard subscription, with what there is, even nothing), or keeps the watch until a
// change concerns it.
func (c *Cache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub cachev3.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, errors.New("rescache: a watch for " + req.GetTypeUrl() + " on a cache of " + c.typeURL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &deltaWatch{req: req, sub: sub, ch: ch}
	if c.n > 0 {
		returned := sub.ReturnedResources()
		var send []*entry
		var gone []string
		if since, ok := c.deltaSynced(req, returned); ok {
			// A stream up to date as of since (see deltaResponse): what changed since, what
			// it subscribes to now, and what the server marked for it can differ.
			sent := map[string]bool{}
			take := func(e *entry) {
				if !sent[e.name] {
					sent[e.name] = true
					send = append(send, e)
				}
			}
			drop := func(name string) {
				if !slices.Contains(gone, name) {
					gone = append(gone, name)
				}
			}
			for _, l := range c.recent {
				if l.n <= since {
					continue
				}
				for _, name := range l.names {
					switch e := c.res[name]; {
					case e != nil && e.changed == l.n && subscribed(sub, name):
						take(e)
					case e == nil && subscribed(sub, name):
						drop(name) // one it never had is ignored by it
					}
				}
			}
			for _, name := range req.GetResourceNamesSubscribe() {
				if e := c.res[name]; e != nil {
					take(e)
				}
			}
			// The server keeps a name here with version "" for a resource the stream must
			// be sent again (a wildcard stream unsubscribing from it by name).
			for name, v := range returned {
				if name == syncedKey {
					continue
				}
				if e := c.res[name]; e == nil {
					drop(name)
				} else if v != e.hash {
					take(e)
				}
			}
		} else {
			send, gone = c.deltaLacking(sub, returned)
		}
		_, synced := returned[syncedKey]
		first := sub.IsWildcard() && req.GetResponseNonce() == "" && !synced && len(returned) == 0
		if len(send) > 0 || len(gone) > 0 || first {
			ch <- c.deltaAnswer(w, send, gone)
			return func() {}, nil
		}
	}
	c.nextID++
	id := c.nextID
	c.deltas[id] = w
	return func() {
		c.mu.Lock()
		delete(c.deltas, id)
		c.mu.Unlock()
	}, nil
}

// deltaSynced is the change count a delta stream is up to date as of, when its request
// carries no initial versions and the recent changes since are all kept; c.mu is held.
func (c *Cache) deltaSynced(req *cachev3.DeltaRequest, returned map[string]string) (uint64, bool) {
	if len(req.GetInitialResourceVersions()) > 0 {
		return 0, false
	}
	rest, mine := strings.CutPrefix(returned[syncedKey], c.prefix)
	if !mine {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || n > c.n || (n < c.n && (len(c.recent) == 0 || c.recent[0].n > n+1)) {
		return 0, false
	}
	return n, true
}

// deltaLacking compares a delta stream's whole subscription with what is held: the
// resources whose version it does not hold and those it holds that are gone; c.mu is held.
func (c *Cache) deltaLacking(sub cachev3.Subscription, returned map[string]string) (send []*entry, gone []string) {
	if sub.IsWildcard() {
		for _, e := range c.res {
			if v, had := returned[e.name]; !had || v != e.hash {
				send = append(send, e)
			}
		}
	}
	for name := range sub.SubscribedResources() {
		e := c.res[name]
		v, had := returned[name]
		switch {
		case e != nil && (!had || v != e.hash) && !sub.IsWildcard():
			send = append(send, e)
		case e == nil && had:
			gone = append(gone, name)
		}
	}
	if sub.IsWildcard() {
		for name := range returned {
			if name != syncedKey && c.res[name] == nil && !slices.Contains(gone, name) {
				gone = append(gone, name)
			}
		}
	}
	return send, gone
}

func (c *Cache) deltaAnswer(w *deltaWatch, send []*entry, gone []string) *deltaResponse {
	r := &deltaResponse{req: w.req, sub: w.sub, version: c.prefix + strconv.FormatUint(c.n, 10), typeURL: c.typeURL, removed: gone}
	r.synced = r.version
	r.resources = c.join(send, true)
	return r
}

// Fetch (REST xDS) is not served.
func (c *Cache) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errors.New("rescache: fetch is not supported")
}

// response is a state-of-the-world answer. Its resources are already framed as the
// message's resources field and go in as unknown fields: on the wire the message is the
// same, the bytes are shared by every stream, and the server's codec (xds.ServerOptions)
// writes them without copying.
type response struct {
	req       *cachev3.Request
	sub       cachev3.Subscription
	version   string
	typeURL   string
	resources []byte
	names     []string
	replace   bool     // the names are all the client holds (full types)
	markNames []string // by-name types: the returned map is {each of markNames: mark} (see answer)
	mark      string

	returnedOnce sync.Once
	returned     map[string]string
}

// GetDiscoveryResponse is a new message each time (the server sets its nonce).
func (r *response) GetDiscoveryResponse() (*discoveryv3.DiscoveryResponse, error) {
	out := &discoveryv3.DiscoveryResponse{VersionInfo: r.version, TypeUrl: r.typeURL}
	if len(r.resources) > 0 {
		out.ProtoReflect().SetUnknown(r.resources)
	}
	return out, nil
}

// GetReturnedResources is called by the stream that sends the response, on its goroutine,
// once no watch of it is open: the stream's map is updated in place (see Cache).
func (r *response) GetReturnedResources() map[string]string {
	r.returnedOnce.Do(func() {
		m := r.sub.ReturnedResources()
		if m == nil {
			m = make(map[string]string, len(r.names))
		}
		if r.replace {
			clear(m)
		}
		for _, name := range r.names {
			m[name] = r.version
		}
		for _, name := range r.markNames {
			m[name] = r.mark
		}
		r.returned = m
	})
	return r.returned
}

func (r *response) GetRequest() *discoveryv3.DiscoveryRequest { return r.req }
func (r *response) GetVersion() (string, error)               { return r.version, nil }
func (r *response) GetResponseVersion() string                { return r.version }
func (r *response) GetContext() context.Context               { return context.Background() }

// deltaResponse is a delta answer, framed and shared the same way.
type deltaResponse struct {
	req       *cachev3.DeltaRequest
	sub       cachev3.Subscription
	version   string
	typeURL   string
	resources []byte
	removed   []string
	synced    string // the change count the stream is up to date as of once it sends this

	returnedOnce sync.Once
	returned     map[string]string
}

func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discoveryv3.DeltaDiscoveryResponse, error) {
	out := &discoveryv3.DeltaDiscoveryResponse{SystemVersionInfo: r.version, TypeUrl: r.typeURL, RemovedResources: r.removed}
	if len(r.resources) > 0 {
		out.ProtoReflect().SetUnknown(r.resources)
	}
	return out, nil
}

// GetReturnedResources updates the stream's map in place, as response's does.
func (r *deltaResponse) GetReturnedResources() map[string]string {
	r.returnedOnce.Do(func() {
		m := r.sub.ReturnedResources()
		if m == nil {
			m = make(map[string]string, 1)
		}
		// Up to date as of synced with everything it subscribes to: that is all a later
		// answer needs — it sends what changed since, what the stream newly subscribes to
		// (a delta request names those), and removals of what was removed since (one the
		// stream never had is ignored by it) — so no name is kept: a thousand less per
		// stream for each type an Envoy holds a thousand of.
		clear(m)
		m[syncedKey] = r.synced
		r.returned = m
	})
	return r.returned
}

func (r *deltaResponse) GetNextVersionMap() map[string]string                { return r.GetReturnedResources() }
func (r *deltaResponse) GetDeltaRequest() *discoveryv3.DeltaDiscoveryRequest { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)                   { return r.version, nil }
func (r *deltaResponse) GetResponseVersion() string                          { return r.version }
func (r *deltaResponse) GetContext() context.Context                         { return context.Background() }
