package tlsfiles

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/ctxtime"
)

// Server is the TLS of one of Tollgate's own ports (the ADS and ext_authz gRPC ports): a
// certificate and key, and — with a client CA — mutual TLS, every client presenting a
// certificate signed by it. The files are read again when they change (a renewed
// certificate takes effect for new connections; established ones, such as a live ADS
// stream, are not dropped), and a file that no longer reads keeps the last good
// configuration in force.
type Server struct {
	certFile, keyFile, caFile string
	protos                    []string

	cur atomic.Pointer[tls.Config]

	mu  sync.Mutex
	sum [32]byte // of the files' contents when cur was made
}

// ServerConfig is what a port's TLS is made of.
type ServerConfig struct {
	CertFile, KeyFile string
	// ClientCAFile, if set, requires every client to present a certificate signed by it.
	ClientCAFile string
	// Protocols are the ALPN protocols served (default h2, for gRPC).
	Protocols []string
}

// Enabled says whether the configuration asks for TLS.
func (c ServerConfig) Enabled() bool {
	return c.CertFile != "" || c.KeyFile != "" || c.ClientCAFile != ""
}

// Check refuses half a configuration: a key without its certificate, a client CA without
// a certificate to serve.
func (c ServerConfig) Check() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("certFile and keyFile go together")
	}
	if c.ClientCAFile != "" && c.CertFile == "" {
		return errors.New("clientCAFile needs certFile and keyFile (mutual TLS is TLS first)")
	}
	return nil
}

// NewServer reads the files; an error names the one that is wrong.
func NewServer(c ServerConfig) (*Server, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	s := &Server{certFile: c.CertFile, keyFile: c.KeyFile, caFile: c.ClientCAFile, protos: c.Protocols}
	if len(s.protos) == 0 {
		s.protos = []string{"h2"}
	}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Config is the tls.Config to serve with: each handshake takes the configuration in force.
func (s *Server) Config() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         s.protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.cur.Load(), nil },
	}
}

// Reload reads the files again if their contents changed, and reports whether it did. A
// file that does not read or does not make a configuration leaves the one in force.
func (s *Server) Reload() (bool, error) {
	var h = sha256.New()
	files := map[string][]byte{}
	for _, f := range []string{s.certFile, s.keyFile, s.caFile} {
		if f == "" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return false, err
		}
		files[f] = b
		h.Write([]byte(f))
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Load() != nil && sum == s.sum {
		return false, nil
	}
	cert, err := tls.X509KeyPair(files[s.certFile], files[s.keyFile])
	if err != nil {
		return false, fmt.Errorf("%s / %s: %w", s.certFile, s.keyFile, err)
	}
	if cert.Leaf != nil && time.Now().After(cert.Leaf.NotAfter) {
		return false, fmt.Errorf("%s: the certificate expired on %s", s.certFile, cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: s.protos, Certificates: []tls.Certificate{cert}}
	if s.caFile != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(files[s.caFile]) {
			return false, fmt.Errorf("%s: no CA certificate found", s.caFile)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	s.cur.Store(c)
	s.sum = sum
	return true, nil
}

// Run looks at the files every interval until ctx ends, and reports each reload: changed
// is true for one that took effect, err is set for one that did not.
func (s *Server) Run(ctx context.Context, every time.Duration, report func(changed bool, err error)) {
	for ctxtime.Sleep(ctx, every) {
		changed, err := s.Reload()
		if changed || err != nil {
			report(changed, err)
		}
	}
}
