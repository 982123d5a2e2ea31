package ads

import "slices"

// subscription is one stream's subscription to one type, as the caches read it
// (go-control-plane's cache.Subscription): the names are a shared nameSet; the returned
// map is what the cache keeps for the stream (its responses give it back, see
// sotwStream.send). It follows the protocol's rules on wildcards, legacy and explicit
// (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#how-the-client-specifies-what-resources-to-return).
type subscription struct {
	set      *nameSet
	wildcard bool
	// legacy: the stream's first request named nothing, and none since has named
	// anything: a wildcard subscription until one does.
	legacy   bool
	returned map[string]string
}

func (s *subscription) ReturnedResources() map[string]string     { return s.returned }
func (s *subscription) SubscribedResources() map[string]struct{} { return s.set.m }
func (s *subscription) IsWildcard() bool                         { return s.wildcard }

// Fingerprint is the set's (see rescache.Fingerprint).
func (s *subscription) Fingerprint() uint64 { return s.set.fp }

const explicitWildcard = "*"

func newSotwSubscription(sets *sets, names []string) *subscription {
	s := &subscription{set: empty, legacy: len(names) == 0, wildcard: len(names) == 0, returned: map[string]string{}}
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
	if !wildcard {
		// What it no longer subscribes to is forgotten: subscribing again sends it again.
		for name := range s.returned {
			if _, ok := next.m[name]; !ok {
				delete(s.returned, name)
			}
		}
	}
}

func newDeltaSubscription(sets *sets, subscribe, unsubscribe []string, initial map[string]string) *subscription {
	s := &subscription{set: empty, legacy: len(subscribe) == 0, wildcard: len(subscribe) == 0, returned: initial}
	if s.returned == nil {
		s.returned = map[string]string{}
	}
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
	var m map[string]struct{}
	edit := func() map[string]struct{} {
		if m == nil {
			m = make(map[string]struct{}, len(s.set.m)+len(subscribe))
			for n := range s.set.m {
				m[n] = struct{}{}
			}
		}
		return m
	}
	for _, name := range subscribe {
		if name == explicitWildcard {
			s.wildcard = true
			continue
		}
		if _, ok := s.set.m[name]; !ok || m != nil {
			edit()[name] = struct{}{}
		}
	}
	for _, name := range unsubscribe {
		if name == explicitWildcard {
			s.wildcard = false
			continue
		}
		_, had := s.set.m[name]
		if m != nil {
			_, had = m[name]
		}
		if had && s.wildcard {
			// Still covered by the wildcard: the protocol wants it sent again (or
			// reported removed); an empty version makes the cache do that.
			s.returned[name] = ""
		} else {
			delete(s.returned, name)
		}
		if had {
			delete(edit(), name)
		}
	}
	if m == nil {
		return
	}
	next := sets.ofMap(m)
	sets.release(s.set)
	s.set = next
}

// end releases the subscription's set when its stream ends.
func (s *subscription) end(sets *sets) {
	sets.release(s.set)
	s.set = empty
}
