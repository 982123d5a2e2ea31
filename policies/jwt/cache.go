package jwt

import (
	"crypto/sha256"
	"sync"
	"unsafe"

	"github.com/tollgate-gw/tollgate/internal/identity"
)

// cache remembers verified tokens by the SHA-256 of the token, so a repeated token costs a
// hash and a map lookup instead of a signature check. It never holds a token past its
// expiry, is bounded, and is sharded so readers on different shards never meet. The token
// itself is never stored.
type cache struct {
	shards   [64]cacheShard
	perShard int
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[32]byte]cacheEntry
}

type cacheEntry struct {
	id    *identity.Principal
	until int64 // unix nanoseconds; the token's exp
}

func newCache(size int) *cache {
	if size <= 0 {
		return nil
	}
	c := &cache{perShard: max(1, size/64)}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]cacheEntry)
	}
	return c
}

// tokenHash is the cache key of a token. The token's bytes are hashed in place: []byte(token)
// would copy a kilobyte on every cached Check (sha256 only reads its input).
func tokenHash(token string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

func (c *cache) get(h [32]byte, now int64) *identity.Principal {
	if c == nil {
		return nil
	}
	s := &c.shards[h[0]&63]
	s.mu.RLock()
	e, ok := s.m[h]
	s.mu.RUnlock()
	if !ok || now >= e.until {
		return nil
	}
	return e.id
}

func (c *cache) put(h [32]byte, id *identity.Principal, until, now int64) {
	if c == nil || until <= now {
		return
	}
	s := &c.shards[h[0]&63]
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.perShard {
		// Drop expired entries; if none, drop some entry (map order is random enough that
		// this approximates random eviction at no bookkeeping cost on the read path).
		dropped := 0
		for k, e := range s.m {
			if e.until <= now {
				delete(s.m, k)
				dropped++
			}
		}
		for k := range s.m {
			if dropped > 0 || len(s.m) < c.perShard {
				break
			}
			delete(s.m, k)
			dropped++
		}
	}
	s.m[h] = cacheEntry{id: id, until: until}
}
