package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// mapSink mirrors a followed range in a map.
type mapSink struct {
	mu     sync.Mutex
	m      map[string]string
	resets int
}

func (s *mapSink) Reset(kvs []store.KV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resets++
	s.m = map[string]string{}
	for _, kv := range kvs {
		s.m[kv.Key] = string(kv.Value)
	}
}

func (s *mapSink) Update(ev store.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Deleted {
		delete(s.m, ev.Key)
	} else {
		s.m[ev.Key] = string(ev.Value)
	}
}

func (s *mapSink) get(k string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok
}

func (s *mapSink) resetCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resets
}

func TestFollowSeesExistingKeysThenChanges(t *testing.T) {
	e := testutil.StartEtcd(t)
	st := e.Store("/t/")
	ctx := t.Context()
	if _, err := st.Put(ctx, "endpoints/a", "1"); err != nil {
		t.Fatal(err)
	}
	sink := &mapSink{}
	var synced sync.Map
	go st.Follow(ctx, store.Endpoints, sink, func(ok bool) { synced.Store("last", ok) })
	testutil.Eventually(t, "initial read", func() bool { v, _ := sink.get("a"); return v == "1" })
	st.Put(ctx, "endpoints/b", "2")
	st.Put(ctx, "apis/x/v1", "not in range")
	testutil.Eventually(t, "put b", func() bool { v, _ := sink.get("b"); return v == "2" })
	if _, ok := sink.get("x/v1"); ok {
		t.Error("a key outside the range reached the sink")
	}
	st.Client().Delete(ctx, st.Prefix()+"endpoints/a")
	testutil.Eventually(t, "delete a", func() bool { _, ok := sink.get("a"); return !ok })
	if v, _ := synced.Load("last"); v != true {
		t.Error("state should be synced")
	}
}

func TestFollowResumesAfterEtcdRestartWithoutMissingChanges(t *testing.T) {
	e := testutil.StartEtcd(t)
	st := e.Store("/t/")
	ctx := t.Context()
	sink := &mapSink{}
	var stale sync.Map
	go st.Follow(ctx, store.Endpoints, sink, func(ok bool) {
		if !ok {
			stale.Store("seen", true)
		}
	})
	st.Put(ctx, "endpoints/a", "1")
	testutil.Eventually(t, "a", func() bool { v, _ := sink.get("a"); return v == "1" })

	e.Stop()
	// While etcd is down the sink keeps what it had.
	time.Sleep(300 * time.Millisecond)
	if v, _ := sink.get("a"); v != "1" {
		t.Fatal("state lost while etcd was down")
	}
	e.Start()
	// Changes made by another client right after the restart must all arrive.
	other := e.Store("/t/")
	for i := range 20 {
		if _, err := other.Put(ctx, fmt.Sprintf("endpoints/k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "all 20 keys after restart", func() bool {
		for i := range 20 {
			if _, ok := sink.get(fmt.Sprintf("k%d", i)); !ok {
				return false
			}
		}
		return true
	})
}

// A transaction's events share one revision: a follower applies all of them, not only the
// first (a multi-document apply to a running server once loaded only its first API).
func TestFollowAppliesEveryEventOfATransaction(t *testing.T) {
	e := testutil.StartEtcd(t)
	st := e.Store("/t/")
	ctx := t.Context()
	sink := &mapSink{}
	go st.Follow(ctx, store.APIs, sink, nil)
	testutil.Eventually(t, "initial read", func() bool { return sink.resetCount() > 0 })
	var docs []store.Doc
	for i := range 5 {
		docs = append(docs, store.Doc{Name: fmt.Sprintf("api%d", i), Version: "v1", Data: []byte(fmt.Sprintf("doc %d", i))})
	}
	if _, err := st.PutAPIs(ctx, docs); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "every document of the transaction", func() bool {
		for i := range docs {
			if v, _ := sink.get(fmt.Sprintf("api%d/v1", i)); v != fmt.Sprintf("doc %d", i) {
				return false
			}
		}
		return true
	})
}
