package ratelimit

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

func newLeasing(t *testing.T, addr string, lease time.Duration) (*Redis, func()) {
	return runRedis(t, RedisConfig{Addrs: []string{addr}, Lease: lease})
}

// A flood from many callers through two leasing replicas: the limit holds within 1%. (At
// the limit Redis has few units to lease; leases serve the burst, remembered denials the
// rest.)
func TestRedisLeasesAccuracyAcrossTwoReplicas(t *testing.T) {
	rd := tu.StartRedis(t)
	a, _ := newLeasing(t, rd.Addr, 0)
	b, _ := newLeasing(t, rd.Addr, 0)
	var n atomic.Int64
	accuracy(t, func(key string, lim Limit) bool {
		r := a
		if n.Add(1)%2 == 0 {
			r = b
		}
		res, _ := r.Take(context.Background(), key, lim)
		return res.Allowed
	}, Limit{Count: 5000, Period: time.Second, Burst: 500}, 8, 3*time.Second)
	if leased := testutil.ToFloat64(a.leased) + testutil.ToFloat64(b.leased); leased < 100 {
		t.Errorf("only %.0f requests came from leases: leasing was not exercised", leased)
	}
}

// Traffic under the limit through two replicas is never refused because the other replica
// holds units, and costs far fewer round trips than requests.
func TestRedisLeasesUnderTheLimitAdmitEverything(t *testing.T) {
	rd := tu.StartRedis(t)
	a, _ := newLeasing(t, rd.Addr, 0)
	b, _ := newLeasing(t, rd.Addr, 0)
	lim := Limit{Count: 2000, Period: time.Second, Burst: 200}
	var denied, total atomic.Int64
	var wg sync.WaitGroup
	for i := range 4 { // 4 callers × 300/s = 1200/s against 2000/s
		r := []*Redis{a, b}[i%2]
		wg.Go(func() {
			tick := time.NewTicker(time.Second / 300)
			defer tick.Stop()
			for range 600 {
				<-tick.C
				total.Add(1)
				if res, _ := r.Take(context.Background(), "under", lim); !res.Allowed {
					denied.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if denied.Load() != 0 {
		t.Errorf("%d of %d requests under the limit were refused", denied.Load(), total.Load())
	}
	leased := testutil.ToFloat64(a.leased) + testutil.ToFloat64(b.leased)
	t.Logf("%d requests, %.0f from leases", total.Load(), leased)
	if leased < float64(total.Load())/2 {
		t.Errorf("only %.0f of %d requests came from leases", leased, total.Load())
	}
}

// The unused rest of a lease goes back to Redis when the lease ends, and when the enforcer
// stops; Redis's counter moves back by exactly those units.
func TestRedisLeaseUnitsGoBack(t *testing.T) {
	rd := tu.StartRedis(t)
	for _, how := range []string{"lease ends", "enforcer stops"} {
		t.Run(how, func(t *testing.T) {
			lease := 300 * time.Millisecond
			if how == "enforcer stops" {
				lease = time.Hour
			}
			r, stop := newLeasing(t, rd.Addr, lease)
			// 100 per second: 10ms a unit. 500 units taken first put the counter 5s ahead of
			// now, so what comes back shows in it whole.
			lim := Limit{Count: 100, Period: time.Second, Burst: 1000}
			key := "back-" + strconv.Itoa(len(how))
			if _, n, err := r.call(context.Background(), key, lim, 500, 0); n != 500 || err != nil {
				t.Fatal(n, err)
			}
			for range 40 { // leases of 1, 2, 4, 8, 16, 32 units
				if res, _ := r.Take(context.Background(), key, lim); !res.Allowed {
					t.Fatal("refused")
				}
			}
			held := r.held(key)
			if held == 0 {
				t.Fatal("no units are held: the lease did not grow")
			}
			before := tat(t, rd.Addr, key)
			if how == "enforcer stops" {
				stop()
			}
			tu.Eventually(t, "units are given back", func() bool { return testutil.ToFloat64(r.returned) == float64(held) })
			got := before - tat(t, rd.Addr, key)
			if want := int64(held) * 10000; got != want {
				t.Errorf("counter moved back %dµs, want %d units × 10ms = %dµs", got, held, want)
			}
		})
	}
}

// held is the number of units key's lease holds.
func (r *Redis) held(key string) int {
	s := &r.leases[0]
	for i := range r.leases {
		r.leases[i].mu.Lock()
		if _, ok := r.leases[i].m[key]; ok {
			s = &r.leases[i]
		}
		r.leases[i].mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key].units
}

func tat(t *testing.T, addr, key string) int64 {
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	v, err := c.Get(context.Background(), "tollgate:rl:"+key).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A counter with a small rate or burst is never leased: each request is Redis's decision.
func TestRedisLeaseCap(t *testing.T) {
	r, err := NewRedis(RedisConfig{Addrs: []string{"127.0.0.1:1"}}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lim  Limit
		want int
	}{
		{Limit{Count: 10, Period: time.Second, Burst: 100}, 1},         // 1 per 100ms lease
		{Limit{Count: 10000, Period: time.Second, Burst: 10}, 1},       // a burst of 10
		{Limit{Count: 10000, Period: time.Second, Burst: 100}, 10},     // a tenth of the burst
		{Limit{Count: 10000, Period: time.Second, Burst: 10000}, 1000}, // 100ms of the rate
	} {
		if got := r.leaseCap(c.lim); got != c.want {
			t.Errorf("leaseCap(%+v) = %d, want %d", c.lim, got, c.want)
		}
	}
	off, _ := NewRedis(RedisConfig{Addrs: []string{"127.0.0.1:1"}, Lease: -1}, zap.NewNop(), nil)
	if got := off.leaseCap(Limit{Count: 10000, Period: time.Second, Burst: 10000}); got > 1 {
		t.Errorf("leases off: cap %d", got)
	}
}

// The documented bound: units a replica holds were counted when leased, so a burst right
// after a quiet spell exceeds the policy's burst by at most what the replicas held.
func TestRedisLeasesBoundTheBurst(t *testing.T) {
	rd := tu.StartRedis(t)
	a, _ := newLeasing(t, rd.Addr, time.Second)
	b, _ := newLeasing(t, rd.Addr, time.Second)
	lim := Limit{Count: 1000, Period: time.Second, Burst: 200} // cap: a tenth of the burst, 20
	for range 40 {
		a.Take(context.Background(), "burst", lim)
	}
	time.Sleep(50 * time.Millisecond) // a prefetched lease lands
	held := a.held("burst")
	if held == 0 || held > a.leaseCap(lim) {
		t.Fatalf("replica a holds %d units, want 1..%d", held, a.leaseCap(lim))
	}
	time.Sleep(250 * time.Millisecond) // the counter refills to its full burst
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 8 {
		r := []*Redis{a, b}[i%2]
		wg.Go(func() {
			for time.Since(start) < 50*time.Millisecond {
				if res, _ := r.Take(context.Background(), "burst", lim); res.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	refill := int64(time.Since(start).Milliseconds()) + 1 // one unit a millisecond
	most := int64(lim.Burst+2*a.leaseCap(lim)) + refill
	t.Logf("admitted %d in a 50ms burst (burst %d, a held %d, at most %d)", admitted.Load(), lim.Burst, held, most)
	if n := admitted.Load(); n < int64(lim.Burst) || n > most {
		t.Errorf("admitted %d, want between the burst %d and %d", n, lim.Burst, most)
	}
}

// A Redis that hangs (connections open, no answers) holds no request longer than two
// Redis calls' timeout, leased counters or not; the fallback decides meanwhile, and shared
// counting resumes when Redis answers again.
func TestRedisHangingNeverHoldsARequest(t *testing.T) {
	rd := tu.StartRedis(t)
	r, _ := newLeasing(t, rd.Addr, 0) // timeout 50ms
	lim := Limit{Count: 10000, Period: time.Second, Burst: 1000}
	for range 200 { // leases grow on the busy counter
		r.Take(context.Background(), "busy", lim)
	}
	rd.Pause()
	var slowest atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				key := "busy"
				if i%2 == 1 {
					key = "other-" + strconv.Itoa(j)
				}
				start := time.Now()
				r.Take(context.Background(), key, lim)
				if d := int64(time.Since(start)); d > slowest.Load() {
					slowest.Store(d)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("slowest request while Redis hung: %v", time.Duration(slowest.Load()))
	if r.Up() {
		t.Error("a hanging Redis was reported up")
	}
	if d := time.Duration(slowest.Load()); d > 150*time.Millisecond {
		t.Errorf("a request waited %v on a hanging Redis (timeout 50ms)", d)
	}
	rd.Resume()
	tu.Eventually(t, "shared counting resumes", func() bool {
		r.Take(context.Background(), "after", lim)
		return r.Up()
	})
}
