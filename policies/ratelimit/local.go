package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Local counts in this process: sharded maps of GCRA times, no global lock, idle counters
// evicted by Run.
type Local struct {
	seed   maphash.Seed
	shards [128]localShard
	now    func() time.Time
}

type localShard struct {
	mu sync.Mutex
	m  map[string]int64 // key → theoretical arrival time (unix ns)
}

// NewLocal makes an in-memory backend.
func NewLocal() *Local {
	l := &Local{seed: maphash.MakeSeed(), now: time.Now}
	for i := range l.shards {
		l.shards[i].m = map[string]int64{}
	}
	return l
}

// Take counts one request against key. It allocates only when a key is first seen.
func (l *Local) Take(_ context.Context, key string, lim Limit) (Result, error) {
	return l.take(key, lim, 0), nil
}

// take decides at now, or (now 0) at the time the counter's lock is held: a time read
// before waiting for the lock could be stale by a scheduling delay and wrongly deny.
func (l *Local) take(key string, lim Limit, now int64) Result {
	s := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	s.mu.Lock()
	if now == 0 {
		now = l.now().UnixNano()
	}
	r, next := step(lim, s.m[key], now)
	if r.Allowed {
		s.m[key] = next
	}
	s.mu.Unlock()
	return r
}

// Run evicts counters that are back to a full burst (their tat has passed) every interval,
// until ctx ends.
func (l *Local) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := l.now().UnixNano()
		for i := range l.shards {
			s := &l.shards[i]
			s.mu.Lock()
			for k, tat := range s.m {
				if tat <= now {
					delete(s.m, k)
				}
			}
			s.mu.Unlock()
		}
	}
}

// Len is the number of live counters.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].m)
		l.shards[i].mu.Unlock()
	}
	return n
}
