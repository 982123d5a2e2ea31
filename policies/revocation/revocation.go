// Package revocation is the set of revoked tokens every enforcer holds in memory, fed from
// etcd (revoked/): one key per revoked token (by jti, or by token hash when it has none) on
// a lease that ends when the token would have expired anyway, and one key per subject or
// client whose tokens issued before a time are revoked. The set is the store.Sink of that
// range, so it loads the whole list at start and then follows the watch from that revision;
// checking a token takes read locks and map lookups, and allocates nothing.
package revocation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// Kinds of revocation, the first segment of a key under revoked/.
const (
	KindJTI     = "jti"     // revoked/jti/<jti>
	KindHash    = "hash"    // revoked/hash/<hex sha256 of the token>
	KindSubject = "subject" // revoked/subject/<sub>: tokens issued before a time
	KindClient  = "client"  // revoked/client/<client id>: tokens issued before a time
)

// Record is the value stored at a revocation key.
type Record struct {
	// Until is when the record may be forgotten (the token's expiry); its lease ends then.
	Until time.Time `json:"until"`
	// IssuedBefore applies to subject and client records: tokens issued before it are revoked.
	IssuedBefore time.Time `json:"issuedBefore,omitzero"`
	Reason       string    `json:"reason,omitempty"`
}

// Token is what the set needs to know about a presented token.
type Token struct {
	ID       string // jti
	Hash     string // hex SHA-256
	Subject  string
	ClientID string
	IssuedAt time.Time
}

// Set is the revocation list in memory. It is safe for concurrent use.
type Set struct {
	log *zap.Logger

	mu       sync.RWMutex
	jtis     map[string]struct{}
	hashes   map[string]struct{} // hex SHA-256 of tokens without a jti
	subjects map[string]int64    // subject → issued-before, unix nanoseconds
	clients  map[string]int64

	loaded atomic.Bool

	size  prometheus.Gauge
	bad   prometheus.Counter
	hits  prometheus.Counter
	reset prometheus.Counter
}

// New makes an empty set; reg (may be nil) gets its metrics.
func New(log *zap.Logger, reg prometheus.Registerer) *Set {
	s := &Set{log: log, jtis: map[string]struct{}{}, hashes: map[string]struct{}{}, subjects: map[string]int64{}, clients: map[string]int64{},
		size:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_revocations", Help: "Revocation records held."}),
		bad:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_revocations_rejected_total", Help: "Malformed revocation records in etcd (ignored)."}),
		hits:  prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_revoked_tokens_denied_total", Help: "Requests denied because their token was revoked."}),
		reset: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_revocation_reloads_total", Help: "Full reloads of the revocation list (start, compaction)."}),
	}
	if reg != nil {
		reg.MustRegister(s.size, s.bad, s.hits, s.reset)
	}
	return s
}

// Revoked reports whether the token is revoked. It allocates nothing.
func (s *Set) Revoked(t Token) bool {
	s.mu.RLock()
	var revoked bool
	if t.ID != "" {
		_, revoked = s.jtis[t.ID]
	} else {
		_, revoked = s.hashes[t.Hash]
	}
	if !revoked && !t.IssuedAt.IsZero() {
		iat := t.IssuedAt.UnixNano()
		if before, ok := s.subjects[t.Subject]; ok && t.Subject != "" && iat < before {
			revoked = true
		}
		if before, ok := s.clients[t.ClientID]; ok && t.ClientID != "" && iat < before {
			revoked = true
		}
	}
	s.mu.RUnlock()
	if revoked {
		s.hits.Inc()
	}
	return revoked
}

// Len is the number of records held.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.jtis) + len(s.hashes) + len(s.subjects) + len(s.clients)
}

// Reset replaces the set with the whole revoked/ range.
func (s *Set) Reset(kvs []store.KV) {
	next := maps{jtis: make(map[string]struct{}, len(kvs)), hashes: map[string]struct{}{}, subjects: map[string]int64{}, clients: map[string]int64{}}
	for _, kv := range kvs {
		s.apply(next, kv.Key, kv.Value, false)
	}
	s.mu.Lock()
	s.jtis, s.hashes, s.subjects, s.clients = next.jtis, next.hashes, next.subjects, next.clients
	s.mu.Unlock()
	s.reset.Inc()
	s.size.Set(float64(s.Len()))
	s.loaded.Store(true)
}

// Loaded reports whether the set has been given the range once (from etcd or the local
// copy); before that it cannot say that a token is not revoked.
func (s *Set) Loaded() bool { return s.loaded.Load() }

// Update applies one change.
func (s *Set) Update(ev store.Event) {
	s.mu.Lock()
	s.apply(maps{s.jtis, s.hashes, s.subjects, s.clients}, ev.Key, ev.Value, ev.Deleted)
	n := len(s.jtis) + len(s.hashes) + len(s.subjects) + len(s.clients)
	s.mu.Unlock()
	s.size.Set(float64(n))
}

type maps struct {
	jtis, hashes      map[string]struct{}
	subjects, clients map[string]int64
}

func (s *Set) apply(m maps, key string, value []byte, deleted bool) {
	kind, escaped, ok := strings.Cut(key, "/")
	id, err := url.PathUnescape(escaped)
	if !ok || err != nil || id == "" {
		s.reject(key, "bad key")
		return
	}
	switch kind {
	case KindJTI, KindHash:
		set := m.jtis
		if kind == KindHash {
			set = m.hashes
		}
		if deleted {
			delete(set, id)
		} else {
			set[id] = struct{}{}
		}
	case KindSubject, KindClient:
		times := m.subjects
		if kind == KindClient {
			times = m.clients
		}
		if deleted {
			delete(times, id)
			return
		}
		var r Record
		if err := json.Unmarshal(value, &r); err != nil || r.IssuedBefore.IsZero() {
			s.reject(key, "want {\"issuedBefore\": RFC 3339 time}")
			return
		}
		times[id] = r.IssuedBefore.UnixNano()
	default:
		s.reject(key, "unknown kind")
	}
}

func (s *Set) reject(key, why string) {
	s.bad.Inc()
	s.log.Warn("revocation record ignored", zap.String("key", store.Revoked+key), zap.String("reason", why))
}

// Revoke writes a revocation to etcd under a lease that ends at r.Until, so that the list
// never outgrows the tokens it holds, and returns its key and etcd revision. kind is one of
// the Kind constants.
func Revoke(ctx context.Context, st *store.Store, kind, id string, r Record) (key string, rev int64, err error) {
	switch kind {
	case KindJTI, KindHash:
	case KindSubject, KindClient:
		if r.IssuedBefore.IsZero() {
			return "", 0, invalid("a %s revocation needs an issued-before time", kind)
		}
	default:
		return "", 0, invalid("unknown revocation kind %q", kind)
	}
	if id == "" {
		return "", 0, invalid("empty %s", kind)
	}
	ttl := time.Until(r.Until) + time.Second
	if ttl < 2*time.Second {
		return "", 0, invalid("until %s has passed: the token is expired already", r.Until.Format(time.RFC3339))
	}
	value, _ := json.Marshal(r)
	key, rev, err = st.PutTTL(ctx, store.Revoked+kind+"/"+url.PathEscape(id), string(value), ttl)
	if err != nil {
		return "", 0, fmt.Errorf("etcd cannot take the revocation: %w", err)
	}
	return key, rev, nil
}

// InvalidError is a revocation that can never be stored as given (as opposed to etcd
// being unable to take it now).
type InvalidError struct{ msg string }

func (e *InvalidError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &InvalidError{fmt.Sprintf(format, args...)}
}
