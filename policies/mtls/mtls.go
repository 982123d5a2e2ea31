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
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/defaults"
)

// Config says which client certificates are trusted.
type Config struct {
	// CAFiles hold the trusted CA certificates (PEM); intermediates may be included.
	CAFiles []string
	// Allow-lists; empty means any. SANs match DNS names, URIs and e-mail addresses.
	AllowedSANs     []string
	AllowedSubjects []string // RFC 2253 subject strings, as x509.Certificate.Subject.String()
	AllowedSPKI     []string // base64 SHA-256 of the certificate's SubjectPublicKeyInfo
	// CRLFiles are certificate revocation lists, each signed by a CA of CAFiles.
	CRLFiles []string
	// CRLExpiry is what a CRL past its nextUpdate means: "hard" (default) refuses the
	// certificates of its issuer until a fresh CRL is loaded; "soft" keeps using the stale
	// list.
	CRLExpiry string
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
	until      time.Time // how long the verdict may be reused: NotAfter, or a CRL's nextUpdate
}

// crl is one issuer's revocation list.
type crl struct {
	revoked    map[string]bool // serial numbers, hex
	nextUpdate time.Time
	file       string
}

// Verifier checks client certificates.
type Verifier struct {
	cfg   Config
	roots *x509.CertPool
	inter *x509.CertPool
	cas   []*x509.Certificate // every certificate of CAFiles: the CRLs' possible signers
	// crls by the raw subject of the CA that signed them: a serial is revoked only by its
	// own issuer's list (RFC 5280 §6.3). Swapped whole when a CRL file is read again
	// (crl.go).
	crls atomic.Pointer[map[string]*crl]
	now  func() time.Time

	reloadMu sync.Mutex
	files    map[string]*crlFile // each CRL file as last read well

	mu    sync.RWMutex
	cache map[[32]byte]*Identity
}

// New loads the trusted CAs and CRLs. A CRL that no CA of CAFiles signed is an error.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.CAFiles) == 0 {
		return nil, errors.New("mutual TLS needs at least one trusted CA file")
	}
	switch cfg.CRLExpiry {
	case "":
		cfg.CRLExpiry = defaults.CRLExpiry
	case "hard", "soft":
	default:
		return nil, fmt.Errorf("crlExpiry %q must be hard or soft", cfg.CRLExpiry)
	}
	v := &Verifier{cfg: cfg, roots: x509.NewCertPool(), inter: x509.NewCertPool(), now: time.Now, cache: map[[32]byte]*Identity{}, files: map[string]*crlFile{}}
	for _, f := range cfg.CAFiles {
		certs, err := v.loadCAs(f)
		if err != nil {
			return nil, err
		}
		v.cas = append(v.cas, certs...)
	}
	for _, f := range cfg.CRLFiles {
		c, err := v.readCRL(f)
		if err != nil {
			return nil, err
		}
		v.files[f] = c
	}
	v.swapCRLs()
	return v, nil
}

// loadCAs adds the certificates of a PEM file to the roots (self-signed CAs) or the
// intermediates, and returns them.
func (v *Verifier) loadCAs(f string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(f)
	if err != nil {
		return nil, err
	}
	var cas []*x509.Certificate
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
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", f)
	}
	return cas, nil
}

// FromXFCC reports whether certificates may come from x-forwarded-client-cert.
func (v *Verifier) FromXFCC() bool { return v.cfg.FromXFCC }

// ErrNoCertificate means the request carries no client certificate.
var ErrNoCertificate = errors.New("no client certificate")

