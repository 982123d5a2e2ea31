package analytics

import (
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// BenchmarkIngest is one entry's cost as the service pays it: decoding its share of a
// 100-entry message, then counting it. ns/op is per entry.
func BenchmarkIngest(b *testing.B) { ingest(b, nil) }

// BenchmarkIngestLines also writes each entry's JSON line (to io.Discard).
func BenchmarkIngestLines(b *testing.B) { ingest(b, NewLines(io.Discard)) }

func ingest(b *testing.B, lines *Lines) {
	cat := catalog(&testing.T{})
	s := New(Config{Lines: lines}, cat, zap.NewNop(), prometheus.NewRegistry())
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
		e  Entry
		st = newStream()
	)
	for i := 0; i < b.N; i += 100 {
		c := cat.Load()
		if _, err := readMessage(raw, &st.node, &e, func(e *Entry) { s.Take(c, st, e) }); err != nil {
			b.Fatal(err)
		}
		s.m.totals.flush(st.b)
		if lines != nil {
			lines.write(st.lines)
			st.lines = st.lines[:0]
		}
	}
}
