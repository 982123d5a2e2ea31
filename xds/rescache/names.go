package rescache

import "sync"

// heldNames holds one copy of every resource name a cache holds now, with how many caches
// hold it. A request naming a thousand resources — a state-of-the-world EDS request
// restates all its names in every ACK — can then share those copies instead of holding its
// own (see Names); a name no cache holds any longer is forgotten, so APIs that come and go
// leave nothing behind.
var heldNames = struct {
	sync.RWMutex
	m map[string]*heldName
}{m: map[string]*heldName{}}

type heldName struct {
	s     string
	holds int // caches holding it
}

// count adds d to how many caches hold each name: 1 for the names a cache now holds, -1 for
// those it no longer holds. c.setMu is held.
func count(names []string, d int) {
	if len(names) == 0 {
		return
	}
	heldNames.Lock()
	defer heldNames.Unlock()
	for _, n := range names {
		h := heldNames.m[n]
		if h == nil {
			h = &heldName{s: n}
			heldNames.m[n] = h
		}
		if h.holds += d; h.holds <= 0 {
			delete(heldNames.m, n)
		}
	}
}

// Names calls f with a lookup that gives the held copy of a resource name, without
// allocating; ok is false for a name no cache holds.
func Names(f func(lookup func(b []byte) (string, bool))) {
	heldNames.RLock()
	defer heldNames.RUnlock()
	f(func(b []byte) (string, bool) {
		if h := heldNames.m[string(b)]; h != nil {
			return h.s, true
		}
		return "", false
	})
}
