package rescache

import (
	"errors"
	"hash/maphash"
	"iter"
	"maps"
)

// Subscription is one stream's subscription to the cache's type, as the stream server
// keeps it: the names it subscribes to, whether it is a wildcard subscription, and what
// the stream holds.
type Subscription interface {
	IsWildcard() bool
	// SubscribedResources are the names, which the cache only reads.
	SubscribedResources() map[string]struct{}
	// Fingerprint is the names' (see Fingerprint).
	Fingerprint() uint64
	// Held is what the stream holds: the Held of the last answer it was sent, changed by
	// the stream server as the protocol says (see Held).
	Held() Held
}

// Held is what a stream holds of a cache's resources. Every answer says what the stream
// holds once it is sent (Answer.Held); the stream server keeps that with the subscription
// and changes it only where the protocol says the client drops what it held: names a
// state-of-the-world client no longer subscribes to leave Names (a later subscription
// sends them again); a delta client's initial versions and the names a wildcard delta
// client unsubscribes from by name go to Versions.
type Held struct {
	// AsOf is the cache's change count as of which the stream holds every resource of
	// Names — of every name when Wildcard — as it was then; 0: not known.
	AsOf     uint64
	Wildcard bool
	// Names are the names the stream held all of at AsOf (state of the world only; a delta
	// request names what it newly subscribes to), with their Fingerprint as Set. The map
	// is shared and never changed.
	Names map[string]struct{}
	Set   uint64
	// Versions are resources the stream holds at versions of their own (a delta
	// resource's version): "" for one it must be sent again.
	Versions map[string]string
}

// holding is what a watch's stream holds, as far as the cache can tell.
type holding struct {
	known bool   // asOf is meaningful: it holds, as of asOf,
	asOf  uint64 //
	all   bool   // every resource (a wildcard stream), else
	// the subscribed names except fresh (or, with freshAll, none of them).
	fresh    []string
	freshAll bool
	versions map[string]string // resources held at versions of their own
}

// lacks is the one answer to what a stream lacks: the subscribed resources it does not
// hold as they are now, and the names it holds (or subscribes to) that are gone. A stream
// up to date as of a recent change costs the names changed since and its fresh names; one
// further behind, or of unknown state, costs its subscription; c.mu is held.
func (c *Cache) lacks(sub Subscription, h holding) (send []*entry, gone []string) {
	if h.known && c.logged(h.asOf) {
		return c.lacksSince(sub, h)
	}
	g := goneList{}
	consider := func(e *entry) {
		if v, ok := h.versions[e.name]; ok && v == e.hash {
			return // held at this very version
		}
		if h.known && !h.freshAll && e.changed <= h.asOf && (h.all || !containsName(h.fresh, e.name)) {
			return // held as it is
		}
		send = append(send, e)
	}
	c.eachSubscribed(sub, consider)
	if h.known {
		// Behind the recent log: what was removed since, as the tombstones tell it (a
		// client ignores a removal of one it never had). Lost tells when they cannot.
		for name, n := range c.removedAt {
			if n > h.asOf && (subscribed(sub, name) || hasVersion(h.versions, name)) {
				g.add(name)
			}
		}
	}
	for name := range h.versions {
		if c.res[name] == nil {
			g.add(name)
		}
	}
	return send, g.list
}

// ErrResync is CreateDeltaWatch's answer to a delta stream so far behind that what was
// removed since is no longer known: the stream must end, and its client reconnect
// presenting what it holds (the stream servers end it with UNAVAILABLE).
var ErrResync = errors.New("rescache: the stream is too far behind to be told what was removed; reconnect presenting the resources held")

// lost reports whether a stream is behind the recent log and removals after it may have
// been forgotten; c.mu is held.
func (c *Cache) lost(h holding) bool {
	return h.known && !c.logged(h.asOf) && h.asOf < c.forgotten
}

