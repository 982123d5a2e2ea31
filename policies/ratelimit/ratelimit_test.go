package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/store"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

func TestGCRABurstThenSteady(t *testing.T) {
	lim := Limit{Count: 10, Period: time.Second, Burst: 3} // one per 100ms, three at once
	var tat int64
	now := int64(1e12)
	for i := range 3 {
		r, next := step(lim, tat, now)
		if !r.Allowed || r.Remaining != 2-i {
			t.Fatalf("request %d of the burst: %+v", i, r)
		}
		tat = next
	}
	r, _ := step(lim, tat, now)
	if r.Allowed || r.RetryAfter != 100*time.Millisecond {
		t.Fatalf("fourth at once: %+v", r)
	}
	// After one interval exactly one more passes: no window edge lets a burst through.
	now += int64(100 * time.Millisecond)
	if r, next := step(lim, tat, now); !r.Allowed {
		t.Fatalf("after an interval: %+v", r)
	} else {
		tat = next
	}
	if r, _ := step(lim, tat, now); r.Allowed {
		t.Fatal("two passed after one interval")
	}
}

// accuracy drives take from concurrent callers for d and compares the admitted count with
// the configured rate plus burst: never more than 1% above it, and not more than 1% below
// it once the budget the callers provably left unused is taken off (a stretch in which no
// call returned for longer than the burst lasts, as when a loaded machine stalls them, lets
// the unused rate lapse, as it should).
func accuracy(t *testing.T, take func(key string, lim Limit) bool, lim Limit, callers int, d time.Duration) {
	t.Helper()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	burstLasts := time.Duration(float64(lim.Burst) * float64(lim.Period) / float64(lim.Count))
	var last, lapsed atomic.Int64 // the last return, as nanoseconds since start; time no call returned beyond the burst
	for range callers {
		wg.Go(func() {
			for time.Since(start) < d {
				if take("accuracy", lim) {
					admitted.Add(1)
				}
				now := int64(time.Since(start))
				if gap := time.Duration(now - last.Swap(now)); gap > burstLasts {
					lapsed.Add(int64(gap - burstLasts))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	perSecond := float64(lim.Count) / lim.Period.Seconds()
	want := perSecond*elapsed.Seconds() + float64(lim.Burst)
	unused := perSecond * time.Duration(lapsed.Load()).Seconds()
	got := float64(admitted.Load())
	t.Logf("admitted %.0f in %v, rate+burst allows %.1f (%.2f%%); callers stalled past the burst for %v", got, elapsed.Round(time.Millisecond), want, 100*(got-want)/want, time.Duration(lapsed.Load()).Round(time.Millisecond))
	if got > want*1.01 {
		t.Errorf("admitted %.0f, want at most %.1f (1%% over)", got, want)
	}
	if floor := want - unused; got < floor*0.99 {
		t.Errorf("admitted %.0f, want at least %.1f (rate+burst less %.0f the callers left unused, 1%% under)", got, floor*0.99, unused)
	}
}

func TestLocalAccuracy(t *testing.T) {
	l := NewLocal()
	accuracy(t, func(key string, lim Limit) bool {
		r, _ := l.Take(context.Background(), key, lim)
		return r.Allowed
	}, Limit{Count: 500, Period: time.Second, Burst: 50}, 8, 3*time.Second)
}

func TestRedisAccuracyAcrossTwoReplicas(t *testing.T) {
	rd := tu.StartRedis(t)
	a, b := newRedis(t, rd.Addr, FallbackLocal), newRedis(t, rd.Addr, FallbackLocal)
	n := 0
	accuracy(t, func(key string, lim Limit) bool {
		n++ // replicas alternate: two enforcers share the counter
		r := a
		if n%2 == 0 {
			r = b
		}
		res, _ := r.Take(context.Background(), key, lim)
		return res.Allowed
	}, Limit{Count: 300, Period: time.Second, Burst: 30}, 1, 3*time.Second)
}

func TestRedisSharedAcrossReplicasConcurrently(t *testing.T) {
	rd := tu.StartRedis(t)
	replicas := []*Redis{newRedis(t, rd.Addr, FallbackLocal), newRedis(t, rd.Addr, FallbackLocal)}
	lim := Limit{Count: 100, Period: time.Minute, Burst: 20}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				if r, _ := replicas[i%2].Take(context.Background(), "shared", lim); r.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	// 400 requests against a burst of 20: the two replicas together admit the burst and
	// what the steady rate adds meanwhile — not twice that.
	most := 20 + int64(time.Since(start).Seconds()*100/60) + 1
	if n := admitted.Load(); n < 20 || n > most {
		t.Errorf("two replicas admitted %d, want the shared burst of 20 (at most %d)", n, most)
	}
}

func TestRedisKilledFallsBackWithoutHangingAndComesBack(t *testing.T) {
	rd := tu.StartRedis(t)
	r := newRedis(t, rd.Addr, FallbackLocal)
	lim := Limit{Count: 1000, Period: time.Second, Burst: 100}
	if res, _ := r.Take(context.Background(), "k", lim); !res.Allowed || !r.Up() {
		t.Fatal("first take")
	}
	rd.Stop()
	var slowest time.Duration
	for range 200 {
		start := time.Now()
		res, err := r.Take(context.Background(), "k", lim)
		if err != nil {
			t.Fatal(err)
		}
		_ = res
		slowest = max(slowest, time.Since(start))
	}
	if r.Up() {
		t.Error("Redis reported up while it is down")
	}
	if slowest > 250*time.Millisecond {
		t.Errorf("a request waited %v on a dead Redis (timeout 50ms)", slowest)
	}
	// The local fallback still limits.
	denied := 0
	for range 500 {
		if res, _ := r.Take(context.Background(), "burst", lim); !res.Allowed {
			denied++
		}
	}
	if denied == 0 {
		t.Error("the local fallback did not limit")
	}
	rd.Start()
	tu.Eventually(t, "shared counting resumes", func() bool {
		r.Take(context.Background(), "k", lim)
		return r.Up()
	})
	for _, mode := range []Fallback{FallbackAllow, FallbackDeny} {
		rd.Stop()
		f := newRedis(t, rd.Addr, mode)
		res, _ := f.Take(context.Background(), "x", lim)
		if res.Allowed != (mode == FallbackAllow) || res.Unavailable != (mode == FallbackDeny) {
			t.Errorf("fallback %s: allowed=%v unavailable=%v", mode, res.Allowed, res.Unavailable)
		}
		rd.Start()
	}
}

func newRedis(t *testing.T, addr string, fb Fallback) *Redis {
	r, _ := runRedis(t, RedisConfig{Addrs: []string{addr}, Fallback: fb})
	return r
}

// runRedis makes a Redis backend with Run going (Retry 200ms unless cfg says); stop ends
// Run, as the end of the test does too.
func runRedis(t *testing.T, cfg RedisConfig) (r *Redis, stop func()) {
	if cfg.Retry == 0 {
		cfg.Retry = 200 * time.Millisecond
	}
	r, err := NewRedis(cfg, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(func() { stop(); r.Close() })
	return r, stop
}

func TestEngineLevelsShadowAndCustomKeys(t *testing.T) {
	e := NewEngine(NewLocal(), zap.NewNop(), nil)
	put := func(doc string) {
		t.Helper()
		p, err := ParsePolicy([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		e.Update(store.Event{KV: store.KV{Key: p.Name, Value: []byte(doc)}})
	}
	put("kind: ThrottlingPolicy\nname: two\nrate: 2/minute\nburst: 2\n")
	put("kind: ThrottlingPolicy\nname: tenant\nrate: 1/minute\nburst: 1\nkey: header:x-tenant\n")
	put("kind: ThrottlingPolicy\nname: watch\nrate: 1/minute\nburst: 1\nshadow: true\n")
	hdr := map[string]string{"x-tenant": "acme"}
	req := Request{API: "a/v1", Operation: "GET /x", OpPolicy: "two", ClientID: "app", Headers: hdr}
	for i := range 2 {
		if d := e.Decide(context.Background(), req); !d.Allowed || d.Result.Remaining != 1-i {
			t.Fatalf("request %d: %+v", i, d)
		}
	}
	if d := e.Decide(context.Background(), req); d.Allowed || d.Level != LevelResource || d.Policy != "two" || d.Result.RetryAfter <= 0 {
		t.Fatalf("third: %+v", d)
	}
	// A custom key counts per header value, and its deny is the custom level.
	c := Request{API: "a/v1", APIPolicy: "tenant", Headers: hdr}
	e.Decide(context.Background(), c)
	if d := e.Decide(context.Background(), c); d.Allowed || d.Level != LevelCustom {
		t.Fatalf("custom: %+v", d)
	}
	hdr["x-tenant"] = "other"
	if d := e.Decide(context.Background(), c); !d.Allowed {
		t.Fatal("another tenant shares the counter")
	}
	// Shadow policies never deny.
	s := Request{API: "a/v1", APIPolicy: "watch"}
	for range 3 {
		if d := e.Decide(context.Background(), s); !d.Allowed {
			t.Fatal("a shadow policy denied")
		}
	}
	if d := e.Decide(context.Background(), Request{API: "a/v1", APIPolicy: "nope"}); d.Allowed || !d.NotFound {
		t.Errorf("unknown policy: %+v", d)
	}
	if d := e.Decide(context.Background(), Request{API: "a/v1", APIPolicy: "Unlimited", OpPolicy: "Gold"}); !d.Allowed || !d.Counted {
		t.Errorf("built-in WSO2 tiers: %+v", d)
	}
	// A stored policy that does not parse leaves the last good one.
	e.Update(store.Event{KV: store.KV{Key: "two", Value: []byte("kind: ThrottlingPolicy\nname: two\nrate: lots\n")}})
	if p, ok := e.Policy("two"); !ok || p.Limit.Count != 2 {
		t.Errorf("a broken policy replaced the good one: %+v", p)
	}
}

func TestParsePolicyRejects(t *testing.T) {
	for _, doc := range []string{
		"kind: ThrottlingPolicy\nname: x\nrate: 10\n",
		"kind: ThrottlingPolicy\nname: x\nrate: 10/fortnight\n",
		"kind: ThrottlingPolicy\nname: x\nrate: 0/second\n",
		"kind: ThrottlingPolicy\nname: x\nrate: 10/second\nkey: nose\n",
		"kind: ThrottlingPolicy\nname: \"a b\"\nrate: 10/second\n",
		"kind: Other\nname: x\nrate: 10/second\n",
		"kind: ThrottlingPolicy\nname: x\nrate: 10/second\nburts: 3\n",
	} {
		if _, err := ParsePolicy([]byte(doc)); err == nil {
			t.Errorf("accepted %q", doc)
		}
	}
}

func BenchmarkLocalDecision(b *testing.B) {
	l := NewLocal()
	lim := Limit{Count: 1000000, Period: time.Second, Burst: 1000000}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("policy|application||client-%d", i)
		l.take(keys[i], lim, time.Now().UnixNano())
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.take(keys[i&1023], lim, time.Now().UnixNano())
		i++
	}
}

// Once Redis says no to a counter, requests against it are refused here until the retry
// time, without a round trip; after it, Redis decides again.
func TestRedisRemembersDenials(t *testing.T) {
	rd := tu.StartRedis(t)
	r := newRedis(t, rd.Addr, FallbackDeny)
	lim := Limit{Count: 2, Period: time.Second, Burst: 1}
	if res, _ := r.Take(context.Background(), "k", lim); !res.Allowed {
		t.Fatal("first")
	}
	res, _ := r.Take(context.Background(), "k", lim)
	if res.Allowed || res.RetryAfter <= 0 {
		t.Fatalf("second: %+v", res)
	}
	rd.Stop() // from here only the remembered "no" can answer without the fallback
	res, _ = r.Take(context.Background(), "k", lim)
	if res.Allowed || res.RetryAfter <= 0 || !r.Up() {
		t.Fatalf("a remembered denial must answer without Redis: %+v up=%v", res, r.Up())
	}
	rd.Start()
	time.Sleep(res.RetryAfter + 50*time.Millisecond)
	if res, _ := r.Take(context.Background(), "k", lim); !res.Allowed {
		t.Errorf("after the retry time Redis decides again: %+v", res)
	}
}

// BenchmarkEngineDecide is one request against an API policy and a resource policy with
// local counters: the engine's whole decision (counter keys, metrics, both steps).
func BenchmarkEngineDecide(b *testing.B) {
	e := NewEngine(NewLocal(), zap.NewNop(), nil)
	for _, doc := range []string{"kind: ThrottlingPolicy\nname: api\nrate: 1000000000/second\nburst: 1000000\n",
		"kind: ThrottlingPolicy\nname: op\nrate: 1000000000/second\nburst: 1000000\n"} {
		p, err := ParsePolicy([]byte(doc))
		if err != nil {
			b.Fatal(err)
		}
		e.Update(store.Event{KV: store.KV{Key: p.Name, Value: []byte(doc)}})
	}
	r := Request{API: "shop/v1", Operation: "GET /items", APIPolicy: "api", OpPolicy: "op", ClientID: "app"}
	b.ReportAllocs()
	for b.Loop() {
		if !e.Decide(context.Background(), r).Allowed {
			b.Fatal("denied")
		}
	}
}
