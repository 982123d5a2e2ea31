package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// A lease is units of one Redis counter taken ahead of the requests that use them: a busy
// counter costs one round trip per lease instead of one per request. Every admitted request
// was counted in Redis before it was admitted, so replicas together never admit more than
// the policy allows; units a lease has not used when it ends go back to Redis.
type lease struct {
	units     int           // left to hand out
	size      int           // units the next lease asks for
	expires   int64         // unix ns: from then the units go back to Redis
	remaining int           // Redis's remaining when it granted the lease
	resetAt   int64         // unix ns: when the counter is back to a full burst
	lim       Limit         // the limit the units were taken under, to give them back
	fetching  chan struct{} // while one caller asks Redis for the next lease; closed after
}

type leaseShard struct {
	mu      sync.Mutex
	m       map[string]*lease
	holding map[string]*lease // the leases with units left: what may have to go back
}

// leaseCap is the most units an enforcer may hold for lim: the rate's worth of one lease
// period and a tenth of the burst. 1 or less means no leases for lim.
//
// Units are counted in Redis when they are leased, so over any stretch of time replicas
// admit no more than the policy allows plus what they held when it began: a short burst
// can exceed the policy's burst by at most leaseCap per replica.
func (r *Redis) leaseCap(lim Limit) int {
	if r.cfg.Lease <= 0 {
		return 1
	}
	return int(min(int64(r.cfg.Lease/lim.emission()), int64(max(lim.Burst, 1)/10)))
}

// leaseWaits is how many lease fetches a request waits for before it asks Redis for
// itself: a request waits for at most two Redis calls, each within the timeout.
const leaseWaits = 1

// takeLeased decides from key's lease, asking Redis for the next lease when it is used up
// or over. One caller per counter asks; the others wait for its answer.
func (r *Redis) takeLeased(ctx context.Context, key string, lim Limit) Result {
	s := &r.leases[maphash.String(r.seed, key)%uint64(len(r.leases))]
	for waits := 0; ; waits++ {
		now := time.Now()
		ns := now.UnixNano()
		if res, ok := r.early(key, lim, now); ok {
			return res
		}
		if waits > leaseWaits {
			res, _, err := r.call(ctx, key, lim, 1, 0)
			return r.settle(res, err, key, lim, now)
		}
		s.mu.Lock()
		l := s.m[key]
		if l == nil {
			l = &lease{size: 1}
			s.m[key] = l
		}
		if l.units > 0 && ns < l.expires {
			l.units--
			res := Result{Allowed: true, Remaining: l.remaining + l.units, Reset: time.Duration(max(l.resetAt-ns, 0))}
			if l.fetching == nil && l.units <= l.size/4 {
				// Three quarters used before the lease ended: fetch a lease twice as large
				// now, so the requests after this one need not wait for it.
				most := r.leaseCap(lim)
				l.size = max(min(l.size*2, most), 1)
				if want := min(l.size, most-l.units); want > 0 {
					done := make(chan struct{})
					l.fetching = done
					go func() {
						res, now, err := r.fetch(context.Background(), s, l, key, lim, want, 0, 0, done)
						r.note(res, err, key, now) // a refusal is remembered; an error means Redis is away
					}()
				}
			}
			s.mu.Unlock()
			r.leased.Inc()
			return res
		}
		if wait := l.fetching; wait != nil {
			s.mu.Unlock()
			<-wait // answered within Redis's deadline
			continue
		}
		back := l.units // an expired lease's rest goes back with this call
		l.units = 0
		l.size = l.nextSize(ns, back, r.leaseCap(lim), r.cfg.Lease)
		want := l.size
		done := make(chan struct{})
		l.fetching = done
		s.mu.Unlock()

		res, now, err := r.fetch(ctx, s, l, key, lim, want, back, 1, done) // one is this request's
		return r.settle(res, err, key, lim, now)
	}
}

// fetch asks Redis for want units of key's counter, giving back back, adds what it grants
// to l but the use units the caller keeps, and ends l's fetch. The answer's Remaining
// counts the units l now holds.
func (r *Redis) fetch(ctx context.Context, s *leaseShard, l *lease, key string, lim Limit, want, back, use int, done chan struct{}) (Result, time.Time, error) {
	res, granted, err := r.call(ctx, key, lim, want, back)
	now := time.Now()
	ns := now.UnixNano()
	s.mu.Lock()
	l.fetching = nil
	if err == nil && granted > 0 {
		l.units += granted - use
		if l.units > 0 {
			s.holding[key] = l
		}
		l.lim, l.expires = lim, ns+int64(r.cfg.Lease)
		l.remaining, l.resetAt = res.Remaining, ns+int64(res.Reset)
		res.Remaining += l.units
	}
	s.mu.Unlock()
	close(done)
	if err == nil && back > 0 {
		r.returned.Add(float64(back))
	}
	return res, now, err
}

// nextSize adapts a counter's lease to its traffic: twice as large when the last one was
// used up before it ended, as large as what was used when some came back, smaller after
// a quiet spell.
func (l *lease) nextSize(now int64, back, most int, period time.Duration) int {
	size := l.size
	switch {
	case l.expires == 0:
	case now < l.expires:
		size *= 2
	case back > 0:
		size -= back
	case now-l.expires > int64(period):
		size /= 2
	}
	return max(min(size, most), 1)
}

// returnLeases gives back the unused units of ended leases (of all leases when all is
// set); with forget, it also forgets counters idle for a while. Only leases holding units
// are looked at for the first, so a flood of one-off counters costs nothing here.
func (r *Redis) returnLeases(ctx context.Context, all, forget bool) {
	now := time.Now().UnixNano()
	idle := now - 10*int64(r.cfg.Lease)
	var batch []*pending
	for i := range r.leases {
		s := &r.leases[i]
		s.mu.Lock()
		for key, l := range s.holding {
			if l.fetching != nil || (!all && now < l.expires && l.units > 0) {
				continue
			}
			delete(s.holding, key)
			if l.units > 0 {
				batch = append(batch, &pending{key: key, lim: l.lim, back: l.units, done: make(chan struct{}, 1)})
				l.size = max(l.size-l.units, 1)
				l.units = 0
			}
		}
		if forget {
			for key, l := range s.m {
				if l.fetching == nil && l.units == 0 && l.expires < idle {
					delete(s.m, key)
				}
			}
		}
		s.mu.Unlock()
	}
	for len(batch) > 0 {
		n := min(len(batch), maxBatch)
		r.exec(ctx, batch[:n])
		for _, p := range batch[:n] {
			if p.err == nil {
				r.returned.Add(float64(p.back))
			}
		}
		batch = batch[n:]
	}
}

// runLeases returns ended leases every period until ctx ends, then returns every lease:
// an enforcer that stops holds nothing back.
func (r *Redis) runLeases(ctx context.Context) {
	if r.cfg.Lease <= 0 {
		return
	}
	t := time.NewTicker(r.cfg.Lease)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout*4)
			r.returnLeases(final, true, false)
			cancel()
			return
		case <-t.C:
			r.returnLeases(ctx, false, tick%10 == 0)
		}
	}
}
