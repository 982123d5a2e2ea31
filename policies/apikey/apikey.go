// Package apikey keeps API keys: stored in etcd only as the SHA-256 of the key
// (apikeys/<hash>), with the application they belong to, the APIs they open and an optional
// expiry. The key itself is shown once, when it is created, and never stored. The set is
// the store.Sink of the apikeys/ range; a lookup is a hash and a map read.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// Record is what is stored for a key.
type Record struct {
	ID          string    `json:"id"` // a short public handle, for listing and revoking
	Application string    `json:"application"`
	APIs        []string  `json:"apis"` // API ids ("name/version"); empty: none
	Expires     time.Time `json:"expires,omitzero"`
	Created     time.Time `json:"created"`
}

// Set is the keys in memory.
type Set struct {
	mu       sync.RWMutex
	keys     map[string]Record // hex SHA-256 of the key → record
	onReject func(key string, err error)
}

// OnReject sets what happens to a stored record that does not parse (it is ignored either
// way); call it before following etcd.
func (s *Set) OnReject(f func(key string, err error)) { s.onReject = f }

func (s *Set) parse(key string, value []byte) (Record, bool) {
	var r Record
	err := json.Unmarshal(value, &r)
	if err != nil && s.onReject != nil {
		s.onReject(key, err)
	}
	return r, err == nil
}

// NewSet makes an empty set.
func NewSet() *Set { return &Set{keys: map[string]Record{}} }

// Errors a lookup returns.
var (
	ErrUnknown = errors.New("unknown API key")
	ErrExpired = errors.New("API key expired")
	ErrAPI     = errors.New("API key not valid for this API")
)

// Check finds the key's record and checks it opens api.
func (s *Set) Check(key, api string, now time.Time) (Record, error) {
	sum := sha256.Sum256([]byte(key))
	var hexKey [64]byte
	hex.Encode(hexKey[:], sum[:])
	s.mu.RLock()
	r, ok := s.keys[string(hexKey[:])]
	s.mu.RUnlock()
	switch {
	case !ok:
		return r, ErrUnknown
	case !r.Expires.IsZero() && !now.Before(r.Expires):
		return r, ErrExpired
	}
	for _, a := range r.APIs {
		if a == api || a == "*" {
			return r, nil
		}
	}
	return r, ErrAPI
}

// Reset replaces the set with the apikeys/ range.
func (s *Set) Reset(kvs []store.KV) {
	m := make(map[string]Record, len(kvs))
	for _, kv := range kvs {
		if r, ok := s.parse(kv.Key, kv.Value); ok {
			m[kv.Key] = r
		}
	}
	s.mu.Lock()
	s.keys = m
	s.mu.Unlock()
}

// Update applies one change.
func (s *Set) Update(ev store.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Deleted {
		delete(s.keys, ev.Key)
		return
	}
	if r, ok := s.parse(ev.Key, ev.Value); ok {
		s.keys[ev.Key] = r
	}
}

// New makes a key for an application and the APIs it may call: the key (shown once), and
// what is stored — under apikeys/<kv.Key> the record (kv.Value), never the key.
func New(application string, apis []string, ttl time.Duration) (key string, kv store.KV, r Record, err error) {
	if application == "" || len(apis) == 0 {
		return "", kv, r, errors.New("an API key needs an application and at least one API")
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	key = "tg_" + base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(key))
	r = Record{ID: hex.EncodeToString(sum[:4]), Application: application, APIs: apis, Created: time.Now().UTC().Truncate(time.Second)}
	if ttl > 0 {
		r.Expires = r.Created.Add(ttl)
	}
	value, _ := json.Marshal(r)
	return key, store.KV{Key: hex.EncodeToString(sum[:]), Value: value}, r, nil
}

// Create makes a new key for an application and the APIs it may call, stores its hash,
// and returns the key (shown once) and its record.
func Create(ctx context.Context, st *store.Store, application string, apis []string, ttl time.Duration) (string, Record, error) {
	key, kv, r, err := New(application, apis, ttl)
	if err != nil {
		return "", r, err
	}
	if _, err := st.Put(ctx, store.APIKeys+kv.Key, string(kv.Value)); err != nil {
		return "", Record{}, err
	}
	return key, r, nil
}

// List returns every stored key's record (never a key).
func List(ctx context.Context, st *store.Store) ([]Record, error) {
	kvs, err := st.List(ctx, store.APIKeys)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, kv := range kvs {
		var r Record
		if json.Unmarshal(kv.Value, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// Revoke deletes the key whose ID (from List or Create) is id, and returns the etcd revision
// of the delete.
func Revoke(ctx context.Context, st *store.Store, id string) (int64, error) {
	if len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" {
		return 0, fmt.Errorf("key id %q: want the 8 hex characters `tollgate apikey list` shows", id)
	}
	// The id is the first bytes of the hash: the key lives at the hash that starts with it.
	n, rev, err := st.DeletePrefix(ctx, store.APIKeys+id)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("no API key with id %s", id)
	}
	return rev, nil
}
