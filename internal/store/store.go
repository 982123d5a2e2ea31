// Package store is Tollgate's view of etcd: the key layout under one prefix, typed writes,
// and Follow, which keeps a consumer in step with a key range (full read, then a watch from
// that revision, reconnecting and reloading after compaction). It also starts the embedded
// etcd server that `tollgate run` and the tests use.
package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-gw/tollgate/internal/defaults"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
)

// Key ranges under the prefix.
const (
	APIs      = "apis/"
	Endpoints = "endpoints/"
	Revoked   = "revoked/"  // revoked tokens, subjects and clients, on leases
	Policies  = "policies/" // throttling policies
	APIKeys   = "apikeys/"  // API keys by the SHA-256 of the key
	Users     = "users/"    // basic-auth users: name → password hash
	Secrets   = "secrets/"  // TLS material for Envoy, served by SDS: {"certificate","privateKey"} or {"ca"}
)

// Config says how to reach etcd.
type Config struct {
	Endpoints      []string
	Prefix         string        // default "/tollgate/"
	DialTimeout    time.Duration // default 5s
	RequestTimeout time.Duration // default 5s: every call has a deadline
	Username       string
	Password       string
	CAFile         string
	CertFile       string
	KeyFile        string
	// CacheDir keeps a local copy of each followed range (empty: no copy); see Follow.
	CacheDir string
	// ProgressInterval is how often a quiet watch asks etcd whether it is still in step
	// (default 1s); three unanswered intervals mark the range stale.
	ProgressInterval time.Duration
	// Registerer (may be nil) gets the store's metrics.
	Registerer prometheus.Registerer
}

// Store reads and writes Tollgate's keys.
type Store struct {
	cli           *clientv3.Client
	prefix        string
	timeout       time.Duration
	log           *zap.Logger
	cacheDir      string
	progressEvery time.Duration
	m             *metrics

	mu        sync.Mutex
	followers map[string]*follower
}

// Connect opens a client. It does not wait for etcd: calls fail or retry as etcd comes and goes.
func Connect(cfg Config, log *zap.Logger) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaults.Prefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = defaults.EtcdDialTimeout
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = defaults.EtcdRequestTimeout
	}
	if cfg.ProgressInterval == 0 {
		cfg.ProgressInterval = time.Second
	}
	cc := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      log.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
		// gRPC's reconnect back-off grows to two minutes by default: after an outage the
		// client would take that long to notice etcd is back. Cap it at a second.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: cfg.DialTimeout,
		})},
	}
	if cfg.CAFile != "" || cfg.CertFile != "" {
		t, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		cc.TLS = t
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", cfg.Endpoints, err)
	}
	s := &Store{cli: cli, prefix: cfg.Prefix, timeout: cfg.RequestTimeout, log: log, cacheDir: cfg.CacheDir,
		progressEvery: cfg.ProgressInterval, followers: map[string]*follower{}}
	s.m = newMetrics(s, cfg.Registerer)
	return s, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	t, err := tlsfiles.Client(cfg.CAFile, cfg.CertFile, cfg.KeyFile, "")
	if err != nil {
		return nil, fmt.Errorf("etcd %w", err)
	}
	return t, nil
}

// Close closes the client.
func (s *Store) Close() error { return s.cli.Close() }

// Client is the underlying etcd client, for tests and benchmarks that work on etcd itself
// (compaction, bulk loads); the product uses the typed calls below.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix is the root of Tollgate's keys.
func (s *Store) Prefix() string { return s.prefix }

// APIKey is the key of an API definition.
func (s *Store) APIKey(name, version string) string { return s.prefix + APIs + name + "/" + version }

// Doc is a definition to store: the API's identity and the document as the user wrote it.
type Doc struct {
	Name, Version string
	Data          []byte
}

// PutAPIs stores definitions in one transaction: all are written or none.
func (s *Store) PutAPIs(ctx context.Context, docs []Doc) (int64, error) {
	return s.PutDefinitions(ctx, docs, nil)
}

// PutDefinitions stores API definitions and throttling policies (by Name) in one
// transaction: all are written or none. A large value is stored as a blob (see blob.go),
// so that any definition up to 16 MiB fits an etcd with default limits.
func (s *Store) PutDefinitions(ctx context.Context, docs, policies []Doc) (int64, error) {
	// Blobs are written before the commit, each part its own request.
	ctx, cancel := context.WithTimeout(ctx, 4*s.timeout)
	defer cancel()
	puts := make([]put, 0, len(docs)+len(policies))
	for _, d := range docs {
		puts = append(puts, put{key: s.APIKey(d.Name, d.Version), value: d.Data})
	}
	for _, p := range policies {
		puts = append(puts, put{key: s.prefix + Policies + p.Name, value: p.Data})
	}
	rev, err := s.commit(ctx, puts)
	if err != nil {
		return 0, fmt.Errorf("storing %d definitions: %w", len(puts), err)
	}
	return rev, nil
}

