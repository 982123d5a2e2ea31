package decisiontest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/tollgate-gw/tollgate/policies/dpop"
)

// DPoP binds a case's token to a key the runner makes (cnf.jkt, RFC 9449 §6.1) and sends
// it with the DPoP scheme and a proof for the request (§4): Proof "" is a proof by the bound
// key; "other" a proof by another key; "none" no proof at all.
type DPoP struct {
	Proof string `json:"proof,omitempty"`
}

// Certificate is a client certificate forwarded as Envoy does (the URL-encoded PEM of the
// connection's certificate): issued by the CA the runner trusts, or, Untrusted, by another.
type Certificate struct {
	Subject   string `json:"subject,omitempty"` // CN, default test-client
	Untrusted bool   `json:"untrusted,omitempty"`
}

// testCA is the CA the runner's enforcer trusts for client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its PEM, for the enforcer's caFiles
}

func newCA(dir, name string) (*testCA, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return &testCA{cert: cert, key: k, file: file}, nil
}

// issue makes a client certificate for cn, URL-encoded PEM as Envoy forwards it.
func (ca *testCA) issue(cn string) (string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		return "", err
	}
	return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))), nil
}

// proofKey is a DPoP key: its public JWK and RFC 7638 thumbprint.
type proofKey struct {
	key   *ecdsa.PrivateKey
	jwk   map[string]any
	thumb string
}

func newProofKey() (*proofKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	coord := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	pub, err := k.PublicKey.Bytes() // 0x04 || X || Y (SEC 1 uncompressed)
	if err != nil {
		return nil, err
	}
	x, y := pub[1:33], pub[33:65]
	members := map[string]string{"crv": "P-256", "kty": "EC", "x": coord(x), "y": coord(y)}
	jwk := map[string]any{}
	for n, v := range members {
		jwk[n] = v
	}
	return &proofKey{key: k, jwk: jwk, thumb: dpop.Thumbprint(members)}, nil
}

// proof is a DPoP proof (RFC 9449 §4.2) for method and htu, bound to the access token.
func (p *proofKey) proof(method, htu, token string) (string, error) {
	tok := gojwt.NewWithClaims(gojwt.SigningMethodES256, gojwt.MapClaims{"jti": rand.Text(), "htm": method, "htu": htu, "iat": time.Now().Unix(), "ath": dpop.AccessTokenHash(token)})
	tok.Header["typ"], tok.Header["jwk"] = "dpop+jwt", p.jwk
	return tok.SignedString(p.key)
}
