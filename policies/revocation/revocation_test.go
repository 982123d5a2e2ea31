package revocation

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/store"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// replica is one enforcer's revocation set, following etcd until stopped.
type replica struct {
	set  *Set
	stop context.CancelFunc
}

func follow(t *testing.T, st *store.Store) *replica {
	ctx, cancel := context.WithCancel(t.Context())
	s := New(zap.NewNop(), nil)
	go st.Follow(ctx, store.Revoked, s, nil)
	return &replica{set: s, stop: cancel}
}

func revoke(t *testing.T, st *store.Store, r Request) {
	t.Helper()
	kind, id, rec, err := r.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Revoke(t.Context(), st, kind, id, rec); err != nil {
		t.Fatal(err)
	}
}

func TestRevocationReachesEveryReplicaAndSurvivesRestart(t *testing.T) {
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	a, b := follow(t, st), follow(t, st)
	tok := Token{ID: "jti-1", Subject: "alice", IssuedAt: time.Now()}
	if a.set.Revoked(tok) {
		t.Fatal("revoked before anything was written")
	}
	start := time.Now()
	revoke(t, st, Request{JTI: "jti-1", Until: time.Now().Add(time.Hour)})
	tu.Eventually(t, "both replicas deny", func() bool { return a.set.Revoked(tok) && b.set.Revoked(tok) })
	t.Logf("revocation reached both replicas in %v", time.Since(start))

	// A replica restarted (or started later) loads the list and still denies.
	a.stop()
	c := follow(t, st)
	tu.Eventually(t, "restarted replica denies", func() bool { return c.set.Revoked(tok) })
	if c.set.Revoked(Token{ID: "jti-2"}) {
		t.Error("an unrelated token is revoked")
	}
}

func TestSubjectClientAndHashRevocations(t *testing.T) {
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	r := follow(t, st)
	now := time.Now()
	revoke(t, st, Request{Subject: "mallory", IssuedBefore: now})
	revoke(t, st, Request{ClientID: "leaky-app", IssuedBefore: now})
	revoke(t, st, Request{Token: "opaque-token-value", Until: now.Add(time.Hour)})
	tu.Eventually(t, "three records", func() bool { return r.set.Len() == 3 })
	cases := []struct {
		tok  Token
		want bool
	}{
		{Token{ID: "a", Subject: "mallory", IssuedAt: now.Add(-time.Minute)}, true},
		{Token{ID: "b", Subject: "mallory", IssuedAt: now.Add(time.Minute)}, false}, // issued after: a fresh login
		{Token{ID: "c", ClientID: "leaky-app", IssuedAt: now.Add(-time.Second)}, true},
		{Token{ID: "d", Subject: "alice", ClientID: "good-app", IssuedAt: now.Add(-time.Hour)}, false},
		{Token{Hash: hashOf("opaque-token-value")}, true},
		{Token{Hash: hashOf("another")}, false},
	}
	for i, c := range cases {
		if got := r.set.Revoked(c.tok); got != c.want {
			t.Errorf("case %d %+v: revoked=%v, want %v", i, c.tok, got, c.want)
		}
	}
}

func TestLeaseEndsTheRecordAtTokenExpiry(t *testing.T) {
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	r := follow(t, st)
	revoke(t, st, Request{JTI: "short", Until: time.Now().Add(2 * time.Second)})
	tu.Eventually(t, "revoked", func() bool { return r.set.Revoked(Token{ID: "short"}) })
	tu.Eventually(t, "lease expiry removes the key", func() bool {
		resp, err := st.Client().Get(t.Context(), st.Prefix()+store.Revoked+"jti/short")
		return err == nil && resp.Count == 0
	})
	tu.Eventually(t, "the set forgets it", func() bool { return !r.set.Revoked(Token{ID: "short"}) })
}

func TestNothingMissedAcrossAnEtcdRestart(t *testing.T) {
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	r := follow(t, st)
	for i := range 10 {
		revoke(t, st, Request{JTI: fmt.Sprintf("before-%d", i), Until: time.Now().Add(time.Hour)})
	}
	tu.Eventually(t, "first ten", func() bool { return r.set.Len() == 10 })
	e.Stop()
	time.Sleep(200 * time.Millisecond)
	if !r.set.Revoked(Token{ID: "before-3"}) {
		t.Fatal("the list was lost while etcd was down")
	}
	e.Start()
	other := e.Store("/tollgate/")
	for i := range 40 {
		revoke(t, other, Request{JTI: fmt.Sprintf("after-%d", i), Until: time.Now().Add(time.Hour)})
	}
	tu.Eventually(t, "all fifty after the restart", func() bool { return r.set.Len() == 50 })
}

// A full reload (start, or a compacted watch revision) replaces the set: records deleted
// while the watch was not looking are gone, new ones are there.
func TestResetReplacesEverything(t *testing.T) {
	s := New(zap.NewNop(), nil)
	s.Update(store.Event{KV: store.KV{Key: "jti/old"}})
	s.Reset([]store.KV{{Key: "jti/new"}, {Key: "subject/bob", Value: []byte(`{"issuedBefore":"2030-01-01T00:00:00Z","until":"2030-01-02T00:00:00Z"}`)}})
	if s.Revoked(Token{ID: "old"}) || !s.Revoked(Token{ID: "new"}) || !s.Revoked(Token{ID: "x", Subject: "bob", IssuedAt: time.Now()}) {
		t.Error("reset did not replace the set")
	}
	// Malformed records are ignored, the rest stands.
	s.Update(store.Event{KV: store.KV{Key: "subject/eve", Value: []byte("garbage")}})
	s.Update(store.Event{KV: store.KV{Key: "nonsense"}})
	if s.Len() != 2 {
		t.Errorf("len %d after malformed records", s.Len())
	}
}

