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
	"testing"
	"time"
)

func TestAllowListsCRLAndXFCC(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	leaf := func(serial int64, dns string) (string, *x509.Certificate) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: dns}, DNSNames: []string{dns},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		c, _ := x509.ParseCertificate(der)
		return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))), c
	}
	good, goodCert := leaf(10, "svc-a.internal")
	other, _ := leaf(11, "svc-b.internal")
	revoked, _ := leaf(12, "svc-a.internal")
	crlDER, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(12), RevocationTime: time.Now()}}}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, "crl.pem")
	os.WriteFile(crlFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER}), 0o600)

	v, err := New(Config{CAFiles: []string{caFile}, AllowedSANs: []string{"svc-a.internal"}, CRLFiles: []string{crlFile}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(good)
	if err != nil || id.Subject != "svc-a.internal" {
		t.Fatalf("good: %+v %v", id, err)
	}
	sum := sha256.Sum256(goodCert.Raw)
	if id.Thumbprint != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("thumbprint is not the x5t#S256 of the certificate")
	}
	if _, err := v.Verify(other); err == nil {
		t.Error("a SAN outside the allow-list was accepted")
	}
	if _, err := v.Verify(revoked); err == nil {
		t.Error("a revoked certificate was accepted")
	}
	spki := sha256.Sum256(goodCert.RawSubjectPublicKeyInfo)
	pinned, _ := New(Config{CAFiles: []string{caFile}, AllowedSPKI: []string{base64.StdEncoding.EncodeToString(spki[:])}})
	if _, err := pinned.Verify(good); err != nil {
		t.Errorf("pinned key: %v", err)
	}
	if _, err := pinned.Verify(other); err == nil {
		t.Error("another key passed the SPKI pin")
	}
	xfcc := `By=spiffe://gw;Hash=abc;Cert="` + good + `";Subject="CN=svc-a",By=other`
	if CertFromXFCC(xfcc) != good {
		t.Error("XFCC Cert field not read")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no CA accepted")
	}
}