// lacksSince is lacks for a stream up to date as of a change still logged: what changed
// since, what it newly subscribes to, and what the stream server noted it no longer
// holds; c.mu is held.
func (c *Cache) lacksSince(sub Subscription, h holding) (send []*entry, gone []string) {
	g := goneList{}
	send = c.changedSince(sub, h, &g)
	// Sent above: what changed since asOf and is subscribed.
	sentSince := func(e *entry) bool { return e.changed > h.asOf && subscribed(sub, e.name) }
	take := func(e *entry) {
		if !sentSince(e) && !containsEntry(send, e) {
			send = append(send, e)
		}
	}
	switch {
	case h.all:
	case h.freshAll: // distinct by construction: no search of send
		c.eachSubscribed(sub, func(e *entry) {
			if !sentSince(e) {
				send = append(send, e)
			}
		})
	default:
		for _, name := range h.fresh {
			// A name a request subscribes to is sent if the subscription still has it
			// (the same request may unsubscribe from it again).
			if e := c.res[name]; e != nil && subscribed(sub, name) {
				take(e)
			}
		}
	}
	for name, v := range h.versions {
		switch e := c.res[name]; {
		case e == nil:
			g.add(name)
		case v != e.hash:
			take(e)
		}
	}
	return send, g.list
}

// changedSince is what changed after h.asOf that sub subscribes to — each resource once,
// from the log of the change that made it what it is — and, into g, what was removed that
// it subscribes to or holds a version of (one it never had is ignored by a client); c.mu
// is held.
func (c *Cache) changedSince(sub Subscription, h holding, g *goneList) (send []*entry) {
	for _, l := range c.recent {
		if l.n <= h.asOf {
			continue
		}
		for _, name := range l.names {
			switch e := c.res[name]; {
			case e != nil && e.changed == l.n && subscribed(sub, name):
				send = append(send, e)
			case e == nil && (subscribed(sub, name) || hasVersion(h.versions, name)):
				g.add(name)
			}
		}
	}
	return send
}

// eachSubscribed calls f with every resource held that sub subscribes to; c.mu is held.
func (c *Cache) eachSubscribed(sub Subscription, f func(*entry)) {
	if sub.IsWildcard() {
		for _, e := range c.res {
			f(e)
		}
		return
	}
	for name := range sub.SubscribedResources() {
		if e := c.res[name]; e != nil {
			f(e)
		}
	}
}

// logged reports whether every change after asOf is in the recent log; c.mu is held.
func (c *Cache) logged(asOf uint64) bool {
	return asOf <= c.n && (asOf == c.n || len(c.recent) > 0 && c.recent[0].n <= asOf+1)
}

// subscribed reports whether a subscription covers name.
func subscribed(sub Subscription, name string) bool {
	if sub.IsWildcard() {
		return true
	}
	_, ok := sub.SubscribedResources()[name]
	return ok
}

func hasVersion(versions map[string]string, name string) bool {
	_, ok := versions[name]
	return ok
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// containsEntry is for the few entries a fresh name or a version adds: the long lists
// (what changed) are distinct by construction.
func containsEntry(es []*entry, e *entry) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

// goneList is a list of names without repeats (a name removed, added and removed again is
// logged twice).
type goneList struct {
	list []string
	seen map[string]bool
}

func (g *goneList) add(name string) {
	if g.seen == nil {
		if !containsName(g.list, name) {
			g.list = append(g.list, name)
		}
		if len(g.list) > 16 {
			g.seen = map[string]bool{}
			for _, n := range g.list {
				g.seen[n] = true
			}
		}
		return
	}
	if !g.seen[name] {
		g.seen[name] = true
		g.list = append(g.list, name)
	}
}

var fingerprintSeed = maphash.MakeSeed()

// Fingerprint identifies a set of distinct names, whatever their order: the same names give
// the same value within a process. The stream server keeps subscriptions shared by
// fingerprint, and the cache tells an ACK's unchanged names by it.
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

// FingerprintOf is the fingerprint of a set of names.
func FingerprintOf(m map[string]struct{}) uint64 { return Fingerprint(maps.Keys(m)) }
