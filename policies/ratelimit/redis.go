package ratelimit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/defaults"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// gcraScript is GCRA in one atomic step on Redis, on Redis's own clock (so replicas need not
// agree on time), in microseconds. KEYS[1] the counter; ARGV emission and tolerance (µs),
// the units wanted (1 for one request, more for a lease, 0 to only give back) and the
// units given back (a lease's unused rest). It grants as many of the wanted units as the
// counter allows. Returns {granted, remaining, reset µs, retry-after µs}.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local back = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if back > 0 then tat = tat - back * emission end
if tat < now then tat = now end
local avail = math.floor((tolerance - (tat - now)) / emission) + 1
if want == 0 or avail < 1 then
  if back > 0 then
    if tat > now then
      redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
    else
      redis.call('DEL', KEYS[1])
    end
  end
  if want == 0 then return {0, 0, 0, 0} end
  return {0, 0, tat - now, tat - tolerance - now}
end
local n = math.min(want, avail)
local nxt = tat + n * emission
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
local remaining = math.floor((tolerance + emission - (nxt - now)) / emission)
if remaining < 0 then remaining = 0 end
return {n, remaining, nxt - now, 0}
`)

// Fallback is what Redis mode does while Redis cannot be reached.
type Fallback string

// The fallback modes.
const (
	FallbackLocal Fallback = "local" // count in this process until Redis is back (default)
	FallbackAllow Fallback = "allow"
	FallbackDeny  Fallback = "deny"
)

// RedisConfig configures the Redis backend.
type RedisConfig struct {
	// Addrs: one address for a standalone server, several for a Cluster; with MasterName
	// they are Sentinels.
	Addrs      []string
	MasterName string
	Username   string
	Password   string
	DB         int
	TLS        *tls.Config // nil: plain TCP
	// Timeout bounds every Redis call (default 50ms): a request never waits longer on Redis.
	Timeout  time.Duration
	Fallback Fallback
	// Retry is how long after a failure Redis is left alone before it is tried again
	// (default 1s); meanwhile the fallback decides without waiting.
	Retry  time.Duration
	Prefix string // key prefix (default "tollgate:rl:")
	// Lease lets an enforcer take several of a busy counter's units from Redis at once and
	// hand them out itself for at most this long; what it has not used by then goes back.
	// A lease never holds more than Lease's worth of the policy's rate nor more than a
	// quarter of its burst, so a counter with a small rate or burst is asked per request.
	// 0 means the default (100ms); negative turns leases off (one Redis step per request).
	Lease time.Duration
}

// Redis counts in Redis, shared by every enforcer; when Redis is away it falls back.
type Redis struct {
	cfg       RedisConfig
	client    redis.UniversalClient
	local     *Local
	log       *zap.Logger
	downUntil atomic.Int64
	down      atomic.Bool
	running   atomic.Bool
	queue     chan *pending
	// over remembers counters Redis said no to, until their retry time: a flood against a
	// throttled key is refused here without a round trip. Exact, since a counter's time
	// only moves forward.
	over         [64]overShard
	seed         maphash.Seed
	leases       [64]leaseShard
	fallbacks    *prometheus.CounterVec
	state        prometheus.Gauge
	localDenials prometheus.Counter
	leased       prometheus.Counter
	returned     prometheus.Counter
}

// clientLog routes go-redis's own messages (Sentinel failovers, pool trouble) into the
// structured log, once per process: go-redis has one logger for all its clients.
var clientLog sync.Once

type zapPrintf struct{ log *zap.Logger }

func (z zapPrintf) Printf(_ context.Context, format string, v ...any) {
	z.log.Info(fmt.Sprintf(format, v...))
}

// NewRedis connects to Redis (waiting at most four timeouts: an unreachable Redis is tried
// again by the requests); reg (may be nil) gets its metrics.
func NewRedis(cfg RedisConfig, log *zap.Logger, reg prometheus.Registerer) (*Redis, error) {
	clientLog.Do(func() { redis.SetLogger(zapPrintf{log.Named("go-redis")}) })
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("redis: no address")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaults.RedisTimeout
	}
	if cfg.Retry == 0 {
		cfg.Retry = defaults.RedisRetry
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "tollgate:rl:"
	}
	if cfg.Lease == 0 {
		cfg.Lease = defaults.RedisLease
	}
	switch cfg.Fallback {
	case "":
		cfg.Fallback = FallbackLocal
	case FallbackLocal, FallbackAllow, FallbackDeny:
	default:
		return nil, fmt.Errorf("redis fallback %q must be local, allow or deny", cfg.Fallback)
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: cfg.Addrs, MasterName: cfg.MasterName, Username: cfg.Username, Password: cfg.Password, DB: cfg.DB, TLSConfig: cfg.TLS,
		DialTimeout: cfg.Timeout * 4, ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout,
		PoolTimeout: cfg.Timeout, MaxRetries: -1, ContextTimeoutEnabled: true,
	})
	r := &Redis{cfg: cfg, client: client, local: NewLocal(), log: log, queue: make(chan *pending, 1024),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_ratelimit_redis_fallbacks_total", Help: "Decisions made by the fallback while Redis was unreachable, by mode."}, []string{"mode"}),
		state:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_ratelimit_redis_up", Help: "1 while Redis answers, 0 while the fallback decides."}),
		localDenials: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_ratelimit_redis_remembered_denials_total",
			Help: "Requests against a counter Redis had said no to, refused here until its retry time without asking Redis."}),
		leased: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_ratelimit_redis_leased_decisions_total",
			Help: "Requests admitted from units this enforcer had leased from Redis, without a round trip."}),
		returned: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_ratelimit_redis_returned_units_total",
			Help: "Leased units given back to Redis unused when their lease ended."}),
		seed: maphash.MakeSeed(),
	}
	for i := range r.leases {
		r.leases[i].m, r.leases[i].holding = map[string]*lease{}, map[string]*lease{}
	}
	r.state.Set(1)
	if reg != nil {
		reg.MustRegister(r.fallbacks, r.state, r.localDenials, r.leased, r.returned)
	}
	r.warmUp(context.Background())
	return r, nil
}

// Client is the Redis connection, for others that share this Redis (the DPoP replay cache).
func (r *Redis) Client() redis.UniversalClient { return r.client }

// Close closes the Redis client.
func (r *Redis) Close() error { return r.client.Close() }

// Up reports whether Redis answered the last call.
func (r *Redis) Up() bool { return !r.down.Load() }

// Local is the fallback's counters, for eviction by its Run.
func (r *Redis) Local() *Local { return r.local }

// Take counts one request against key in Redis, or in the fallback while Redis is away.
// A busy counter is served from a lease (see RedisConfig.Lease). While Run is running,
// concurrent Redis calls are sent together in one pipeline: a burst of decisions costs one
// round trip, and a lone one is sent at once.
func (r *Redis) Take(ctx context.Context, key string, lim Limit) (Result, error) {
	if r.leaseCap(lim) > 1 {
		return r.takeLeased(ctx, key, lim), nil
	}
	now := time.Now()
	if res, ok := r.early(key, lim, now); ok {
		return res, nil
	}
	res, _, err := r.call(ctx, key, lim, 1, 0)
	return r.settle(res, err, key, lim, now), nil
}

// early answers without asking Redis when it can: the fallback while Redis is away, and a
// refusal Redis gave for the counter until its retry time.
func (r *Redis) early(key string, lim Limit, now time.Time) (Result, bool) {
	ns := now.UnixNano()
	if ns < r.downUntil.Load() {
		return r.fallback(key, lim, now), true
	}
	if wait, over := r.overLimit(key, ns); over {
		r.localDenials.Inc()
		return Result{RetryAfter: wait, Reset: wait}, true
	}
	return Result{}, false
}

// call runs the script for key: want units, back units given back. It returns the answer
// and the units granted.
func (r *Redis) call(ctx context.Context, key string, lim Limit, want, back int) (Result, int, error) {
	if r.running.Load() {
		p := pendingPool.Get().(*pending)
		p.key, p.lim, p.want, p.back = key, lim, want, back
		select {
		case r.queue <- p:
			<-p.done // the batch always answers, within its deadline
			res, granted, err := p.res, p.granted, p.err
			pendingPool.Put(p)
			return res, granted, err
		default:
			pendingPool.Put(p) // the queue is full: call on our own
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	return parse(gcraScript.Run(ctx, r.client, []string{r.cfg.Prefix + key}, args(lim, want, back)...))
}

// settle turns a Redis answer into a decision, falling back on an error.
func (r *Redis) settle(res Result, err error, key string, lim Limit, now time.Time) Result {
	if !r.note(res, err, key, now) {
		return r.fallback(key, lim, now)
	}
	return res
}

// note keeps track of Redis's health and remembers a refusal; it reports whether there
// was an answer. A request that was itself cancelled says nothing about Redis.
func (r *Redis) note(res Result, err error, key string, now time.Time) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if err != nil {
		r.downUntil.Store(now.Add(r.cfg.Retry).UnixNano())
		if !r.down.Swap(true) {
			r.state.Set(0)
			r.log.Error("Redis unreachable: throttling falls back", zap.String("fallback", string(r.cfg.Fallback)), zap.Error(err))
		}
		return false
	}
	if r.down.Swap(false) {
		r.state.Set(1)
		r.log.Info("Redis is back: shared throttling resumes")
	}
	if !res.Allowed && res.RetryAfter > 0 {
		r.rememberOver(key, now.Add(res.RetryAfter).UnixNano())
	}
	return true
}

func args(lim Limit, want, back int) []any {
	return []any{max(lim.emission().Microseconds(), 1), lim.tolerance().Microseconds(), want, back}
}

func parse(c *redis.Cmd) (Result, int, error) {
	v, err := c.Int64Slice()
	if err == nil && len(v) != 4 {
		err = fmt.Errorf("unexpected script answer %v", v)
	}
	if err != nil {
		return Result{}, 0, err
	}
	return Result{Allowed: v[0] > 0, Remaining: int(v[1]), Reset: time.Duration(v[2]) * time.Microsecond,
		RetryAfter: time.Duration(v[3]) * time.Microsecond}, int(v[0]), nil
}

type overShard struct {
	mu sync.Mutex
	m  map[string]int64 // key → until (unix ns)
}

// overLimit reports a remembered "no" for key at now.
func (r *Redis) overLimit(key string, now int64) (time.Duration, bool) {
	s := &r.over[maphash.String(r.seed, key)%uint64(len(r.over))]
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.m[key]
	if !ok {
		return 0, false
	}
	if now >= until {
		delete(s.m, key)
		return 0, false
	}
	return time.Duration(until - now), true
}

func (r *Redis) rememberOver(key string, until int64) {
	s := &r.over[maphash.String(r.seed, key)%uint64(len(r.over))]
	s.mu.Lock()
	if s.m == nil || len(s.m) > 100000 {
		s.m = map[string]int64{}
	}
	s.m[key] = until
	s.mu.Unlock()
}

// pending is one decision waiting for its batch.
type pending struct {
	key        string
	lim        Limit
	want, back int
	res        Result
	granted    int
	err        error
	done       chan struct{}
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// Run batches concurrent decisions into pipelines until ctx ends, and gives back the
// unused units of ended leases. Several batchers work at once, so one pipeline's round
// trip does not hold up the next.
func (r *Redis) Run(ctx context.Context) {
	r.running.Store(true)
	defer r.running.Store(false)
	var wg sync.WaitGroup
	for range batchers {
		wg.Go(func() { r.batch(ctx) })
	}
	wg.Go(func() { r.runLeases(ctx) })
	wg.Wait()
}

const batchers = 4

// warmUp loads the script (on every shard of a Cluster) and opens the connections the
// batchers will use, each with a first exchange, within the dial timeout: the first
// requests should not pay for TCP and TLS handshakes (a fresh TLS connection's first
// exchange took ~50 ms here, the whole default timeout).
func (r *Redis) warmUp(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout*4)
	defer cancel()
	if err := gcraScript.Load(wctx, r.client).Err(); err != nil {
		r.log.Warn("Redis did not answer at start; requests will try it and fall back meanwhile", zap.Error(err))
		return
	}
	ping := func() { r.client.Ping(wctx) }
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		ping = func() {
			cc.ForEachShard(wctx, func(ctx context.Context, c *redis.Client) error { return c.Ping(ctx).Err() })
		}
	}
	var wg sync.WaitGroup
	for range batchers + 1 {
		wg.Go(ping) // concurrent, so each takes a connection of its own
	}
	wg.Wait()
}

func (r *Redis) batch(ctx context.Context) {
	batch := make([]*pending, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			// Answer whoever is still queued; they fall back.
			for {
				select {
				case p := <-r.queue:
					p.err = ctx.Err()
					p.done <- struct{}{}
				default:
					return
				}
			}
		case p := <-r.queue:
			batch = append(batch[:0], p)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-r.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		r.exec(ctx, batch)
	}
}

const maxBatch = 128

// exec runs one pipeline of script calls, loading the script once if Redis lacks it.
func (r *Redis) exec(ctx context.Context, batch []*pending) {
	for attempt := 0; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		pipe := r.client.Pipeline()
		cmds := make([]*redis.Cmd, len(batch))
		for i, p := range batch {
			cmds[i] = gcraScript.EvalSha(tctx, pipe, []string{r.cfg.Prefix + p.key}, args(p.lim, p.want, p.back)...)
		}
		_, err := pipe.Exec(tctx)
		cancel()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") && attempt == 0 {
			lctx, lcancel := context.WithTimeout(ctx, r.cfg.Timeout)
			err = gcraScript.Load(lctx, r.client).Err()
			lcancel()
			if err == nil {
				continue
			}
		}
		for i, p := range batch {
			p.res, p.granted, p.err = parse(cmds[i])
			if p.err == nil && err != nil && cmds[i].Err() == nil {
				p.err = err
			}
			p.done <- struct{}{}
		}
		return
	}
}

func (r *Redis) fallback(key string, lim Limit, now time.Time) Result {
	r.fallbacks.WithLabelValues(string(r.cfg.Fallback)).Inc()
	switch r.cfg.Fallback {
	case FallbackAllow:
		return Result{Allowed: true, Remaining: max(lim.Burst, 1) - 1}
	case FallbackDeny:
		return Result{RetryAfter: r.cfg.Retry, Unavailable: true}
	}
	return r.local.take(key, lim, now.UnixNano())
}
