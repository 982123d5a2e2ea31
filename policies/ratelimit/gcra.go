// Package ratelimit decides "how often": named throttling policies (a rate, a burst, what to
// count by) applied at API, resource, application, subscription and custom levels, counted
// with GCRA — a smooth algorithm with no window edge that lets twice the rate through — in
// memory (local) or in Redis shared by every enforcer, with one decision path for both.
package ratelimit

import "time"

// Limit is a rate: Count requests per Period, at most Burst at once.
type Limit struct {
	Count  int
	Period time.Duration
	Burst  int
}

// emission is the steady interval between two requests.
func (l Limit) emission() time.Duration { return max(l.Period/time.Duration(l.Count), 1) }

// tolerance is how far ahead of the steady schedule a caller may get: Burst-1 intervals.
func (l Limit) tolerance() time.Duration { return l.emission() * time.Duration(max(l.Burst, 1)-1) }

// Result is one counter's answer.
type Result struct {
	Allowed    bool
	Remaining  int           // requests that may follow at once
	Reset      time.Duration // until the counter is back to a full burst
	RetryAfter time.Duration // when denied: until a request would pass
	// Unavailable, when denied: the counter could not be read (Redis away, fallback
	// deny), so the caller's quota is not what denied it; RetryAfter is when to try again.
	Unavailable bool
}

// step is GCRA: tat is the counter's theoretical arrival time (0 for a new counter), now
// the current time. It returns the decision and the new tat to store (unchanged when
// denied). It allocates nothing.
func step(l Limit, tat, now int64) (Result, int64) {
	t := int64(l.emission())
	tau := int64(l.tolerance())
	if tat < now {
		tat = now
	}
	if now < tat-tau {
		return Result{RetryAfter: time.Duration(tat - tau - now), Reset: time.Duration(tat - now)}, tat
	}
	next := tat + t
	remaining := (tau + t - (next - now)) / t
	return Result{Allowed: true, Remaining: int(max(remaining, 0)), Reset: time.Duration(next - now)}, next
}
