package store

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// KV is one key below a followed range; Key is relative to the range.
type KV struct {
	Key   string
	Value []byte
}

// Event is one change to a followed range. Value is nil for a delete.
type Event struct {
	KV
	Deleted bool
}

// Sink receives a followed range. Reset gets the whole range (at start, and after a
// compaction made the watch lose its place); Update gets each change after that. Calls come
// from one goroutine, in revision order.
type Sink interface {
	Reset(kvs []KV)
	Update(ev Event)
}

// SyncState is reported by Follow as it gains or loses its place in etcd.
type SyncState func(synced bool)

// Follow keeps sink in step with the key range rel (relative to the prefix) until ctx ends:
// it reads the range, then watches from the revision of that read so nothing is missed in
// between. When etcd goes away the sink keeps what it has; Follow reconnects and resumes
// from the last revision it saw, and reads the range again only if that revision was
// compacted. state (may be nil) hears when the sink is in step and when it may be stale.
func (s *Store) Follow(ctx context.Context, rel string, sink Sink, state SyncState) {
	if state == nil {
		state = func(bool) {}
	}
	full := s.prefix + rel
	log := s.log.With(zap.String("range", full))
	backoff := 100 * time.Millisecond
	var rev int64 // last revision applied; 0 = need a full read
	for ctx.Err() == nil {
		if rev == 0 {
			r, err := s.readAll(ctx, full)
			if err != nil {
				state(false)
				log.Warn("etcd read failed; keeping last state", zap.Error(err))
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, 5*time.Second)
				continue
			}
			kvs := make([]KV, len(r.Kvs))
			for i, kv := range r.Kvs {
				kvs[i] = KV{Key: string(kv.Key[len(full):]), Value: kv.Value}
			}
			sink.Reset(kvs)
			rev = r.Header.Revision
			state(true)
		}
		backoff = 100 * time.Millisecond
		var compacted bool
		rev, compacted = s.watch(ctx, full, rev, sink, state, log)
		if compacted {
			log.Warn("watch revision compacted; reading the range again")
			rev = 0
		}
		if ctx.Err() == nil && !sleep(ctx, backoff) {
			return
		}
	}
}

func (s *Store) readAll(ctx context.Context, full string) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.cli.Get(ctx, full, clientv3.WithPrefix())
}

// watch applies changes after rev until the watch ends; it returns the last revision applied
// and whether the watch failed because rev was compacted.
func (s *Store) watch(ctx context.Context, full string, rev int64, sink Sink, state SyncState, log *zap.Logger) (int64, bool) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	ch := s.cli.Watch(wctx, full, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	for resp := range ch {
		if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
			return rev, true
		}
		if err := resp.Err(); err != nil {
			state(false)
			log.Warn("etcd watch ended; resuming", zap.Int64("revision", rev), zap.Error(err))
			return rev, false
		}
		for _, ev := range resp.Events {
			e := Event{KV: KV{Key: string(ev.Kv.Key[len(full):])}}
			if ev.Type == clientv3.EventTypeDelete {
				e.Deleted = true
			} else {
				e.Value = ev.Kv.Value
			}
			sink.Update(e)
			rev = ev.Kv.ModRevision
		}
		if resp.Header.Revision > rev && len(resp.Events) == 0 {
			// A progress notification: nothing in our range changed up to here.
			rev = resp.Header.Revision
		}
		state(true)
	}
	if ctx.Err() == nil {
		state(false)
		log.Warn("etcd watch closed; resuming", zap.Int64("revision", rev))
	}
	return rev, false
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
