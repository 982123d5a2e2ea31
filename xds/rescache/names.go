package rescache

import "sync"

// names holds one copy of every resource name any cache has held. A request naming a
// thousand resources — a state-of-the-world EDS request restates all its names in every
// ACK — can then share those copies instead of holding its own (see Names).
var names = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

// remember adds the names of a Set; c.setMu is held.
func remember(fresh map[string]*entry) {
	names.RLock()
	missing := false
	for n := range fresh {
		if _, ok := names.m[n]; !ok {
			missing = true
			break
		}
	}
	names.RUnlock()
	if !missing {
		return
	}
	names.Lock()
	for n, e := range fresh {
		if _, ok := names.m[n]; !ok {
			names.m[n] = e.name
		}
	}
	names.Unlock()
}

// Names calls f with a lookup that gives the held copy of a resource name, without
// allocating; ok is false for a name no cache has held.
func Names(f func(lookup func(b []byte) (string, bool))) {
	names.RLock()
	defer names.RUnlock()
	f(func(b []byte) (string, bool) {
		s, ok := names.m[string(b)]
		return s, ok
	})
}
