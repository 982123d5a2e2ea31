package store

import (
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Embedded is an etcd server inside this process: the default for `tollgate run`, a demo and
// the tests. Its data survives restarts in its directory.
type Embedded struct {
	closing  *atomic.Bool
	etcd     *embed.Etcd
	Endpoint string // client URL, http://host:port
	PeerAddr string // host:port of the peer listener
}

// EmbeddedConfig says where the embedded server keeps its data and listens. An address with
// port 0 gets a free port.
type EmbeddedConfig struct {
	Dir        string
	ClientAddr string // default 127.0.0.1:2379
	PeerAddr   string // default 127.0.0.1:2380
	// NoFsync trades durability for speed; for tests only.
	NoFsync bool
	// Name and InitialCluster ("name=http://peer,...") make the server one member of a
	// cluster (default: a cluster of one named tollgate). Members of a new cluster must be
	// started together: none is ready before a quorum has formed.
	Name           string
	InitialCluster string
}

// StartEmbedded starts the server and waits until it serves.
func StartEmbedded(cfg EmbeddedConfig, log *zap.Logger) (*Embedded, error) {
	if cfg.ClientAddr == "" {
		cfg.ClientAddr = "127.0.0.1:2379"
	}
	if cfg.PeerAddr == "" {
		cfg.PeerAddr = "127.0.0.1:2380"
	}
	client, err := resolvePort(cfg.ClientAddr)
	if err != nil {
		return nil, err
	}
	peer, err := resolvePort(cfg.PeerAddr)
	if err != nil {
		return nil, err
	}
	ec := embed.NewConfig()
	ec.Name = "tollgate"
	if cfg.Name != "" {
		ec.Name = cfg.Name
	}
	ec.Dir = cfg.Dir
	cu := url.URL{Scheme: "http", Host: client}
	pu := url.URL{Scheme: "http", Host: peer}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	if cfg.InitialCluster != "" {
		ec.InitialCluster = cfg.InitialCluster
	}
	ec.UnsafeNoFsync = cfg.NoFsync
	// etcd logs a lot at info level, and error-level noise on Close: keep warnings and up,
	// named so they can be told from Tollgate's own.
	// Once Close has begun, etcd reports its listeners closing as errors: drop those.
	closing := new(atomic.Bool)
	quiet := log.Named("etcd").WithOptions(zap.IncreaseLevel(zap.WarnLevel), zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return closingFilter{Core: c, closing: closing}
	}))
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(quiet)
	ec.Logger = "zap"
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s did not become ready in 30s", cfg.Dir)
	}
	return &Embedded{closing: closing, etcd: e, Endpoint: cu.String(), PeerAddr: peer}, nil
}

// Close stops the server.
func (e *Embedded) Close() {
	e.closing.Store(true)
	e.etcd.Close()
}

// closingFilter drops etcd's log lines once the server is being closed.
type closingFilter struct {
	zapcore.Core
	closing *atomic.Bool
}

func (f closingFilter) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if f.closing.Load() {
		return ce
	}
	return f.Core.Check(e, ce)
}

func (f closingFilter) With(fields []zapcore.Field) zapcore.Core {
	return closingFilter{Core: f.Core.With(fields), closing: f.closing}
}

func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
