package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/tollgate-gw/tollgate/internal/ctxtime"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
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

// Sink receives a followed range. Reset gets the whole range (at start, from etcd or from
// the local copy, and after a compaction made the watch lose its place); Update gets each
// change after that. Calls come from one goroutine, in revision order.
type Sink interface {
	Reset(kvs []KV)
	Update(ev Event)
}

// BatchSink is a Sink that takes the changes of one etcd transaction together (they share
// a revision), so that it never publishes a state that is half of one apply.
type BatchSink interface {
	Sink
	UpdateBatch(evs []Event)
}

// SyncState is reported by Follow as it gains or loses its place in etcd.
type SyncState func(synced bool)

// Back-off between attempts to read or watch a range: doubled each time, capped so that a
// range is back in step within about a second of etcd's return, and jittered so that the
// ranges and replicas do not retry in lockstep.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = time.Second
)

// watchAttempts numbers watch attempts, to give each its own gRPC stream.
var watchAttempts atomic.Uint64

// firstReadTimeout bounds the first read of a range that has a local copy.
const firstReadTimeout = 2 * time.Second

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1) // uniform in [d/2, d]
}

// Follow keeps sink in step with the key range rel (relative to the prefix) until ctx ends:
// it reads the range, then watches from the revision of that read so nothing is missed in
// between. When etcd goes away the sink keeps what it has; Follow reconnects and resumes
// from the last revision it saw, and reads the range again only if that revision was
// compacted (or etcd is not the cluster the revision came from). When the first read fails
// and a local copy of the range exists (Config.CacheDir), the sink starts from the copy.
// A quiet watch is checked with etcd's progress requests, so the range's state says
// truthfully whether it is in step. state (may be nil) hears each change of that.
func (s *Store) Follow(ctx context.Context, rel string, sink Sink, state SyncState) {
	f := s.follower(rel)
	if state != nil {
		f.listen(state)
	}
	f.run(ctx, sink)
}

func (f *follower) run(ctx context.Context, sink Sink) {
	s := f.s
	full := s.prefix + f.name
	lc := f.copy
	if !f.running.CompareAndSwap(false, true) {
		lc = nil // a second Follow of the range: the first one keeps the copy
	} else {
		defer f.running.Store(false)
	}
	if lc != nil {
		// Follow returns only after the copy's last write, so a process that stops keeps
		// its newest state.
		done := make(chan struct{})
		go func() { lc.run(ctx, f.log); close(done) }()
		defer func() { <-done }()
	}
	backoff := backoffMin
	var rev int64      // last revision applied; 0 = need a full read
	var cluster uint64 // the cluster rev came from, when it came from the local copy
	first := true
	for ctx.Err() == nil {
		if rev == 0 {
			read, timeout := s.readAll, s.timeout
			if first && lc != nil {
				// With a copy to fall back on, do not keep a starting process waiting
				// long for an etcd that is away.
				read, timeout = s.readOrGiveUp, min(timeout, firstReadTimeout)
			}
			r, kvs, err := s.readRange(ctx, read, full, timeout)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if first && lc != nil {
					if c, ok := lc.load(f.log); ok {
						f.fromCopy(c, err)
						sink.Reset(c.kvs())
						rev, cluster = c.Revision, c.ClusterID
					}
				}
				first = false
				if rev == 0 {
					f.lost(err)
					if !ctxtime.Sleep(ctx, jitter(backoff)) {
						return
					}
					backoff = min(backoff*2, backoffMax)
					continue
				}
			} else {
				first = false
				sink.Reset(kvs)
				if lc != nil {
					lc.reset(kvs, r.Header.Revision, r.Header.ClusterId)
				}
				rev, cluster = r.Header.Revision, 0
				f.inStep(rev)
			}
		}
		var healthy bool
		var reload bool
		rev, reload, healthy = f.watch(ctx, full, rev, cluster, sink, lc)
		cluster = 0
		if reload {
			rev = 0
		}
		if healthy {
			backoff = backoffMin
		}
		if ctx.Err() == nil {
			if !ctxtime.Sleep(ctx, jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, backoffMax)
		}
	}
}

// readRange reads the whole range with read, its large values resolved from their blobs
// at the revision of the read.
func (s *Store) readRange(ctx context.Context, read func(context.Context, string, time.Duration) (*clientv3.GetResponse, error),
	full string, timeout time.Duration) (*clientv3.GetResponse, []KV, error) {
	r, err := read(ctx, full, timeout)
	if err != nil {
		return nil, nil, err
	}
	kvs := make([]KV, len(r.Kvs))
	for i, kv := range r.Kvs {
		kvs[i] = KV{Key: string(kv.Key[len(full):]), Value: kv.Value}
	}
	return r, kvs, s.resolveKVs(ctx, kvs, r.Header.Revision)
}

// readOrGiveUp is the first read of a range that has a local copy: it stops waiting as
// soon as no etcd endpoint can be connected to (a refused connection says so in
// milliseconds), instead of waiting out the whole deadline.
func (s *Store) readOrGiveUp(ctx context.Context, full string, timeout time.Duration) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		conn := s.cli.ActiveConnection()
		for ctx.Err() == nil {
			st := conn.GetState()
			if st == connectivity.TransientFailure {
				cancel(errors.New("no etcd endpoint accepts a connection"))
				return
			}
			if !conn.WaitForStateChange(ctx, st) {
				return
			}
		}
	}()
	r, err := s.readAll(ctx, full, timeout)
	if cause := context.Cause(ctx); err != nil && cause != nil {
		err = cause
	}
	return r, err
}

