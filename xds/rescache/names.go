package rescache

import "sync"

// Names holds one copy of every resource name the caches given it hold now, with how many
// of them hold it. A request naming a thousand resources — a state-of-the-world EDS request
// restates all its names in every ACK — can then share those copies instead of holding its
// own (see Lookup); a name no cache holds any longer is forgotten, so APIs that come and go
// leave nothing behind. The control plane makes one for its caches and gives it to the
// request decoder (xds.Server.ServerOptions).
type Names struct {
	mu sync.RWMutex
	m  map[string]*heldName
}

type heldName struct {
	s     string
	holds int // caches holding it
}

// NewNames makes an empty Names.
func NewNames() *Names { return &Names{m: map[string]*heldName{}} }

// count adds d to how many caches hold each name: 1 for the names a cache now holds, -1 for
// those it no longer holds.
func (h *Names) count(names []string, d int) {
	if h == nil || len(names) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range names {
		e := h.m[n]
		if e == nil {
			e = &heldName{s: n}
			h.m[n] = e
		}
		if e.holds += d; e.holds <= 0 {
			delete(h.m, n)
		}
	}
}

// Lookup calls f with a lookup that gives the held copy of a resource name, without
// allocating; ok is false for a name no cache holds.
func (h *Names) Lookup(f func(lookup func(b []byte) (string, bool))) {
	if h == nil {
		f(func([]byte) (string, bool) { return "", false })
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	f(func(b []byte) (string, bool) {
		if e := h.m[string(b)]; e != nil {
			return e.s, true
		}
		return "", false
	})
}

// Len is how many names are held.
func (h *Names) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.m)
}
