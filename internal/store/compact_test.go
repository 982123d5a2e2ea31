package store

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"

	"go.uber.org/zap"
)

type countSink struct{ updates int }

func (c *countSink) Reset([]KV)   {}
func (c *countSink) Update(Event) { c.updates++ }

// A watch resuming from a compacted revision must say so, so that Follow reads the range
// again instead of silently missing what was compacted away.
func TestWatchFromCompactedRevisionAsksForReload(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedConfig{Dir: t.TempDir(), ClientAddr: lowAddr(t), PeerAddr: lowAddr(t), NoFsync: true}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st, err := Connect(Config{Endpoints: []string{srv.Endpoint}, Prefix: "/t/"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	r, err := st.cli.Put(ctx, "/t/endpoints/a", "1")
	if err != nil {
		t.Fatal(err)
	}
	old := r.Header.Revision
	st.cli.Put(ctx, "/t/endpoints/a", "2")
	r, _ = st.cli.Put(ctx, "/t/endpoints/b", "3")
	if _, err := st.cli.Compact(ctx, r.Header.Revision); err != nil {
		t.Fatal(err)
	}
	sink := &countSink{}
	_, compacted, _ := st.follower("endpoints/").watch(ctx, "/t/endpoints/", old, 0, sink, nil)
	if !compacted || sink.updates != 0 {
		t.Fatalf("compacted=%v updates=%d, want true and 0", compacted, sink.updates)
	}
}

// lowAddr is a free loopback address below 32768 (this package cannot use testutil, which
// imports it).
func lowAddr(t *testing.T) string {
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(10000+rand.IntN(22000)))
		if err == nil {
			defer l.Close()
			return l.Addr().String()
		}
	}
	t.Fatal("no free port below 32768")
	return ""
}