func (s *Store) readAll(ctx context.Context, full string, timeout time.Duration) (*clientv3.GetResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.cli.Get(ctx, full, clientv3.WithPrefix())
}

// watch applies changes after rev until the watch ends. It returns the last revision
// applied, whether the range must be read again (rev was compacted, or the state came from
// a local copy of another cluster or of a revision this etcd has not reached), and whether
// the watch was in step at some point (the back-off starts again from its minimum).
// cluster, when not 0, is the cluster id of a local copy that rev came from.
func (f *follower) watch(ctx context.Context, full string, rev int64, cluster uint64, sink Sink, lc *localCopy) (int64, bool, bool) {
	s := f.s
	// A gRPC watch stream of its own for each attempt (the client shares one stream among
	// contexts with the same metadata): etcd answers a progress request only when every
	// watch on the stream has caught up, and a watch the client resumed at a future
	// revision — another range's, or this range's previous attempt — would hold ours.
	attempt := strconv.FormatUint(watchAttempts.Add(1), 10)
	wctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(clientv3.WithRequireLeader(ctx), "tollgate-watch", f.name+"#"+attempt))
	defer cancel()
	// From rev, not rev+1: etcd answers progress requests only for watches that start at or
	// below its current revision, and a quiet range's rev+1 is in the future. An event at
	// rev itself was applied already and is skipped.
	ch := s.cli.Watch(wctx, full, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
	// Heartbeat: a watch on a quiet range gets nothing, also while etcd is away. Ask for
	// progress every interval; no answer for a few intervals means we may be stale.
	tick := time.NewTicker(s.progressEvery)
	defer tick.Stop()
	requestProgress := func() {
		pctx, pcancel := context.WithTimeout(wctx, s.progressEvery)
		defer pcancel()
		_ = s.cli.RequestProgress(pctx) // an answer, or none, is read from the watch
	}
	lastHeard := time.Now()
	healthy := false
	for {
		select {
		case <-ctx.Done():
			return rev, false, healthy
		case <-tick.C:
			if time.Since(lastHeard) > 3*s.progressEvery {
				// Start a new watch rather than wait for this one: the client resumes a
				// broken watch from the revision after the last it saw, where etcd would
				// not answer progress requests on a quiet range.
				f.lost(errors.New("etcd does not answer the watch"))
				return rev, false, healthy
			}
			go requestProgress()
		case resp, ok := <-ch:
			if !ok {
				if ctx.Err() == nil {
					f.lost(errors.New("etcd watch closed"))
				}
				return rev, false, healthy
			}
			if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
				f.log.Warn("watch revision compacted; reading the range again", zap.Int64("revision", rev))
				return rev, true, healthy
			}
			if err := resp.Err(); err != nil {
				f.lost(err)
				return rev, false, healthy
			}
			lastHeard = time.Now()
			if cluster != 0 {
				// The first answer after starting from a local copy: is this the etcd, and
				// the history, that the copy came from?
				if resp.Header.ClusterId != cluster || resp.Header.Revision < rev {
					f.log.Warn("local copy is from another etcd cluster or a later revision; reading the range again",
						zap.Int64("copy_revision", rev), zap.Int64("etcd_revision", resp.Header.Revision))
					return rev, true, healthy
				}
				cluster = 0
			}
			// The events of one transaction share its revision: compare with the revision
			// applied before this answer, not with the event before.
			var err error
			if rev, err = f.apply(ctx, resp.Events, rev, sink, lc); err != nil {
				f.log.Warn("a changed value could not be read whole; reading the range again", zap.Error(err))
				return rev, true, healthy
			}
			if resp.Created {
				// The watch is (re)established; events up to now follow. Ask soon whether
				// it has caught up, rather than at the next tick (etcd ignores the question
				// until the new watch is synced, which takes it up to 100ms).
				for _, d := range []time.Duration{150 * time.Millisecond, 400 * time.Millisecond} {
					t := time.AfterFunc(d, requestProgress)
					defer t.Stop()
				}
				continue
			}
			if resp.IsProgressNotify() && resp.Header.Revision > rev {
				// Nothing in our range changed up to here.
				rev = resp.Header.Revision
				if lc != nil {
					lc.advance(rev, resp.Header.ClusterId)
				}
			}
			healthy = true
			f.inStep(rev)
		}
	}
}

// apply hands the events after rev to sink, those of one revision (one transaction)
// together when the sink takes batches, large values resolved from their blobs at the
// event's revision. It returns the last revision applied; on an error, the revision before
// the batch that failed.
func (f *follower) apply(ctx context.Context, events []*clientv3.Event, rev int64, sink Sink, lc *localCopy) (int64, error) {
	applied := rev
	batch, _ := sink.(BatchSink)
	var pending []Event
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if batch != nil {
			batch.UpdateBatch(pending)
		} else {
			for _, e := range pending {
				sink.Update(e)
			}
		}
		for _, e := range pending {
			if lc != nil {
				lc.update(e, rev)
			}
		}
		pending = pending[:0]
	}
	for _, ev := range events {
		if ev.Kv.ModRevision <= applied {
			continue
		}
		if ev.Kv.ModRevision != rev {
			flush()
		}
		e := Event{KV: KV{Key: string(ev.Kv.Key[len(f.s.prefix+f.name):])}}
		if ev.Type == clientv3.EventTypeDelete {
			e.Deleted = true
		} else {
			v, err := f.s.resolveTimed(ctx, ev.Kv.Value, ev.Kv.ModRevision)
			if err != nil {
				flush()
				return rev, fmt.Errorf("%s: %w", e.Key, err)
			}
			e.Value = v
		}
		pending = append(pending, e)
		rev = ev.Kv.ModRevision
	}
	flush()
	return rev, nil
}
