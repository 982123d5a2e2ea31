package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// The typed calls work below the prefix, with keys relative to it; a key written with a
// TTL is gone once its lease runs out.
func TestTypedCalls(t *testing.T) {
	e := testutil.StartEtcd(t)
	st := e.Store("/t")
	other := e.Store("/u") // another prefix: never seen by /t's calls
	ctx := t.Context()
	for _, k := range []string{"users/ann", "users/bob", "secrets/x"} {
		if _, err := st.Put(ctx, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.Put(ctx, "users/zed", "z"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := st.Get(ctx, "users/ann"); err != nil || !ok || string(v) != "v-users/ann" {
		t.Errorf("Get users/ann = %q %v %v", v, ok, err)
	}
	if _, ok, err := st.Get(ctx, "users/nobody"); err != nil || ok {
		t.Errorf("Get of an absent key: ok %v, %v", ok, err)
	}
	kvs, err := st.List(ctx, store.Users)
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	if err != nil || !slices.Equal(keys, []string{"users/ann", "users/bob"}) {
		t.Errorf("List users/ = %v %v", keys, err)
	}
	if n, _, err := st.Delete(ctx, "users/ann"); err != nil || n != 1 {
		t.Errorf("Delete users/ann = %d %v", n, err)
	}
	if n, _, err := st.Delete(ctx, "users/ann"); err != nil || n != 0 {
		t.Errorf("Delete of a deleted key = %d %v", n, err)
	}
	if n, _, err := st.DeletePrefix(ctx, "users/"); err != nil || n != 1 {
		t.Errorf("DeletePrefix users/ = %d %v", n, err)
	}
	if _, ok, _ := other.Get(ctx, "users/zed"); !ok {
		t.Error("a delete under /t removed a key under /u")
	}

	key, rev, err := st.PutTTL(ctx, "revoked/jti/a", "r", 2*time.Second)
	if err != nil || key != "/t/revoked/jti/a" || rev == 0 {
		t.Fatalf("PutTTL = %q %v", key, err)
	}
	if _, ok, _ := st.Get(ctx, "revoked/jti/a"); !ok {
		t.Error("a key with a TTL is not there right after")
	}
	testutil.Eventually(t, "the key gone after its TTL", func() bool { _, ok, _ := st.Get(ctx, "revoked/jti/a"); return !ok })
}
