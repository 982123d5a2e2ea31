package store_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// connectVia connects a store through addr with a local copy in dir.
func connectVia(t *testing.T, addr, dir string, log *zap.Logger) *store.Store {
	t.Helper()
	st, err := store.Connect(store.Config{Endpoints: []string{addr}, Prefix: "/t/", DialTimeout: time.Second, RequestTimeout: time.Second,
		CacheDir: dir, ProgressInterval: 200 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// follow runs Follow until the test ends (or until stop is called).
func follow(t *testing.T, st *store.Store, rel string, sink store.Sink) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { st.Follow(ctx, rel, sink, nil); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// A process that starts while etcd is away serves the copy it wrote when it was in step,
// says so, and catches up from the copy's revision when etcd returns: a change made
// meanwhile arrives without a second full read.
func TestStartWithEtcdAwayServesTheLocalCopyThenCatchesUp(t *testing.T) {
	e := testutil.StartEtcd(t)
	direct := e.Store("/t/")
	ctx := t.Context()
	direct.Put(ctx, "endpoints/a", "1")
	direct.Put(ctx, "endpoints/b", "2")
	cache := t.TempDir()
	proxy := testutil.NewProxy(t, strings.TrimPrefix(e.Endpoint(), "http://"))

	first := connectVia(t, proxy.Addr(), cache, zap.NewNop())
	sink := &mapSink{}
	stop := follow(t, first, store.Endpoints, sink)
	testutil.Eventually(t, "in step", func() bool { return first.Status(store.Endpoints).InStep })
	path := store.CopyPath(cache, store.Endpoints)
	testutil.Eventually(t, "copy written", func() bool { _, err := os.Stat(path); return err == nil })
	stop()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("copy mode %v, want 0600", fi.Mode().Perm())
	}

	proxy.Cut()
	direct.Put(ctx, "endpoints/c", "3") // while the restarted process cannot reach etcd
	direct.Client().Delete(ctx, "/t/endpoints/a")
	second := connectVia(t, proxy.Addr(), cache, zap.NewNop())
	again := &mapSink{}
	follow(t, second, store.Endpoints, again)
	testutil.Eventually(t, "the copy served", func() bool { v, _ := again.get("b"); return v == "2" })
	if v, _ := again.get("a"); v != "1" {
		t.Errorf("copy lacks a: %q", v)
	}
	st := second.Status(store.Endpoints)
	if st.InStep || !st.FromCopy || !st.Loaded {
		t.Errorf("status %+v, want loaded from the copy and not in step", st)
	}
	if err := second.Ready(store.Endpoints); err == nil || !strings.Contains(err.Error(), "local copy") {
		t.Errorf("readiness: %v", err)
	}

	proxy.Restore()
	testutil.Eventually(t, "caught up", func() bool {
		_, hasA := again.get("a")
		v, _ := again.get("c")
		return v == "3" && !hasA && second.Status(store.Endpoints).InStep
	})
	if n := again.resetCount(); n != 1 {
		t.Errorf("%d full loads, want only the one from the copy (the rest by resuming the watch)", n)
	}
}

// A copy written against another etcd cluster is not resumed from: the range is read again.
func TestCopyOfAnotherClusterIsReadAgain(t *testing.T) {
	cache := t.TempDir()
	one := testutil.StartEtcd(t)
	st := connectVia(t, strings.TrimPrefix(one.Endpoint(), "http://"), cache, zap.NewNop())
	for _, k := range []string{"x", "y", "z"} {
		st.Put(t.Context(), "endpoints/"+k, "old")
	}
	stop := follow(t, st, store.Endpoints, &mapSink{})
	testutil.Eventually(t, "copy written", func() bool {
		_, err := os.Stat(store.CopyPath(cache, store.Endpoints))
		return err == nil && st.Status(store.Endpoints).InStep
	})
	stop()
	one.Stop()

	// A new, empty cluster whose client address the proxy will lead to once it is up.
	other := testutil.StartEtcd(t)
	proxy := testutil.NewProxy(t, strings.TrimPrefix(other.Endpoint(), "http://"))
	proxy.Cut()
	st2 := connectVia(t, proxy.Addr(), cache, zap.NewNop())
	sink := &mapSink{}
	follow(t, st2, store.Endpoints, sink)
	testutil.Eventually(t, "copy served", func() bool { v, _ := sink.get("x"); return v == "old" })
	other.Store("/t/").Put(t.Context(), "endpoints/new", "1")
	proxy.Restore()
	testutil.Eventually(t, "the other cluster's state", func() bool {
		_, x := sink.get("x")
		v, _ := sink.get("new")
		return !x && v == "1" && st2.Status(store.Endpoints).InStep
	})
}

// Readiness follows etcd on a quiet range: stale within a few progress intervals after etcd
// goes, in step within about a second of its return with nothing written; one log line when
// the range is lost and one when it is back, however long the outage.
func TestQuietRangeReadinessFollowsEtcd(t *testing.T) {
	e := testutil.StartEtcd(t)
	core, logs := observer.New(zap.InfoLevel)
	st := connectVia(t, strings.TrimPrefix(e.Endpoint(), "http://"), "", zap.New(core))
	var transitions atomic.Int32
	go st.Follow(t.Context(), store.Policies, &mapSink{}, func(bool) { transitions.Add(1) })
	testutil.Eventually(t, "in step", func() bool { return st.Ready(store.Policies) == nil })

	e.Stop()
	testutil.Eventually(t, "stale while etcd is away", func() bool { return st.Ready(store.Policies) != nil })
	time.Sleep(3 * time.Second) // an outage long enough for many retries
	e.Start()
	back := time.Now()
	testutil.Eventually(t, "in step again", func() bool { return st.Ready(store.Policies) == nil })
	if d := time.Since(back); d > 2*time.Second {
		t.Errorf("back in step %v after etcd returned, want < 2s", d)
	}
	lost := logs.FilterMessageSnippet("not in step").Len()
	again := logs.FilterMessageSnippet("back in step").Len()
	if lost != 1 || again != 1 {
		for _, l := range logs.All() {
			t.Log(l.Message, l.ContextMap())
		}
		t.Errorf("%d lost and %d back lines, want 1 and 1", lost, again)
	}
}
