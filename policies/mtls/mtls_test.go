package mtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ca is a certificate authority made in the test.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T, name string, parent *ca) *ca {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	signer, signKey := tmpl, k
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &k.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &ca{c, k}
}

// leaf issues a client certificate; it returns the URL-encoded PEM Envoy would forward.
func (c *ca) leaf(t *testing.T, serial int64, dns string) (string, *x509.Certificate) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: dns}, DNSNames: []string{dns},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &k.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return encode(cert), cert
}

func encode(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return url.QueryEscape(b.String())
}

func writePEM(t *testing.T, name, typ string, ders ...[]byte) string {
	t.Helper()
	var b []byte
	for _, d := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (c *ca) crl(t *testing.T, next time.Time, serials ...int64) string {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: next.Add(-time.Hour), NextUpdate: next,
		RevokedCertificateEntries: entries}, c.cert, c.key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, "crl.pem", "X509 CRL", der)
}

func TestAllowListsAndXFCC(t *testing.T) {
	root := newCA(t, "CA", nil)
	caFile := writePEM(t, "ca.pem", "CERTIFICATE", root.cert.Raw)
	good, goodCert := root.leaf(t, 10, "svc-a.internal")
	other, _ := root.leaf(t, 11, "svc-b.internal")
	v, err := New(Config{CAFiles: []string{caFile}, AllowedSANs: []string{"svc-a.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(good, "")
	if err != nil || id.Subject != "svc-a.internal" {
		t.Fatalf("good: %+v %v", id, err)
	}
	sum := sha256.Sum256(goodCert.Raw)
	if id.Thumbprint != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("thumbprint is not the x5t#S256 of the certificate")
	}
	if _, err := v.Verify(other, ""); err == nil {
		t.Error("a SAN outside the allow-list was accepted")
	}
	spki := sha256.Sum256(goodCert.RawSubjectPublicKeyInfo)
	pinned, _ := New(Config{CAFiles: []string{caFile}, AllowedSPKI: []string{base64.StdEncoding.EncodeToString(spki[:])}})
	if _, err := pinned.Verify(good, ""); err != nil {
		t.Errorf("pinned key: %v", err)
	}
	if _, err := pinned.Verify(other, ""); err == nil {
		t.Error("another key passed the SPKI pin")
	}
	xfcc := `By=spiffe://gw;Hash=abc;Cert="` + good + `";Chain="` + good + `";Subject="CN=svc-a",By=other`
	if CertFromXFCC(xfcc) != good || ChainFromXFCC(xfcc) != good {
		t.Error("XFCC Cert or Chain field not read")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no CA accepted")
	}
}

// RFC 5280 §4.2.1.9: a client identity is an end-entity certificate. The root and an
// intermediate listed in caFiles verify (they are in the pool) but are CAs: refused.
func TestRFC5280CACertificateIsNotAClientCertificate(t *testing.T) {
	root := newCA(t, "Root", nil)
	inter := newCA(t, "Intermediate", root)
	v, err := New(Config{CAFiles: []string{writePEM(t, "ca.pem", "CERTIFICATE", root.cert.Raw, inter.cert.Raw)}})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*x509.Certificate{"the root": root.cert, "an intermediate": inter.cert} {
		if _, err := v.Verify(encode(c), ""); err == nil || !strings.Contains(err.Error(), "CA certificate") {
			t.Errorf("%s as a client certificate: %v", name, err)
		}
	}
	leaf, _ := inter.leaf(t, 5, "svc.internal")
	if _, err := v.Verify(leaf, ""); err != nil {
		t.Errorf("a leaf of the intermediate: %v", err)
	}
}

// A forwarded chain completes the path to a root of caFiles: leaf + intermediate in the
// forwarded PEM, or XFCC's Chain= beside the leaf. The intermediate alone is not trusted.
func TestRFC5280ForwardedChainIsUsed(t *testing.T) {
	root := newCA(t, "Root", nil)
	inter := newCA(t, "Intermediate", root)
	v, err := New(Config{CAFiles: []string{writePEM(t, "root.pem", "CERTIFICATE", root.cert.Raw)}})
	if err != nil {
		t.Fatal(err)
	}
	leaf, leafCert := inter.leaf(t, 7, "svc.internal")
	if _, err := v.Verify(leaf, ""); err == nil {
		t.Fatal("a leaf verified without its intermediate")
	}
	if _, err := v.Verify(encode(leafCert, inter.cert), ""); err != nil {
		t.Errorf("leaf + intermediate in one forwarded value: %v", err)
	}
	if _, err := v.Verify(leaf, encode(leafCert, inter.cert)); err != nil {
		t.Errorf("leaf with XFCC Chain=: %v", err)
	}
	stranger := newCA(t, "Stranger", nil)
	sleaf, scert := stranger.leaf(t, 8, "x")
	if _, err := v.Verify(sleaf, encode(scert, stranger.cert)); err == nil {
		t.Error("a chain to a root outside caFiles verified")
	}
}

// RFC 5280 §6.3: a CRL revokes its own issuer's serials only; it must be signed by a CA of
// caFiles; past nextUpdate it fails hard (refuse) or soft (keep the stale list).
func TestRFC5280CRLs(t *testing.T) {
	a, b := newCA(t, "CA A", nil), newCA(t, "CA B", nil)
	caFile := writePEM(t, "ca.pem", "CERTIFICATE", a.cert.Raw, b.cert.Raw)
	revokedA, _ := a.leaf(t, 12, "a.internal")
	sameSerialB, _ := b.leaf(t, 12, "b.internal")
	goodA, _ := a.leaf(t, 13, "a2.internal")
	v, err := New(Config{CAFiles: []string{caFile}, CRLFiles: []string{a.crl(t, time.Now().Add(time.Hour), 12)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(revokedA, ""); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("A's revoked serial 12: %v", err)
	}
	if _, err := v.Verify(sameSerialB, ""); err != nil {
		t.Errorf("B's certificate with serial 12 (not revoked by B): %v", err)
	}
	if _, err := v.Verify(goodA, ""); err != nil {
		t.Errorf("A's serial 13: %v", err)
	}
	// Signed by a CA that is not trusted here: refused at start.
	stranger := newCA(t, "CA A", nil) // same name, another key
	if _, err := New(Config{CAFiles: []string{caFile}, CRLFiles: []string{stranger.crl(t, time.Now().Add(time.Hour), 13)}}); err == nil {
		t.Error("a CRL signed by a key outside caFiles was loaded")
	}
	expired := a.crl(t, time.Now().Add(-time.Minute), 12)
	hard, err := New(Config{CAFiles: []string{caFile}, CRLFiles: []string{expired}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hard.Verify(goodA, ""); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("hard: A's certificate with A's CRL expired: %v", err)
	}
	if _, err := hard.Verify(sameSerialB, ""); err != nil {
		t.Errorf("hard: B's certificate (its CA has no CRL): %v", err)
	}
	soft, _ := New(Config{CAFiles: []string{caFile}, CRLFiles: []string{expired}, CRLExpiry: "soft"})
	if _, err := soft.Verify(goodA, ""); err != nil {
		t.Errorf("soft: %v", err)
	}
	if _, err := soft.Verify(revokedA, ""); err == nil {
		t.Error("soft: the stale list still revokes serial 12")
	}
	// A verdict is reused no longer than the CRL's nextUpdate.
	fresh, _ := New(Config{CAFiles: []string{caFile}, CRLFiles: []string{a.crl(t, time.Now().Add(time.Minute), 12)}})
	if _, err := fresh.Verify(goodA, ""); err != nil {
		t.Fatal(err)
	}
	fresh.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if _, err := fresh.Verify(goodA, ""); err == nil {
		t.Error("a cached verdict outlived the CRL")
	}
}

// put replaces file with the content of another file, a second later than its last time
// (so that a change is seen whatever the file system's time resolution).
func put(t *testing.T, file, from string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	later := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
}

// CRLs refresh without a restart: a renewed file takes effect at once (RFC 5280 §6.3: a
// relying party uses the current CRL), an expired list (crlExpiry: hard) stops refusing when
// a fresh one replaces it, and a file that does not read or verify keeps the last good list
// in force, reported.
func TestCRLsRefresh(t *testing.T) {
	a := newCA(t, "CA A", nil)
	caFile := writePEM(t, "ca.pem", "CERTIFICATE", a.cert.Raw)
	cert13, _ := a.leaf(t, 13, "a13.internal")
	file := a.crl(t, time.Now().Add(time.Hour), 12)
	v, err := New(Config{CAFiles: []string{caFile}, CRLFiles: []string{file}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(cert13, ""); err != nil {
		t.Fatalf("serial 13 before it is revoked: %v", err)
	}
	if got, err := v.ReloadCRLs(false); len(got) != 0 || err != nil {
		t.Errorf("nothing changed, yet read again: %v %v", got, err)
	}
	put(t, file, a.crl(t, time.Now().Add(time.Hour), 12, 13))
	if got, err := v.ReloadCRLs(false); len(got) != 1 || err != nil {
		t.Fatalf("the renewed CRL: %v %v", got, err)
	}
	if _, err := v.Verify(cert13, ""); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("serial 13 after the renewed CRL revokes it (a cached verdict must not outlive its list): %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n"), 0o600)
	put(t, file, bad)
	if got, err := v.ReloadCRLs(false); len(got) != 0 || err == nil {
		t.Errorf("a broken CRL file: read again %v, error %v", got, err)
	}
	if _, err := v.Verify(cert13, ""); err == nil {
		t.Error("a broken CRL file dropped the last good list")
	}
	stranger := newCA(t, "CA A", nil)
	put(t, file, stranger.crl(t, time.Now().Add(time.Hour)))
	if _, err := v.ReloadCRLs(false); err == nil {
		t.Error("a CRL signed outside caFiles was taken")
	}
	// Expired, then renewed: RunCRLs reads it again by itself.
	put(t, file, a.crl(t, time.Now().Add(-time.Minute)))
	if _, err := v.ReloadCRLs(false); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(cert13, ""); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("an expired CRL (hard): %v", err)
	}
	heard := make(chan []string, 10)
	go v.RunCRLs(t.Context(), 20*time.Millisecond, func(reloaded []string, err error) {
		if err == nil {
			heard <- reloaded
		}
	})
	put(t, file, a.crl(t, time.Now().Add(time.Hour)))
	select {
	case <-heard:
	case <-time.After(5 * time.Second):
		t.Fatal("RunCRLs did not read the renewed file")
	}
	if _, err := v.Verify(cert13, ""); err != nil {
		t.Errorf("after the fresh CRL replaced the expired one: %v", err)
	}
}
