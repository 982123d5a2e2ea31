// Command revocation measures the revocation list at size: the start-up time of an enforcer
// loading 100,000 revoked entries from etcd, and the time from a revocation written to etcd
// to the enforcer denying the token, with those entries loaded. It prints its numbers; it is
// a measurement, not a test.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/revocation"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// timedSink records when each revocation reached the enforcer's set.
type timedSink struct {
	set  *revocation.Set
	seen chan string
}

func (t timedSink) Reset(kvs []store.KV) { t.set.Reset(kvs) }
func (t timedSink) Update(ev store.Event) {
	t.set.Update(ev)
	if !ev.Deleted {
		select {
		case t.seen <- ev.Key:
		default:
		}
	}
}

func main() {
	n := flag.Int("entries", 100000, "revoked entries loaded")
	writes := flag.Int("writes", 200, "revocations to time")
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tollgate-bench-revocation")
	check(err)
	defer os.RemoveAll(dir)
	emb, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir, ClientAddr: lowAddr(), PeerAddr: lowAddr()}, zap.NewNop())
	check(err)
	defer emb.Close()
	st, err := store.Connect(store.Config{Endpoints: []string{emb.Endpoint}}, zap.NewNop())
	check(err)

	// Load the list: tokens expiring within the next day, bulk-written in transactions on a
	// few shared leases (the per-token leases of `tollgate revoke` cost the same to read).
	loadStart := time.Now()
	lease, err := st.Client().Grant(ctx, 86400)
	check(err)
	value := fmt.Sprintf(`{"until":%q}`, time.Now().Add(24*time.Hour).Format(time.RFC3339))
	for i := 0; i < *n; i += 128 {
		var ops []clientv3.Op
		for j := i; j < min(i+128, *n); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%sjti/bench-%07d", st.Prefix(), store.Revoked, j), value, clientv3.WithLease(lease.ID)))
		}
		_, err := st.Client().Txn(ctx).Then(ops...).Commit()
		check(err)
	}
	fmt.Printf("wrote %d revoked entries to etcd in %v\n", *n, time.Since(loadStart).Round(time.Millisecond))

	// Start-up: an enforcer reads the whole list, then follows it.
	set := revocation.New(zap.NewNop(), nil)
	sink := timedSink{set: set, seen: make(chan string, 1)}
	start := time.Now()
	synced := make(chan struct{}, 1)
	go st.Follow(ctx, store.Revoked, sink, func(ok bool) {
		if ok {
			select {
			case synced <- struct{}{}:
			default:
			}
		}
	})
	<-synced
	loaded := time.Since(start)
	if set.Len() != *n {
		fmt.Fprintf(os.Stderr, "loaded %d of %d\n", set.Len(), *n)
		os.Exit(1)
	}

	// Propagation: revoke one token at a time, as `tollgate revoke` does (a lease and a put).
	var fromWrite, fromCommit []time.Duration
	for i := range *writes {
		jti := fmt.Sprintf("live-%d", i)
		t0 := time.Now()
		_, _, err := revocation.Revoke(ctx, st, revocation.KindJTI, jti, revocation.Record{Until: time.Now().Add(time.Hour)})
		check(err)
		committed := time.Since(t0)
		select {
		case <-sink.seen:
		case <-time.After(10 * time.Second):
			fmt.Fprintln(os.Stderr, "revocation never arrived")
			os.Exit(1)
		}
		d := time.Since(t0)
		if !set.Revoked(revocation.Token{ID: jti}) {
			fmt.Fprintln(os.Stderr, "not revoked after the event")
			os.Exit(1)
		}
		fromWrite = append(fromWrite, d)
		fromCommit = append(fromCommit, max(d-committed, 0))
	}
	sortD(fromWrite)
	sortD(fromCommit)
	fmt.Printf("enforcer start-up: %d revoked entries loaded in %v\n", *n, loaded.Round(time.Millisecond))
	fmt.Printf("revocation → deny at the enforcer (%d revocations, lease grant + put + watch): p50 %v  p99 %v\n",
		*writes, fromWrite[len(fromWrite)/2].Round(10*time.Microsecond), fromWrite[len(fromWrite)*99/100].Round(10*time.Microsecond))
	fmt.Printf("  from the committed write to the enforcer's set:                 p50 %v  p99 %v\n",
		fromCommit[len(fromCommit)/2].Round(10*time.Microsecond), fromCommit[len(fromCommit)*99/100].Round(10*time.Microsecond))
	fmt.Println("(`go test -bench Revoked ./policies/revocation` shows the check itself: ns and allocations per request)")
}

func sortD(d []time.Duration) { sort.Slice(d, func(i, j int) bool { return d[i] < d[j] }) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func lowAddr() string {
	a, err := testutil.LowAddr()
	check(err)
	return a
}