// DeleteAPI removes a definition; it reports whether one was there.
func (s *Store) DeleteAPI(ctx context.Context, name, version string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Delete(ctx, s.APIKey(name, version), clientv3.WithPrevKV())
	if err != nil {
		return false, fmt.Errorf("deleting %s/%s: %w", name, version, s.Explain(err))
	}
	if replacedPointer(resp.PrevKvs) {
		s.collectBlobs(ctx, resp.Header.Revision)
	}
	return resp.Deleted > 0, nil
}

// Put writes one key below the prefix (rel is relative to it) and returns the etcd
// revision of the write.
func (s *Store) Put(ctx context.Context, rel, value string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Put(ctx, s.prefix+rel, value)
	if err != nil {
		return 0, fmt.Errorf("writing %s: %w", rel, s.Explain(err))
	}
	return resp.Header.Revision, nil
}

// PutTTL writes one key below the prefix that etcd removes after ttl (on a lease of its
// own), and returns the key's full name and the write's etcd revision.
func (s *Store) PutTTL(ctx context.Context, rel, value string, ttl time.Duration) (string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	lease, err := s.cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return "", 0, fmt.Errorf("writing %s (lease): %w", rel, s.Explain(err))
	}
	resp, err := s.cli.Put(ctx, s.prefix+rel, value, clientv3.WithLease(lease.ID))
	if err != nil {
		return "", 0, fmt.Errorf("writing %s: %w", rel, s.Explain(err))
	}
	return s.prefix + rel, resp.Header.Revision, nil
}

// Get reads one key below the prefix; ok is false when it is not set.
func (s *Store) Get(ctx context.Context, rel string) (value []byte, ok bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.prefix+rel)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", rel, s.Explain(err))
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	v, err := s.resolveTimed(ctx, resp.Kvs[0].Value, resp.Header.Revision)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", rel, err)
	}
	return v, true, nil
}

// List reads every key below the prefix that starts with rel, keys relative to the prefix.
func (s *Store) List(ctx context.Context, rel string) ([]KV, error) {
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.prefix+rel, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rel, s.Explain(err))
	}
	out := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = KV{Key: strings.TrimPrefix(string(kv.Key), s.prefix), Value: kv.Value}
	}
	if err := s.resolveKVs(ctx, out, resp.Header.Revision); err != nil {
		return nil, fmt.Errorf("reading %s: %w", rel, err)
	}
	return out, nil
}

// Delete removes one key below the prefix and says how many went (0: it was not set) at
// which etcd revision.
func (s *Store) Delete(ctx context.Context, rel string) (n, rev int64, err error) {
	return s.delete(ctx, rel)
}

// DeletePrefix removes every key below the prefix that starts with rel.
func (s *Store) DeletePrefix(ctx context.Context, rel string) (n, rev int64, err error) {
	return s.delete(ctx, rel, clientv3.WithPrefix())
}

func (s *Store) delete(ctx context.Context, rel string, opts ...clientv3.OpOption) (int64, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	blobs := strings.HasPrefix(rel, APIs) || strings.HasPrefix(rel, Policies)
	if blobs {
		opts = append(opts, clientv3.WithPrevKV())
	}
	resp, err := s.cli.Delete(ctx, s.prefix+rel, opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("deleting %s: %w", rel, s.Explain(err))
	}
	if blobs && replacedPointer(resp.PrevKvs) {
		s.collectBlobs(ctx, resp.Header.Revision)
	}
	return resp.Deleted, resp.Header.Revision, nil
}

// Explain adds to an error from etcd where it was asked and what to check when etcd did
// not answer: the first thing a user needs when a command fails with etcd away.
func (s *Store) Explain(err error) error {
	if !errors.Is(err, context.DeadlineExceeded) && status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		return err
	}
	return fmt.Errorf("etcd at %s did not answer within %v (%w): check that it is running and reachable from here "+
		"(etcd.endpoints in the config, or --etcd; for `tollgate run`'s embedded etcd, that run is up)",
		strings.Join(s.cli.Endpoints(), ","), s.timeout, err)
}