// Verify checks a client certificate as Envoy forwards it: URL-encoded PEM, the leaf first.
// Further certificates in it, and those of chain (XFCC's Chain=, leaf included), are
// untrusted intermediates that may complete the path to a CA of CAFiles.
func (v *Verifier) Verify(urlEncodedPEM, chain string) (*Identity, error) {
	if urlEncodedPEM == "" {
		return nil, ErrNoCertificate
	}
	hh := sha256.New()
	hh.Write([]byte(urlEncodedPEM))
	hh.Write([]byte{0})
	hh.Write([]byte(chain))
	var h [32]byte
	hh.Sum(h[:0])
	v.mu.RLock()
	id := v.cache[h]
	v.mu.RUnlock()
	now := v.now()
	if id != nil && now.Before(id.until) {
		return id, nil
	}
	certs, err := decodeCerts(urlEncodedPEM)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	// RFC 5280 §4.2.1.9: a CA certificate is not a client identity, even one in caFiles.
	if cert.BasicConstraintsValid && cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign != 0 {
		return nil, errors.New("a CA certificate is not a client certificate (RFC 5280 §4.2.1.9)")
	}
	inter := v.inter
	extra := certs[1:]
	if chain != "" {
		if more, err := decodeCerts(chain); err == nil {
			extra = append(extra, more...)
		}
	}
	if len(extra) > 0 {
		inter = v.inter.Clone()
		for _, c := range extra {
			inter.AddCert(c)
		}
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, fmt.Errorf("certificate not trusted: %w", err)
	}
	until := cert.NotAfter
	var revokedErr error
	for _, path := range chains {
		u, err := v.revocation(path, now)
		if err == nil {
			until, revokedErr = minTime(until, u), nil
			break
		}
		revokedErr = err
	}
	if revokedErr != nil {
		return nil, revokedErr
	}
	if err := v.allowed(cert); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(cert.Raw)
	id = &Identity{Subject: cert.Subject.CommonName, Thumbprint: base64.RawURLEncoding.EncodeToString(sum[:]), NotAfter: cert.NotAfter, until: until}
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

// revocation checks each certificate of a verified path against its issuer's CRL (RFC
// 5280 §6.3): the serial is matched within that issuer only, and a CRL past its nextUpdate
// fails hard (or, soft, is used as it is). It returns until when the answer holds.
func (v *Verifier) revocation(path []*x509.Certificate, now time.Time) (time.Time, error) {
	until := time.Time{}
	for i := 0; i+1 < len(path); i++ {
		c := (*v.crls.Load())[string(path[i+1].RawSubject)]
		if c == nil {
			continue
		}
		if !c.nextUpdate.IsZero() && now.After(c.nextUpdate) {
			if v.cfg.CRLExpiry == "hard" {
				return now, fmt.Errorf("the CRL of %s (%s) expired at %s; refusing its certificates until a fresh one is loaded (RFC 5280 §6.3.3)", path[i+1].Subject, c.file, c.nextUpdate.Format(time.RFC3339))
			}
		} else if !c.nextUpdate.IsZero() {
			until = minTime(until, c.nextUpdate)
		}
		if c.revoked[path[i].SerialNumber.Text(16)] {
			return now, errors.New("certificate revoked")
		}
	}
	return until, nil
}

// minTime is the earlier of two times, a zero time being no bound.
func minTime(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// decodeCerts reads URL-encoded PEM certificates, at least one.
func decodeCerts(urlEncoded string) ([]*x509.Certificate, error) {
	raw, err := url.QueryUnescape(urlEncoded)
	if err != nil {
		return nil, errors.New("certificate is not URL-encoded PEM")
	}
	var out []*x509.Certificate
	rest := []byte(raw)
	for len(out) < 10 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, errors.New("certificate is not PEM")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("certificate is not PEM")
	}
	return out, nil
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
func CertFromXFCC(xfcc string) string { return xfccField(xfcc, "Cert") }

// ChainFromXFCC takes the URL-encoded PEM chain (leaf first) from an
// x-forwarded-client-cert header value (its first element's Chain= field), as the Envoy
// configuration Tollgate generates sends it.
func ChainFromXFCC(xfcc string) string { return xfccField(xfcc, "Chain") }

func xfccField(xfcc, name string) string {
	first, _, _ := strings.Cut(xfcc, ",")
	for _, field := range strings.Split(first, ";") {
		k, val, ok := strings.Cut(field, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return ""
}
