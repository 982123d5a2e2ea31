package dpop

import (
	"context"
	"sync"
	"time"

	"github.com/tollgate-gw/tollgate/internal/defaults"

	"github.com/redis/go-redis/v9"
)

// Memory remembers proof ids in this process, at most max of them: when full, the ids
// whose time is up are dropped, and if that is not enough, about half of the others (only a
// flood of fresh proofs, each with a valid DPoP-bound token, can push an id out early).
type Memory struct {
	max int
	mu  sync.Mutex
	ids map[string]time.Time // id → until
}

// NewMemory makes an in-memory replay cache of at most max ids.
func NewMemory(max int) *Memory { return &Memory{max: max, ids: map[string]time.Time{}} }

// Seen implements Replay.
func (m *Memory) Seen(_ context.Context, id string, ttl time.Duration) (bool, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if until, ok := m.ids[id]; ok && now.Before(until) {
		return true, nil
	}
	if len(m.ids) >= m.max {
		m.evict(now)
	}
	m.ids[id] = now.Add(ttl)
	return false, nil
}

func (m *Memory) evict(now time.Time) {
	for id, until := range m.ids {
		if !now.Before(until) {
			delete(m.ids, id)
		}
	}
	// Still full of live ids: drop about half (map order is random).
	for id := range m.ids {
		if len(m.ids) < m.max/2 {
			break
		}
		delete(m.ids, id)
	}
}

// Redis remembers proof ids in Redis (SET NX with the id's lifetime), so every enforcer
// sharing it refuses a proof another one has seen. When Redis does not answer, the local
// cache decides (a replay across replicas may then pass; one to the same replica does not).
type Redis struct {
	client redis.UniversalClient
	prefix string
	local  *Memory
}

// NewRedis makes a Redis replay cache on client; keys start with prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix, local: NewMemory(defaults.ReplayCacheSize)}
}

// Seen implements Replay.
func (r *Redis) Seen(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	seenHere, _ := r.local.Seen(ctx, id, ttl)
	ok, err := r.client.SetNX(ctx, r.prefix+id, 1, ttl).Result()
	if err != nil {
		return seenHere, nil
	}
	return seenHere || !ok, nil
}
