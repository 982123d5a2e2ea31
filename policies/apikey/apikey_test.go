package apikey

import (
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-gw/tollgate/internal/store"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

func TestCreateListRevokeThroughEtcd(t *testing.T) {
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	set := NewSet()
	go st.Follow(t.Context(), store.APIKeys, set, nil)
	key, rec, err := Create(t.Context(), st, "shop-app", []string{"coffeebar/v1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "tg_") || len(key) < 40 {
		t.Fatalf("key %q", key)
	}
	tu.Eventually(t, "the key reaches the set", func() bool { _, err := set.Check(key, "coffeebar/v1", time.Now()); return err == nil })
	if _, err := set.Check(key, "petstore/1.0.0", time.Now()); err != ErrAPI {
		t.Errorf("another API: %v", err)
	}
	if _, err := set.Check(key, "coffeebar/v1", time.Now().Add(2*time.Hour)); err != ErrExpired {
		t.Errorf("after expiry: %v", err)
	}
	// Only the hash is stored.
	resp, _ := st.Client().Get(t.Context(), st.Prefix()+store.APIKeys, clientGetPrefix())
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Key)+string(kv.Value), key) {
			t.Fatal("the key itself is stored")
		}
	}
	list, err := List(t.Context(), st)
	if err != nil || len(list) != 1 || list[0].ID != rec.ID || list[0].Application != "shop-app" {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, err := Revoke(t.Context(), st, rec.ID); err != nil {
		t.Fatal(err)
	}
	tu.Eventually(t, "revoked", func() bool { _, err := set.Check(key, "coffeebar/v1", time.Now()); return err == ErrUnknown })
	if _, err := Revoke(t.Context(), st, rec.ID); err == nil {
		t.Error("revoking twice succeeded")
	}
	if _, _, err := Create(t.Context(), st, "", nil, 0); err == nil {
		t.Error("a key without application or API was created")
	}
}

func clientGetPrefix() clientv3.OpOption { return clientv3.WithPrefix() }
