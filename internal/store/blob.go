package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Large definitions are stored so that they fit an etcd with default limits (a request of
// at most 1.5 MiB, a client message of at most 2 MiB, 128 operations in a transaction):
// a value above InlineMax — or beyond what one commit may carry inline — is gzipped and
// written first, in chunks of at most ChunkMax bytes, under blobs/<sha256 of the value>/,
// and its key gets a small pointer. The pointers of one apply are written in one
// transaction that also checks that every blob they name is there, so an apply is still
// all or nothing and a watcher sees a whole set at one revision. Blobs are immutable and
// content-addressed; readers fetch them at the revision of the pointer they read, so a blob
// collected since is still readable until etcd compacts that revision.
const (
	Blobs = "blobs/"
	// InlineMax is the largest value stored in its own key.
	InlineMax = 64 << 10
	// CommitMax bounds the inline values of one commit (etcd's default request limit is
	// 1.5 MiB).
	CommitMax = 1 << 20
	// ChunkMax bounds one blob chunk.
	ChunkMax = 1 << 20
	// MaxTxnOps is etcd's default --max-txn-ops: the most definitions one apply can store.
	MaxTxnOps = 128
)

// blobPointer is the value stored in a key whose content is a blob.
type blobPointer struct {
	Blob blobRef `json:"tollgateBlob"`
}

type blobRef struct {
	SHA256   string `json:"sha256"`
	Size     int    `json:"size"`
	Chunks   int    `json:"chunks"`
	Encoding string `json:"encoding"` // gzip
}

var pointerPrefix = []byte(`{"tollgateBlob":`)

// isPointer says whether a stored value points at a blob.
func isPointer(v []byte) bool { return bytes.HasPrefix(v, pointerPrefix) }

// blob is a value prepared for storage as chunks.
type blob struct {
	ref    blobRef
	chunks [][]byte
}

func newBlob(value []byte) (*blob, error) {
	sum := sha256.Sum256(value)
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(value); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	z := buf.Bytes()
	b := &blob{ref: blobRef{SHA256: hex.EncodeToString(sum[:]), Size: len(value), Encoding: "gzip"}}
	for len(z) > 0 {
		n := min(len(z), ChunkMax)
		b.chunks = append(b.chunks, z[:n])
		z = z[n:]
	}
	b.ref.Chunks = len(b.chunks)
	return b, nil
}

func (s *Store) blobPrefix(sha string) string { return s.prefix + Blobs + sha + "/" }

func (s *Store) chunkKey(sha string, i int) string {
	return fmt.Sprintf("%s%04d", s.blobPrefix(sha), i)
}

// writeBlob writes a blob's chunks unless it is stored already. Chunk 0 is written last:
// when it is there, the whole blob is.
func (s *Store) writeBlob(ctx context.Context, b *blob) error {
	first := s.chunkKey(b.ref.SHA256, 0)
	resp, err := s.cli.Get(ctx, first, clientv3.WithCountOnly())
	if err != nil {
		return s.Explain(err)
	}
	if resp.Count > 0 {
		return nil
	}
	for i := len(b.chunks) - 1; i >= 0; i-- {
		if _, err := s.cli.Put(ctx, s.chunkKey(b.ref.SHA256, i), string(b.chunks[i])); err != nil {
			return fmt.Errorf("storing part %d of %d of a %d-byte definition: %w", i+1, len(b.chunks), b.ref.Size, s.Explain(err))
		}
	}
	return nil
}

// resolve returns a stored value as it was written: a blob pointer's blob, read at rev
// (0: the current revision), checked against its hash.
func (s *Store) resolve(ctx context.Context, v []byte, rev int64) ([]byte, error) {
	if !isPointer(v) {
		return v, nil
	}
	var p blobPointer
	if err := json.Unmarshal(v, &p); err != nil || len(p.Blob.SHA256) != 64 || p.Blob.Encoding != "gzip" {
		return nil, fmt.Errorf("a blob pointer that does not read: %.200s", v)
	}
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := s.cli.Get(ctx, s.blobPrefix(p.Blob.SHA256), opts...)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", p.Blob.SHA256[:12], s.Explain(err))
	}
	if len(resp.Kvs) != p.Blob.Chunks {
		return nil, fmt.Errorf("blob %s has %d of its %d parts", p.Blob.SHA256[:12], len(resp.Kvs), p.Blob.Chunks)
	}
	sort.Slice(resp.Kvs, func(i, j int) bool { return string(resp.Kvs[i].Key) < string(resp.Kvs[j].Key) })
	readers := make([]io.Reader, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		readers[i] = bytes.NewReader(kv.Value)
	}
	zr, err := gzip.NewReader(io.MultiReader(readers...))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", p.Blob.SHA256[:12], err)
	}
	out := make([]byte, 0, p.Blob.Size)
	buf := bytes.NewBuffer(out)
	if _, err := io.Copy(buf, io.LimitReader(zr, int64(p.Blob.Size)+1)); err != nil {
		return nil, fmt.Errorf("blob %s: %w", p.Blob.SHA256[:12], err)
	}
	out = buf.Bytes()
	sum := sha256.Sum256(out)
	if len(out) != p.Blob.Size || hex.EncodeToString(sum[:]) != p.Blob.SHA256 {
		return nil, fmt.Errorf("blob %s does not match its hash", p.Blob.SHA256[:12])
	}
	return out, nil
}

