// Package testutil holds the real servers tests run against: an embedded etcd on random
// ports in a temporary directory, a JWKS HTTP server with real keys, and a token signer.
package testutil

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// Etcd is an embedded etcd server for one test.
type Etcd struct {
	t   testing.TB
	srv *store.Embedded
	cfg store.EmbeddedConfig
}

// StartEtcd starts an embedded etcd on random loopback ports; it stops when the test ends.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	e := &Etcd{t: t, cfg: store.EmbeddedConfig{Dir: t.TempDir(), ClientAddr: FreeAddr(t), PeerAddr: FreeAddr(t), NoFsync: true}}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

// Start (re)starts the server on the same ports and data directory.
func (e *Etcd) Start() {
	e.t.Helper()
	srv, err := store.StartEmbedded(e.cfg, zap.NewNop())
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = srv
	// Restart on the same ports: the client's endpoint list must stay valid.
	e.cfg.ClientAddr = srv.Endpoint[len("http://"):]
	e.cfg.PeerAddr = srv.PeerAddr
}

// Stop stops the server, keeping its data for a later Start.
func (e *Etcd) Stop() {
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

// Endpoint is the client URL.
func (e *Etcd) Endpoint() string { return "http://" + e.cfg.ClientAddr }

// Store connects a store client with prefix; it closes when the test ends.
func (e *Etcd) Store(prefix string) *store.Store {
	e.t.Helper()
	s, err := store.Connect(store.Config{Endpoints: []string{e.Endpoint()}, Prefix: prefix}, Logger(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// Logger logs at warn level and up to the test log.
func Logger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
}

// Eventually polls cond every 10ms until it holds, failing the test after 20 seconds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
