// Package catalog keeps the live set of APIs from the definitions stored in etcd: it is the
// store.Sink for the apis/ range, parses each definition, keeps the last good version of
// each key when a new one is broken, and publishes an immutable apimodel.Catalog that
// readers load without locking.
package catalog

import (
	"crypto/sha256"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// Registry is the live API catalogue.
type Registry struct {
	cur atomic.Pointer[apimodel.Catalog]
	log *zap.Logger

	loaded atomic.Bool

	mu sync.Mutex
	// notify is held while listeners run, so each sees the catalogues in the order they
	// were published, also the one OnChange replays.
	notify   sync.Mutex
	good     map[string]*apimodel.API // etcd key → last good model
	raw      map[string][32]byte      // etcd key → SHA-256 of the last value seen (good or not)
	onChange []func(*apimodel.Catalog)
	// validation is the gateway's default that definitions are read under.
	validation apimodel.ValidationDefaults
	rejected   prometheus.Counter
	apis       prometheus.Gauge

	parsed  int         // bytes of definitions parsed since the last release; under mu
	release atomic.Bool // a release of memory to the OS is scheduled
}

// releaseAfter is how much definition text, parsed, makes the registry give the memory its
// parsing used back to the OS; releaseDelay lets the control plane's build that follows a
// change finish first. Parsing a description takes several times its size for a moment,
// and Go keeps freed memory for reuse: without this, a gateway that once loaded a 5 MB
// description would hold that moment's peak for good.
const (
	releaseAfter = 256 << 10
	releaseDelay = 2 * time.Second
)

// New makes an empty registry. reg (may be nil) gets its metrics.
func New(log *zap.Logger, reg prometheus.Registerer) *Registry {
	r := &Registry{log: log, good: map[string]*apimodel.API{}, raw: map[string][32]byte{},
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_api_definitions_rejected_total",
			Help: "API definitions read from etcd that failed validation; the last good version stays in force.",
		}),
		apis: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_apis", Help: "APIs in force."}),
	}
	if reg != nil {
		reg.MustRegister(r.rejected, r.apis)
	}
	r.cur.Store(apimodel.NewCatalog(nil))
	return r
}

// SetValidation sets the gateway's validation defaults that definitions are read under.
// Call it before the registry follows etcd.
func (r *Registry) SetValidation(def apimodel.ValidationDefaults) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.validation = def
}

// Load is the catalogue in force now.
func (r *Registry) Load() *apimodel.Catalog { return r.cur.Load() }

// Loaded reports whether a catalogue has been published (from etcd, the local copy, or
// Set): before that, the registry knows nothing, which is not the same as "no APIs".
func (r *Registry) Loaded() bool { return r.loaded.Load() }

// OnChange registers f to run after each new catalogue is published (from the goroutine
// that follows etcd). If one has been published already, f gets it at once: a subscriber
// never misses the state that was loaded before it subscribed.
func (r *Registry) OnChange(f func(*apimodel.Catalog)) {
	r.mu.Lock()
	r.onChange = append(r.onChange, f)
	loaded, cur := r.loaded.Load(), r.cur.Load()
	r.notify.Lock()
	r.mu.Unlock()
	defer r.notify.Unlock()
	if loaded {
		f(cur)
	}
}

// Reset replaces everything with the full contents of the apis/ range.
func (r *Registry) Reset(kvs []store.KV) {
	r.change(func() {
		seen := map[string]bool{}
		for _, kv := range kvs {
			seen[kv.Key] = true
			r.apply(kv.Key, kv.Value)
		}
		for k := range r.good {
			if !seen[k] {
				delete(r.good, k)
				delete(r.raw, k)
			}
		}
	})
}

// Update applies one change.
func (r *Registry) Update(ev store.Event) { r.UpdateBatch([]store.Event{ev}) }

// UpdateBatch applies the changes of one etcd transaction and publishes one catalogue:
// nobody sees half of an apply.
func (r *Registry) UpdateBatch(evs []store.Event) {
	r.change(func() {
		for _, ev := range evs {
			if ev.Deleted {
				delete(r.good, ev.Key)
				delete(r.raw, ev.Key)
				r.log.Info("API removed", zap.String("key", ev.Key))
			} else {
				r.apply(ev.Key, ev.Value)
			}
		}
	})
}

// apply parses one definition; a broken one is logged once and counted, and the last good
// version of that key stays.
func (r *Registry) apply(key string, value []byte) {
	sum := sha256.Sum256(value)
	if prev, ok := r.raw[key]; ok && prev == sum {
		return
	}
	r.raw[key] = sum
	res, err := openapi.ParseWith(store.APIs+key, value, r.validation)
	if err == nil && !matchesKey(key, res.API) {
		err = apimodel.Problems{{File: store.APIs + key, Path: "$.info", Reason: "the definition's name/version is " + res.API.ID() + ", not its key's"}}
	}
	if err != nil {
		r.rejected.Inc()
		_, kept := r.good[key]
		r.log.Error("API definition rejected; the last good version stays in force",
			zap.String("key", key), zap.Bool("kept_previous", kept), zap.String("problems", err.Error()))
		return
	}
	r.good[key] = res.API
	r.parsed += len(value)
	r.log.Info("API loaded", zap.String("api", res.API.ID()), zap.String("base_path", res.API.BasePath), zap.Int("operations", len(res.API.Operations)))
}

func matchesKey(key string, a *apimodel.API) bool {
	return key == a.ID() || strings.EqualFold(key, a.ID())
}

// change runs edit on the definitions under r.mu, publishes the catalogue they make, and
// tells the listeners, in the order catalogues are published: r.notify is taken before
// r.mu is let go, so the next change's listeners wait for these.
func (r *Registry) change(edit func()) {
	r.mu.Lock()
	edit()
	c := r.publish()
	listeners := slices.Clone(r.onChange)
	r.notify.Lock()
	r.mu.Unlock()
	defer r.notify.Unlock()
	for _, f := range listeners {
		f(c)
	}
}

// publish builds and swaps in a new catalogue from the good definitions; r.mu is held.
func (r *Registry) publish() *apimodel.Catalog {
	keys := make([]string, 0, len(r.good))
	for k := range r.good {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]*apimodel.API, 0, len(keys))
	for _, k := range keys {
		list = append(list, r.good[k])
	}
	c := apimodel.NewCatalog(list)
	if r.parsed >= releaseAfter && r.release.CompareAndSwap(false, true) {
		r.parsed = 0
		time.AfterFunc(releaseDelay, func() { r.release.Store(false); debug.FreeOSMemory() })
	}
	r.cur.Store(c)
	r.loaded.Store(true)
	r.apis.Set(float64(c.Len()))
	return c
}

// Set replaces the catalogue with APIs given directly (for tools and tests that do not
// read etcd).
func (r *Registry) Set(apis []*apimodel.API) {
	r.change(func() {
		r.good = map[string]*apimodel.API{}
		r.raw = map[string][32]byte{}
		for _, a := range apis {
			r.good[a.ID()] = a
		}
	})
}
