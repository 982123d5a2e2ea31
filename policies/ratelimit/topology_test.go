package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
)

// Counters shared through a real Redis Cluster (three masters; counters spread over their
// slots, the script loaded on each) and through a Sentinel-watched master: two replicas
// together admit each counter's burst once, and a leased busy counter stays accurate.
func TestRedisClusterAndSentinel(t *testing.T) {
	cluster := tu.StartRedisCluster(t, 3)
	sentinel := tu.StartRedisSentinel(t, "tollgate")
	for _, topo := range []struct {
		name string
		cfg  RedisConfig
	}{
		{"cluster", RedisConfig{Addrs: cluster}},
		{"sentinel", RedisConfig{Addrs: []string{sentinel.Addr}, MasterName: "tollgate"}},
	} {
		t.Run(topo.name, func(t *testing.T) {
			replicas := []*Redis{startReplica(t, topo.cfg), startReplica(t, topo.cfg)}
			lim := Limit{Count: 100, Period: time.Minute, Burst: 20}
			admitted := make([]int, 20)
			var mu sync.Mutex
			var wg sync.WaitGroup
			start := time.Now()
			for i := range 8 {
				wg.Go(func() {
					for j := range 200 {
						res, _ := replicas[(i+j)%2].Take(context.Background(), fmt.Sprintf("%s-%d", topo.name, j%20), lim)
						if res.Allowed {
							mu.Lock()
							admitted[j%20]++
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			most := 20 + int(time.Since(start).Seconds()*100/60) + 1
			for k, n := range admitted {
				if n < 20 || n > most {
					t.Errorf("counter %d: two replicas admitted %d of 80, want the shared burst of 20 (at most %d)", k, n, most)
				}
			}
			for _, r := range replicas {
				if !r.Up() {
					t.Error("a replica fell back: Redis was not reached")
				}
			}
			accuracy(t, func(key string, lim Limit) bool {
				res, _ := replicas[time.Now().Nanosecond()%2].Take(context.Background(), topo.name+"-"+key, lim)
				return res.Allowed
			}, Limit{Count: 5000, Period: time.Second, Burst: 500}, 8, 2*time.Second)
		})
	}
	// The cluster's counters really are spread over its masters.
	used := 0
	for _, a := range cluster {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		if n, _ := c.DBSize(context.Background()).Result(); n > 0 {
			used++
		}
		c.Close()
	}
	if used < 2 {
		t.Errorf("counters landed on %d of 3 cluster masters", used)
	}
}

func startReplica(t *testing.T, cfg RedisConfig) *Redis {
	r, _ := runRedis(t, cfg)
	return r
}

// Redis over TLS: with the server's CA the counters are shared; a server the enforcer
// cannot verify (or plain TCP to a TLS port) is never used — the fallback decides.
func TestRedisTLS(t *testing.T) {
	addr, caFile := tu.StartRedisTLS(t)
	trusted, err := tlsfiles.Client(caFile, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	lim := Limit{Count: 100, Period: time.Minute, Burst: 2}
	// A fresh TLS connection's first exchanges with Debian's redis-server sometimes take
	// ~50 ms (the default timeout) here; the README advises a longer timeout with TLS.
	cfg := RedisConfig{Addrs: []string{addr}, TLS: trusted, Timeout: 250 * time.Millisecond}
	a, b := startReplica(t, cfg), startReplica(t, cfg)
	for i, r := range []*Redis{a, b, a} {
		res, _ := r.Take(context.Background(), "tls", lim)
		if res.Allowed != (i < 2) || !r.Up() {
			t.Fatalf("take %d over TLS: %+v, up %v", i+1, res, r.Up())
		}
	}
	systemRoots, _ := tlsfiles.Client("", "", "", "")
	for name, cfg := range map[string]RedisConfig{
		"unknown CA": {Addrs: []string{addr}, TLS: systemRoots, Fallback: FallbackDeny},
		"plain TCP":  {Addrs: []string{addr}, Fallback: FallbackDeny},
	} {
		r := startReplica(t, cfg)
		start := time.Now()
		res, _ := r.Take(context.Background(), "tls-"+name, lim)
		if res.Allowed || r.Up() {
			t.Errorf("%s: allowed %v, up %v: an unverified Redis was used", name, res.Allowed, r.Up())
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("%s: the decision took %v", name, d)
		}
	}
}

// When the master dies the Sentinel promotes its replica: requests fall back meanwhile,
// none waits past the timeout, and shared counting resumes on the new master.
func TestRedisSentinelFailover(t *testing.T) {
	sentinel := tu.StartRedisSentinel(t, "failover")
	r := startReplica(t, RedisConfig{Addrs: []string{sentinel.Addr}, MasterName: "failover"})
	lim := Limit{Count: 1000, Period: time.Second, Burst: 100}
	if res, _ := r.Take(context.Background(), "k", lim); !res.Allowed || !r.Up() {
		t.Fatal("before the failover")
	}
	sentinel.KillMaster()
	var slowest time.Duration
	sawDown := false
	tu.Eventually(t, "counting resumes on the promoted replica", func() bool {
		start := time.Now()
		r.Take(context.Background(), "k", lim)
		slowest = max(slowest, time.Since(start))
		sawDown = sawDown || !r.Up()
		return sawDown && r.Up()
	})
	if slowest > 250*time.Millisecond {
		t.Errorf("a request waited %v during the failover (timeout 50ms)", slowest)
	}
	t.Logf("slowest request during the failover: %v", slowest)
}
