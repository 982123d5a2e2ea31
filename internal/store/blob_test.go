package store_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// recorder is a BatchSink that keeps what it was given, batch by batch.
type recorder struct {
	mu      sync.Mutex
	state   map[string][]byte
	batches [][]string
	resets  int
}

func (r *recorder) Reset(kvs []store.KV) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resets++
	r.state = map[string][]byte{}
	for _, kv := range kvs {
		r.state[kv.Key] = kv.Value
	}
}

func (r *recorder) Update(ev store.Event) { r.UpdateBatch([]store.Event{ev}) }

func (r *recorder) UpdateBatch(evs []store.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []string
	for _, ev := range evs {
		keys = append(keys, ev.Key)
		if ev.Deleted {
			delete(r.state, ev.Key)
		} else {
			r.state[ev.Key] = ev.Value
		}
	}
	r.batches = append(r.batches, keys)
}

func (r *recorder) get(k string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state[k]
}

// Four 5 MB definitions — 20 MB in one apply — are stored in an etcd started with its
// default limits (1.5 MiB per request): the apply is one commit, a follower started before
// it gets the four in one batch, whole, and one started after reads them whole; Get and
// List give them back as written.
func TestLargeDefinitionsFitDefaultEtcd(t *testing.T) {
	e := testutil.StartEtcd(t)
	st := e.Store("/big/")
	ctx := t.Context()
	var docs []store.Doc
	for i := 0; i < 4; i++ {
		docs = append(docs, store.Doc{Name: fmt.Sprintf("api%d", i), Version: "v1",
			Data: testutil.BigAPI(fmt.Sprintf("api%d", i), 1000, 5<<20, "http://127.0.0.1:9")})
	}
	docs = append(docs, store.Doc{Name: "small", Version: "v1", Data: []byte("openapi: 3.0.0\n")})
	before := &recorder{}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go st.Follow(fctx, store.APIs, before, nil)
	testutil.Eventually(t, "the first read", func() bool { before.mu.Lock(); defer before.mu.Unlock(); return before.resets > 0 })

	start := time.Now()
	rev, err := st.PutAPIs(ctx, docs)
	if err != nil {
		t.Fatalf("storing 20 MB of definitions: %v", err)
	}
	t.Logf("stored %d definitions at revision %d in %v", len(docs), rev, time.Since(start))

	testutil.Eventually(t, "the follower's batch", func() bool { return before.get("small/v1") != nil })
	before.mu.Lock()
	if len(before.batches) != 1 || len(before.batches[0]) != len(docs) {
		t.Errorf("the follower got batches %v, want one batch of %d", before.batches, len(docs))
	}
	before.mu.Unlock()
	after := &recorder{}
	go st.Follow(fctx, store.APIs, after, nil)
	testutil.Eventually(t, "the second follower's read", func() bool { return after.get("small/v1") != nil })
	kvs, err := st.List(ctx, store.APIs)
	if err != nil || len(kvs) != len(docs) {
		t.Fatalf("List: %d values, %v", len(kvs), err)
	}
	for i, d := range docs {
		key := d.Name + "/" + d.Version
		for who, got := range map[string][]byte{"watching": before.get(key), "reading": after.get(key), "List": kvs[i].Value} {
			if !bytes.Equal(got, d.Data) {
				t.Errorf("%s: the %s follower holds %d bytes, not the %d written", key, who, len(got), len(d.Data))
			}
		}
		if v, ok, err := st.Get(ctx, store.APIs+key); err != nil || !ok || !bytes.Equal(v, d.Data) {
			t.Errorf("Get %s: %d bytes, %v, %v", key, len(v), ok, err)
		}
	}
	// What is in etcd: small pointers for the large ones, the small one as written, and
	// no value above etcd's request limit.
	raw, err := st.Client().Get(ctx, "/big/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range raw.Kvs {
		if len(kv.Value) > store.ChunkMax {
			t.Errorf("%s holds %d bytes", kv.Key, len(kv.Value))
		}
		if strings.HasPrefix(string(kv.Key), "/big/apis/api") && len(kv.Value) > 512 {
			t.Errorf("%s holds %d bytes, not a pointer", kv.Key, len(kv.Value))
		}
	}
}

// Blobs that nothing points at any more are removed: replacing a large definition leaves
// only the new one's blob, deleting it leaves none; a definition applied again unchanged
// reuses its blob.
func TestBlobsAreCollected(t *testing.T) {
	e := testutil.StartEtcd(t)
	st := e.Store("/gc/")
	ctx := t.Context()
	blobs := func() map[string]bool {
		resp, err := st.Client().Get(ctx, "/gc/"+store.Blobs, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, kv := range resp.Kvs {
			sha, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), "/gc/"+store.Blobs), "/")
			out[sha] = true
		}
		return out
	}
	one := testutil.BigAPI("x", 200, 300<<10, "http://127.0.0.1:9")
	two := testutil.BigAPI("x", 201, 300<<10, "http://127.0.0.1:9")
	put := func(data []byte) {
		if _, err := st.PutAPIs(ctx, []store.Doc{{Name: "x", Version: "v1", Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	put(one)
	first := blobs()
	put(one)
	if again := blobs(); len(first) != 1 || fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("blobs after one definition %v, after applying it again %v", first, again)
	}
	put(two)
	var sha string
	for k := range first {
		sha = k
	}
	if b := blobs(); len(b) != 1 || b[sha] {
		t.Errorf("after replacing the definition: blobs %v (first was %v)", b, first)
	}
	if _, err := st.DeleteAPI(ctx, "x", "v1"); err != nil {
		t.Fatal(err)
	}
	if b := blobs(); len(b) != 0 {
		t.Errorf("after deleting the definition: blobs %v", b)
	}
}

// More definitions than etcd takes in one transaction by default are refused with the
// limit named, before anything is written.
func TestTooManyDefinitionsInOneApply(t *testing.T) {
	e := testutil.StartEtcd(t)
	st := e.Store("/many/")
	var docs []store.Doc
	for i := 0; i <= store.MaxTxnOps; i++ {
		docs = append(docs, store.Doc{Name: fmt.Sprintf("a%d", i), Version: "v1", Data: []byte("x")})
	}
	_, err := st.PutAPIs(t.Context(), docs)
	if err == nil || !strings.Contains(err.Error(), "--max-txn-ops") {
		t.Fatalf("err = %v", err)
	}
}
