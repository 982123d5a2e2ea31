// Package tlsfiles builds the TLS configuration of a client (Tollgate to etcd, to Redis)
// from PEM files: a trust store, and a client certificate when the server asks for one.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Client is TLS 1.2 or later, verifying the server against caFile (the system's roots when
// empty) under serverName (the dialled host when empty), presenting certFile/keyFile when
// given.
func Client(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA %s: no certificate found", caFile)
		}
		t.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}
