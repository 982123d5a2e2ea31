package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tollgate-gw/tollgate/internal/ctxtime"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/atomicfile"
)

// localCopy keeps a followed range on disk, so a process that starts while etcd is away
// serves the last state it was in step with instead of an empty one. The file is replaced
// atomically (write, fsync, rename) at most every flushInterval while changes arrive, holds
// the etcd revision and cluster it reflects, and is private (0600: the ranges hold password
// hashes and TLS keys).
type localCopy struct {
	path string
	name string

	mu      sync.Mutex
	kvs     map[string][]byte
	rev     int64
	cluster uint64
	dirty   bool
	kick    chan struct{}
}

const flushEvery = 500 * time.Millisecond

// flushInterval is the least time between two writes of a copy of n keys: a large range
// (100,000 revocations) is rewritten less often, so that a steady stream of changes does
// not cost a full rewrite twice a second; an older copy only resumes from further back.
func flushInterval(n int) time.Duration {
	return min(flushEvery+time.Duration(n/10000)*time.Second, 30*time.Second)
}

// copyFile is the file's format.
type copyFile struct {
	Range     string    `json:"range"`
	Revision  int64     `json:"revision"`
	ClusterID uint64    `json:"clusterId"`
	Written   time.Time `json:"written"`
	KVs       []copyKV  `json:"kvs"`
}

type copyKV struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

func (c *copyFile) kvs() []KV {
	out := make([]KV, len(c.KVs))
	for i, kv := range c.KVs {
		out[i] = KV(kv)
	}
	return out
}

// CopyPath is where the local copy of the range rel lives under dir.
func CopyPath(dir, rel string) string {
	return filepath.Join(dir, strings.TrimSuffix(rel, "/")+".json")
}

func newLocalCopy(dir, name string) *localCopy {
	return &localCopy{path: CopyPath(dir, name), name: name, kick: make(chan struct{}, 1)}
}

func (c *localCopy) changed() {
	c.dirty = true
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *localCopy) reset(kvs []KV, rev int64, cluster uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replace(kvs, rev, cluster)
	c.changed()
}

// replace makes kvs at rev the base that later changes apply to; c.mu is held.
func (c *localCopy) replace(kvs []KV, rev int64, cluster uint64) {
	c.kvs = make(map[string][]byte, len(kvs))
	for _, kv := range kvs {
		c.kvs[kv.Key] = kv.Value
	}
	c.rev, c.cluster = rev, cluster
}

func (c *localCopy) update(ev Event, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kvs == nil {
		return // no base state to apply it to
	}
	if ev.Deleted {
		delete(c.kvs, ev.Key)
	} else {
		c.kvs[ev.Key] = ev.Value
	}
	c.rev = rev
	c.changed()
}

// advance notes a later revision with no change in the range; it is written with the next
// change (a copy of an older revision is just as good, it only resumes from further back).
func (c *localCopy) advance(rev int64, cluster uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kvs != nil && rev > c.rev {
		c.rev, c.cluster = rev, cluster
	}
}

// load reads the copy; it becomes the base that later changes apply to.
func (c *localCopy) load(log *zap.Logger) (*copyFile, bool) {
	b, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false
	}
	var f copyFile
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err == nil && (f.Range != c.name || f.Revision <= 0) {
		err = fmt.Errorf("holds range %q at revision %d", f.Range, f.Revision)
	}
	if err != nil {
		log.Error("local copy unusable; ignored", zap.String("file", c.path), zap.Error(err))
		return nil, false
	}
	c.mu.Lock()
	c.replace(f.kvs(), f.Revision, f.ClusterID)
	c.mu.Unlock()
	return &f, true
}

// run writes the copy after changes until ctx ends, then once more if needed.
func (c *localCopy) run(ctx context.Context, log *zap.Logger) {
	var failed bool
	for {
		select {
		case <-ctx.Done():
			c.flush(log, &failed)
			return
		case <-c.kick:
		}
		n := c.flush(log, &failed)
		if !ctxtime.Sleep(ctx, flushInterval(n)) {
			c.flush(log, &failed)
			return
		}
	}
}

// flush writes the copy if it changed; it returns the number of keys written.
func (c *localCopy) flush(log *zap.Logger, failed *bool) int {
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return 0
	}
	f := copyFile{Range: c.name, Revision: c.rev, ClusterID: c.cluster, Written: time.Now().UTC(), KVs: make([]copyKV, 0, len(c.kvs))}
	for k, v := range c.kvs {
		f.KVs = append(f.KVs, copyKV{Key: k, Value: v})
	}
	c.dirty = false
	c.mu.Unlock()
	if err := writeAtomic(c.path, &f); err != nil {
		if !*failed {
			log.Error("writing the local copy failed; a restart while etcd is away would not have it", zap.String("file", c.path), zap.Error(err))
		}
		*failed = true
		c.mu.Lock()
		c.dirty = true // try again with the next change
		c.mu.Unlock()
		return len(f.KVs)
	}
	*failed = false
	return len(f.KVs)
}

func writeAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}