// resolveKVs resolves every pointer among kvs in place, at rev, each blob within the
// request timeout of its own (a range of many large definitions takes as many reads).
func (s *Store) resolveKVs(ctx context.Context, kvs []KV, rev int64) error {
	for i := range kvs {
		if !isPointer(kvs[i].Value) {
			continue
		}
		v, err := s.resolveTimed(ctx, kvs[i].Value, rev)
		if err != nil {
			return fmt.Errorf("%s: %w", kvs[i].Key, err)
		}
		kvs[i].Value = v
	}
	return nil
}

func (s *Store) resolveTimed(ctx context.Context, v []byte, rev int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.resolve(ctx, v, rev)
}

// put is one value of a commit: inline, or a pointer to a blob written before the commit.
type put struct {
	key   string
	value []byte
	blob  *blob
}

// plan decides which values go inline: each up to InlineMax, smallest first, while the
// commit stays under CommitMax; the rest become blobs.
func plan(puts []put) error {
	order := make([]int, len(puts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(puts[order[a]].value) < len(puts[order[b]].value) })
	total := 0
	for _, i := range order {
		p := &puts[i]
		if len(p.value) <= InlineMax && total+len(p.value) <= CommitMax {
			total += len(p.value)
			continue
		}
		b, err := newBlob(p.value)
		if err != nil {
			return err
		}
		p.blob = b
	}
	return nil
}

// commit stores puts in one transaction (blobs first), retrying when a blob it names was
// collected by a concurrent apply between the two steps.
func (s *Store) commit(ctx context.Context, puts []put) (int64, error) {
	if len(puts) > MaxTxnOps {
		return 0, fmt.Errorf("%d definitions in one apply; etcd takes at most %d writes in a transaction by default (--max-txn-ops): apply them in parts", len(puts), MaxTxnOps)
	}
	if err := plan(puts); err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		var cmps []clientv3.Cmp
		ops := make([]clientv3.Op, 0, len(puts))
		for _, p := range puts {
			v := p.value
			if p.blob != nil {
				if err := s.writeBlob(ctx, p.blob); err != nil {
					return 0, err
				}
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.chunkKey(p.blob.ref.SHA256, 0)), ">", 0))
				v, _ = json.Marshal(blobPointer{Blob: p.blob.ref})
			}
			ops = append(ops, clientv3.OpPut(p.key, string(v), clientv3.WithPrevKV()))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return 0, s.Explain(err)
		}
		if resp.Succeeded {
			var prev []*mvccpb.KeyValue
			for _, r := range resp.Responses {
				if pv := r.GetResponsePut().GetPrevKv(); pv != nil {
					prev = append(prev, pv)
				}
			}
			if replacedPointer(prev) {
				s.collectBlobs(ctx, resp.Header.Revision)
			}
			return resp.Header.Revision, nil
		}
		if attempt == 2 {
			return 0, errors.New("the definitions' blobs were removed by other applies three times running; try again")
		}
	}
}

// replacedPointer says whether a write or delete replaced a blob pointer: only then may a
// blob have lost its last reference, and only then is it worth reading every stored value
// to find out.
func replacedPointer(prev []*mvccpb.KeyValue) bool {
	for _, kv := range prev {
		if isPointer(kv.Value) {
			return true
		}
	}
	return false
}

// collectBlobs removes the blobs no stored value points at any more and that were written
// before rev (a blob written since may belong to an apply not yet committed; its commit
// checks that the blob is still there). A failure leaves garbage, not a broken set.
func (s *Store) collectBlobs(ctx context.Context, rev int64) {
	used := map[string]bool{}
	for _, rel := range []string{APIs, Policies} {
		resp, err := s.cli.Get(ctx, s.prefix+rel, clientv3.WithPrefix(), clientv3.WithRev(rev))
		if err != nil {
			return
		}
		for _, kv := range resp.Kvs {
			var p blobPointer
			if isPointer(kv.Value) && json.Unmarshal(kv.Value, &p) == nil {
				used[p.Blob.SHA256] = true
			}
		}
	}
	resp, err := s.cli.Get(ctx, s.prefix+Blobs, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return
	}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), s.prefix+Blobs)
		sha, part, _ := strings.Cut(rest, "/")
		if part != "0000" || used[sha] || kv.ModRevision > rev {
			continue
		}
		// Chunk 0 goes first: a blob without it is incomplete, never read, and rewritten
		// whole by the next apply that needs it.
		_, _ = s.cli.Delete(ctx, s.chunkKey(sha, 0))
		_, _ = s.cli.Delete(ctx, s.blobPrefix(sha), clientv3.WithPrefix())
	}
}
