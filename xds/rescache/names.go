package rescache

import "sync"

// heldNames holds one copy of every resource name any cache has held. A request naming a
// thousand resources — a state-of-the-world EDS request restates all its names in every
// ACK — can then share those copies instead of holding its own (see Names).
var heldNames = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

// remember adds the names of a Set; c.setMu is held.
func remember(fresh map[string]*entry) {
	heldNames.RLock()
	missing := false
	for n := range fresh {
		if _, ok := heldNames.m[n]; !ok {
			missing = true
			break
		}
	}
	heldNames.RUnlock()
	if !missing {
		return
	}
	heldNames.Lock()
	for n, e := range fresh {
		if _, ok := heldNames.m[n]; !ok {
			heldNames.m[n] = e.name
		}
	}
	heldNames.Unlock()
}

// Names calls f with a lookup that gives the held copy of a resource name, without
// allocating; ok is false for a name no cache has held.
func Names(f func(lookup func(b []byte) (string, bool))) {
	heldNames.RLock()
	defer heldNames.RUnlock()
	f(func(b []byte) (string, bool) {
		s, ok := heldNames.m[string(b)]
		return s, ok
	})
}
