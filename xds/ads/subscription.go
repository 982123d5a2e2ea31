package ads

import (
	"slices"

	"github.com/tollgate-gw/tollgate/xds/rescache"
)

// subscription is one stream's subscription to one type, as the caches read it
// (rescache.Subscription): the names are a shared nameSet; held is what the stream holds,
// as the last answer sent said (see sotw's and delta's send) and the protocol changes it
// (a name unsubscribed from is no longer held). It follows the protocol's rules on
// wildcards, legacy and explicit
// (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#how-the-client-specifies-what-resources-to-return).
type subscription struct {
	set      *nameSet
	wildcard bool
	// legacy: the stream's first request named nothing, and none since has named
	// anything: a wildcard subscription until one does.
	legacy bool
	held   rescache.Held
}

func (s *subscription) SubscribedResources() map[string]struct{} { return s.set.m }
func (s *subscription) IsWildcard() bool                         { return s.wildcard }
func (s *subscription) Held() rescache.Held                      { return s.held }

// Fingerprint is the set's (see rescache.Fingerprint).
func (s *subscription) Fingerprint() uint64 { return s.set.fp }

const explicitWildcard = "*"

func newSotwSubscription(sets *sets, names []string) *subscription {
	s := &subscription{set: empty, legacy: len(names) == 0, wildcard: len(names) == 0}
	s.update(sets, names)
	return s
}

// update takes a state-of-the-world request's names: the whole subscription. The same
// names as before (every ACK restates them) cost a comparison of shared strings.
func (s *subscription) update(sets *sets, names []string) {
	if s.legacy {
		if len(names) == 0 {
			return
		}
		s.legacy = false
	}
	if !s.wildcard && slices.Equal(names, s.set.list) {
		return
	}
	wildcard := slices.Contains(names, explicitWildcard)
	if wildcard {
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == explicitWildcard })
	}
	if s.wildcard == wildcard && slices.Equal(names, s.set.list) {
		return
	}
	next := sets.ofList(names)
	sets.release(s.set)
	s.set, s.wildcard = next, wildcard
	s.forget()
}

// forget drops from what a state-of-the-world stream holds the names it no longer
// subscribes to: subscribing again sends them again.
func (s *subscription) forget() {
	h := &s.held
	if h.Names == nil || s.wildcard {
		return
	}
	switch {
	case subsetOf(s.set.m, h.Names): // names dropped only: it holds all it subscribes to
		h.Names, h.Set = s.set.m, s.set.fp
	case subsetOf(h.Names, s.set.m): // names added only: it holds what it held
	default:
		kept := make(map[string]struct{}, min(len(h.Names), len(s.set.m)))
		for name := range h.Names {
			if _, ok := s.set.m[name]; ok {
				kept[name] = struct{}{}
			}
		}
		h.Names, h.Set = kept, rescache.FingerprintOf(kept)
	}
}

// subsetOf reports whether every name of a is in b.
func subsetOf(a, b map[string]struct{}) bool {
	if len(a) > len(b) {
		return false
	}
	for name := range a {
		if _, ok := b[name]; !ok {
			return false
		}
	}
	return true
}

func newDeltaSubscription(sets *sets, subscribe, unsubscribe []string, initial map[string]string) *subscription {
	s := &subscription{set: empty, legacy: len(subscribe) == 0, wildcard: len(subscribe) == 0, held: rescache.Held{Versions: initial}}
	s.change(sets, subscribe, unsubscribe)
	return s
}

// change takes a delta request's changes to the subscription. An ACK changes nothing and
// costs nothing; a change makes the stream's new set once (shared again if another stream
// has it).
func (s *subscription) change(sets *sets, subscribe, unsubscribe []string) {
	if s.legacy && len(subscribe) > 0 {
		s.legacy = false
		// A legacy wildcard stream that subscribes by name stays wildcard until it
		// unsubscribes from "*".
	}
	if len(subscribe) == 0 && len(unsubscribe) == 0 {
		return
	}
	if s.set == empty && len(unsubscribe) == 0 && !slices.Contains(subscribe, explicitWildcard) {
		// A stream's first names (a thousand clusters' endpoints, the same for every
		// Envoy of a group): found by the list, without a map of its own.
		s.set = sets.ofList(subscribe)
		return
	}
	e := setEdit{from: s.set.m}
	for _, name := range subscribe {
		if name == explicitWildcard {
			s.wildcard = true
		} else {
			e.add(name)
		}
	}
	for _, name := range unsubscribe {
		switch {
		case name == explicitWildcard:
			s.wildcard = false
		case e.remove(name) && s.wildcard:
			// Still covered by the wildcard: the protocol wants it sent again (or
			// reported removed).
			s.resend(name)
		default:
			delete(s.held.Versions, name)
		}
	}
	if e.m == nil {
		return
	}
	next := sets.ofMap(e.m)
	sets.release(s.set)
	s.set = next
}

// resend notes that the stream no longer holds name, so a cache sends it again.
func (s *subscription) resend(name string) {
	if s.held.Versions == nil {
		s.held.Versions = map[string]string{}
	}
	s.held.Versions[name] = ""
}

// setEdit is a change to a shared set of names: the set is copied at the first change.
type setEdit struct {
	from map[string]struct{}
	m    map[string]struct{} // the changed copy, once there is a change
}

func (e *setEdit) edit() map[string]struct{} {
	if e.m == nil {
		e.m = make(map[string]struct{}, len(e.from)+1)
		for n := range e.from {
			e.m[n] = struct{}{}
		}
	}
	return e.m
}

func (e *setEdit) has(name string) bool {
	if e.m != nil {
		_, ok := e.m[name]
		return ok
	}
	_, ok := e.from[name]
	return ok
}

func (e *setEdit) add(name string) {
	if !e.has(name) {
		e.edit()[name] = struct{}{}
	}
}

// remove reports whether name was in the set.
func (e *setEdit) remove(name string) bool {
	if !e.has(name) {
		return false
	}
	delete(e.edit(), name)
	return true
}

// end releases the subscription's set when its stream ends.
func (s *subscription) end(sets *sets) {
	sets.release(s.set)
	s.set = empty
}
