package ads

import (
	"maps"
	"slices"
	"sync"

	"github.com/tollgate-gw/tollgate/xds/rescache"
)

// nameSet is a set of resource names that streams subscribe to, kept once for every stream
// that subscribes to the same names (a thousand Envoys of a group subscribe to the same
// thousand clusters' endpoints). It never changes once made: a stream that subscribes to
// other names moves to another set.
type nameSet struct {
	fp   uint64
	m    map[string]struct{}
	list []string // the names, in the order the first stream named them
	refs int      // streams on it; guarded by sets.mu
}

// sets are the name sets in use, by fingerprint. A set is dropped when the last stream
// on it moves off or ends.
type sets struct {
	mu   sync.Mutex
	byFP map[uint64][]*nameSet
}

func newSets() *sets { return &sets{byFP: map[uint64][]*nameSet{}} }

// empty is the set of no names, shared and never counted.
var empty = &nameSet{fp: rescache.Fingerprint(slices.Values([]string(nil))), m: map[string]struct{}{}}

// ofList is the set of names (no "*" among them), made if no stream has it, with one more
// stream counted on it. Only a list that differs from every set in use, or names one twice,
// allocates.
func (s *sets) ofList(names []string) *nameSet {
	if len(names) == 0 {
		return empty
	}
	fp := rescache.Fingerprint(slices.Values(names))
	s.mu.Lock()
	for _, c := range s.byFP[fp] {
		if c.holdsExactly(names) {
			c.refs++
			s.mu.Unlock()
			return c
		}
	}
	s.mu.Unlock()
	m := make(map[string]struct{}, len(names))
	for _, n := range names {
		m[n] = struct{}{}
	}
	list := names
	if len(m) != len(names) { // a name twice: the set's list has it once
		list = make([]string, 0, len(m))
		seen := make(map[string]bool, len(m))
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				list = append(list, n)
			}
		}
	} else {
		list = slices.Clone(names)
	}
	return s.of(m, list)
}

// ofMap is the set of names in m (which the set may keep: the caller does not change it
// after), with one more stream counted on it.
func (s *sets) ofMap(m map[string]struct{}) *nameSet {
	if len(m) == 0 {
		return empty
	}
	return s.of(m, slices.Collect(maps.Keys(m)))
}

func (s *sets) of(m map[string]struct{}, list []string) *nameSet {
	fp := rescache.Fingerprint(maps.Keys(m))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.byFP[fp] {
		if len(c.m) == len(m) && c.holdsAll(m) {
			c.refs++
			return c
		}
	}
	n := &nameSet{fp: fp, m: m, list: list, refs: 1}
	s.byFP[fp] = append(s.byFP[fp], n)
	return n
}

// release counts one stream fewer on set.
func (s *sets) release(set *nameSet) {
	if set == nil || set == empty {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	set.refs--
	if set.refs > 0 {
		return
	}
	l := s.byFP[set.fp]
	l = slices.DeleteFunc(l, func(c *nameSet) bool { return c == set })
	if len(l) == 0 {
		delete(s.byFP, set.fp)
	} else {
		s.byFP[set.fp] = l
	}
}

// inUse is how many distinct sets streams are on.
func (s *sets) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.byFP {
		n += len(l)
	}
	return n
}

// holdsExactly reports whether the set is exactly the names (each named once).
func (n *nameSet) holdsExactly(names []string) bool {
	if len(names) != len(n.m) {
		return false
	}
	if slices.Equal(names, n.list) {
		return true // the usual case: the same names in the same order, shared strings
	}
	// As many names as the set, with its fingerprint, all in it: the same set, unless one
	// is named twice and one of the set not at all and the two names' 64-bit mixes of a
	// per-process random seed are equal (what the cache's fingerprints rely on too).
	for _, name := range names {
		if _, ok := n.m[name]; !ok {
			return false
		}
	}
	return true
}

func (n *nameSet) holdsAll(m map[string]struct{}) bool {
	for name := range m {
		if _, ok := n.m[name]; !ok {
			return false
		}
	}
	return true
}
