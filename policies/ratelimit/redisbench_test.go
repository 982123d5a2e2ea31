package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// BenchmarkRedisDecision is one decision through a real redis-server on loopback, from
// parallel callers over 200 busy counters, with the pipelining batcher running: served
// from leases, as by default.
func BenchmarkRedisDecision(b *testing.B) { benchRedis(b, 0) }

// BenchmarkRedisDecisionRoundTrip is the same with leases off: a Redis step per decision.
func BenchmarkRedisDecisionRoundTrip(b *testing.B) { benchRedis(b, -1) }

func benchRedis(b *testing.B, lease time.Duration) {
	rd := tu.StartRedis(b)
	r, err := NewRedis(RedisConfig{Addrs: []string{rd.Addr}, Timeout: 100 * time.Millisecond, Lease: lease}, zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	go r.Run(b.Context())
	lim := Limit{Count: 1000000, Period: time.Second, Burst: 100000}
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench|ip||10.0.0.%d", i)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, _ := r.Take(context.Background(), keys[n.Add(1)%200], lim)
			if !res.Allowed {
				b.Fatal("denied")
			}
		}
	})
}
