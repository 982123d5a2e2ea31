package analytics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// BenchmarkIngest is one entry's cost as the service pays it: decoding its share of a
// 100-entry message, then counting it. ns/op is per entry.
func BenchmarkIngest(b *testing.B) {
	cat := catalog(&testing.T{})
	s := New(Config{}, cat, zap.NewNop(), prometheus.NewRegistry())
	msg := http("envoy-1")
	for i := range 100 {
		e := entry("shop/v1", "GET /items", []string{"app-a", "app-b", "app-c"}[i%3], "shop/v1 GET /items", 200, 600, 1400, 20*time.Millisecond, 15*time.Millisecond)
		msg.GetHttpLogs().LogEntry = append(msg.GetHttpLogs().LogEntry, e)
	}
	raw, err := proto.Marshal(msg)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw) / 100))
	b.ReportAllocs()
	b.ResetTimer()
	var (
		node string
		e    Entry
	)
	for i := 0; i < b.N; i += 100 {
		c := cat.Load()
		if _, err := readMessage(raw, &node, &e, func(e *Entry) { s.Take(c, node, e) }); err != nil {
			b.Fatal(err)
		}
	}
}
