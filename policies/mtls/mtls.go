// Package mtls checks the client certificate Envoy forwards to the enforcer (the
// URL-encoded PEM in attributes.source.certificate, or an x-forwarded-client-cert header when
// configured): chain to the trusted CAs, validity, optional allow-lists of SANs, subjects and
// SPKI hashes, optional CRLs; and maps it to an identity. Verified certificates are cached by
// hash, so a repeat costs a map lookup.
package mtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Config says which client certificates are trusted.
type Config struct {
	// CAFiles hold the trusted CA certificates (PEM); intermediates may be included.
	CAFiles []string
	// Allow-lists; empty means any. SANs match DNS names, URIs and e-mail addresses.
	AllowedSANs     []string
	AllowedSubjects []string // RFC 2253 subject strings, as x509.Certificate.Subject.String()
	AllowedSPKI     []string // base64 SHA-256 of the certificate's SubjectPublicKeyInfo
	CRLFiles        []string
	// FromXFCC reads the certificate from the x-forwarded-client-cert header (Cert=...)
	// when Envoy sits behind another proxy that terminated TLS. Off by default: only turn it on
	// when that proxy strips the header from clients.
	FromXFCC bool
}

// Identity is a verified client certificate.
type Identity struct {
	Subject    string // CN, else the first SAN
	Thumbprint string // base64url SHA-256 of the DER: RFC 8705's x5t#S256
	NotAfter   time.Time
}

// Verifier checks client certificates.
type Verifier struct {
	cfg     Config
	roots   *x509.CertPool
	inter   *x509.CertPool
	revoked map[string]bool // serial numbers (hex) by issuer-independent serial
	now     func() time.Time

	mu    sync.RWMutex
	cache map[[32]byte]*Identity
}

// New loads the trusted CAs and CRLs.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.CAFiles) == 0 {
		return nil, errors.New("mutual TLS needs at least one trusted CA file")
	}
	v := &Verifier{cfg: cfg, roots: x509.NewCertPool(), inter: x509.NewCertPool(), revoked: map[string]bool{}, now: time.Now, cache: map[[32]byte]*Identity{}}
	for _, f := range cfg.CAFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		n := 0
		for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if c.IsCA && string(c.RawIssuer) == string(c.RawSubject) {
				v.roots.AddCert(c)
			} else {
				v.inter.AddCert(c)
			}
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no PEM certificate", f)
		}
	}
	for _, f := range cfg.CRLFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if b, _ := pem.Decode(data); b != nil {
			data = b.Bytes
		}
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, e := range crl.RevokedCertificateEntries {
			v.revoked[e.SerialNumber.Text(16)] = true
		}
	}
	return v, nil
}

// FromXFCC reports whether certificates may come from x-forwarded-client-cert.
func (v *Verifier) FromXFCC() bool { return v.cfg.FromXFCC }

// ErrNoCertificate means the request carries no client certificate.
var ErrNoCertificate = errors.New("no client certificate")

// Verify checks a certificate as Envoy forwards it: URL-encoded PEM.
func (v *Verifier) Verify(urlEncodedPEM string) (*Identity, error) {
	if urlEncodedPEM == "" {
		return nil, ErrNoCertificate
	}
	h := sha256.Sum256([]byte(urlEncodedPEM))
	v.mu.RLock()
	id := v.cache[h]
	v.mu.RUnlock()
	now := v.now()
	if id != nil && now.Before(id.NotAfter) {
		return id, nil
	}
	raw, err := url.QueryUnescape(urlEncodedPEM)
	if err != nil {
		return nil, errors.New("certificate is not URL-encoded PEM")
	}
	block, _ := pem.Decode([]byte(raw))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: v.inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("certificate not trusted: %w", err)
	}
	if v.revoked[cert.SerialNumber.Text(16)] {
		return nil, errors.New("certificate revoked")
	}
	if err := v.allowed(cert); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(cert.Raw)
	id = &Identity{Subject: cert.Subject.CommonName, Thumbprint: base64.RawURLEncoding.EncodeToString(sum[:]), NotAfter: cert.NotAfter}
	if id.Subject == "" {
		if sans := sanList(cert); len(sans) > 0 {
			id.Subject = sans[0]
		}
	}
	v.mu.Lock()
	if len(v.cache) > 10000 {
		clear(v.cache)
	}
	v.cache[h] = id
	v.mu.Unlock()
	return id, nil
}

func (v *Verifier) allowed(cert *x509.Certificate) error {
	if len(v.cfg.AllowedSANs) > 0 && !anyIn(sanList(cert), v.cfg.AllowedSANs) {
		return errors.New("certificate SAN not allowed")
	}
	if len(v.cfg.AllowedSubjects) > 0 && !anyIn([]string{cert.Subject.String()}, v.cfg.AllowedSubjects) {
		return errors.New("certificate subject not allowed")
	}
	if len(v.cfg.AllowedSPKI) > 0 {
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		if !anyIn([]string{base64.StdEncoding.EncodeToString(sum[:])}, v.cfg.AllowedSPKI) {
			return errors.New("certificate key not allowed")
		}
	}
	return nil
}

func sanList(c *x509.Certificate) []string {
	out := append([]string{}, c.DNSNames...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return append(out, c.EmailAddresses...)
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

// CertFromXFCC takes the URL-encoded PEM of the client certificate from an
// x-forwarded-client-cert header value (its first element's Cert= field).
func CertFromXFCC(xfcc string) string {
	first, _, _ := strings.Cut(xfcc, ",")
	for _, field := range strings.Split(first, ";") {
		k, val, ok := strings.Cut(field, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "Cert") {
			return strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return ""
}