func TestResolveRefusesAmbiguousOrExpired(t *testing.T) {
	for _, r := range []Request{
		{},
		{JTI: "a", Subject: "b", Until: time.Now().Add(time.Hour)},
		{JTI: "a"},        // no until
		{Subject: "b"},    // no issuedBefore
		{Token: "opaque"}, // opaque token without until
		{ClientID: "c", IssuedBefore: time.Now(), Until: time.Now().Add(-time.Hour)}, // resolves, but Revoke refuses a past until
	} {
		kind, id, rec, err := r.Resolve()
		if err == nil {
			_, _, err = Revoke(t.Context(), nil, kind, id, rec)
		}
		if err == nil {
			t.Errorf("accepted %+v", r)
		}
	}
}

func BenchmarkRevokedWith100kEntries(b *testing.B) {
	s := New(zap.NewNop(), nil)
	kvs := make([]store.KV, 100000)
	for i := range kvs {
		kvs[i] = store.KV{Key: fmt.Sprintf("jti/token-%d", i)}
	}
	s.Reset(kvs)
	tok := Token{ID: "not-revoked-jti", Subject: "alice", ClientID: "app", IssuedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if s.Revoked(tok) {
			b.Fatal("revoked")
		}
	}
}

func TestAdminEndpoint(t *testing.T) {
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	r := follow(t, st)
	srv := tu.NewHTTPServer(t, Handler(st, []byte("s3cret-admin-token")))
	defer srv.Close()
	post := func(auth, body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	until := time.Now().Add(time.Hour).Format(time.RFC3339)
	if c := post("", `{"jti":"x","until":"`+until+`"}`); c != 401 {
		t.Errorf("no token: %d", c)
	}
	if c := post("wrong", `{"jti":"x","until":"`+until+`"}`); c != 401 {
		t.Errorf("wrong token: %d", c)
	}
	if c := post("s3cret-admin-token", `{"jti":"x","unknownField":1}`); c != 400 {
		t.Errorf("unknown field: %d", c)
	}
	if c := post("s3cret-admin-token", `{"jti":"x"}`); c != 400 {
		t.Errorf("no until: %d", c)
	}
	if c := post("s3cret-admin-token", `{"jti":"x","until":"`+until+`","reason":"leaked"}`); c != 200 {
		t.Fatalf("good request: %d", c)
	}
	tu.Eventually(t, "revoked through the endpoint", func() bool { return r.set.Revoked(Token{ID: "x"}) })
	if off := tu.NewHTTPServer(t, Handler(st, nil)); true {
		defer off.Close()
		resp, _ := http.Post(off.URL, "application/json", strings.NewReader(`{}`))
		if resp.StatusCode != 401 {
			t.Errorf("without a configured admin token the endpoint must refuse: %d", resp.StatusCode)
		}
	}
}

// An enforcer cut off from etcd while revocations happen and the history is compacted
// resumes, finds its revision compacted, reloads the whole list, and misses nothing —
// including a revocation deleted meanwhile, which it drops.
func TestCompactionWhileAwayForcesAFullReload(t *testing.T) {
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	proxy := tu.NewProxy(t, strings.TrimPrefix(e.Endpoint(), "http://"))
	away, err := store.Connect(store.Config{Endpoints: []string{proxy.Addr()}, Prefix: "/tollgate/", DialTimeout: time.Second, RequestTimeout: time.Second}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer away.Close()
	set := New(zap.NewNop(), nil)
	go away.Follow(t.Context(), store.Revoked, set, nil)
	revoke(t, st, Request{JTI: "early", Until: time.Now().Add(time.Hour)})
	revoke(t, st, Request{JTI: "to-delete", Until: time.Now().Add(time.Hour)})
	tu.Eventually(t, "first two", func() bool { return set.Len() == 2 })
	reloads := set.reset

	proxy.Cut()
	for i := range 20 {
		revoke(t, st, Request{JTI: fmt.Sprintf("while-away-%d", i), Until: time.Now().Add(time.Hour)})
	}
	st.Client().Delete(t.Context(), st.Prefix()+store.Revoked+"jti/to-delete")
	r, _ := st.Client().Get(t.Context(), "x")
	if _, err := st.Client().Compact(t.Context(), r.Header.Revision); err != nil {
		t.Fatal(err)
	}
	proxy.Restore()
	tu.Eventually(t, "caught up after compaction", func() bool {
		return set.Len() == 21 && set.Revoked(Token{ID: "while-away-19"}) && !set.Revoked(Token{ID: "to-delete"})
	})
	if got := testutilCounter(reloads); got < 2 {
		t.Errorf("full reloads: %v, want the start plus one after compaction", got)
	}
}

func testutilCounter(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}
