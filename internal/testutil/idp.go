package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	gojwt "github.com/golang-jwt/jwt/v5"
)

// IdP is a fake identity provider: real keys, a real JWKS endpoint on loopback, and a signer.
// Keys can be added (rotation) and the endpoint taken down.
type IdP struct {
	t      testing.TB
	Issuer string
	srv    *httptest.Server

	mu      sync.Mutex
	keys    map[string]crypto.Signer // kid → private key
	public  []string                 // kids published in the JWKS
	down    atomic.Bool
	hang    atomic.Int64 // time.Duration the JWKS endpoint waits
	Fetches atomic.Int64
}

// NewIdP starts a JWKS server publishing an RSA 2048 ("rsa"), an EC P-256 ("ec") and an
// Ed25519 ("ed") key. With issuer "", the issuer is the server's URL, and its OpenID
// Connect discovery document is served at /.well-known/openid-configuration.
func NewIdP(t testing.TB, issuer string) *IdP {
	t.Helper()
	p := &IdP{t: t, Issuer: issuer, keys: map[string]crypto.Signer{}}
	p.AddKey("rsa", RSAKey(t))
	p.AddKey("ec", ECKey(t, elliptic.P256()))
	p.AddKey("ed", EdKey(t))
	p.srv = NewHTTPServer(t, http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	if issuer == "" {
		p.Issuer = p.srv.URL
	}
	return p
}

// JWKSURL is where the keys are published.
func (p *IdP) JWKSURL() string { return p.srv.URL + "/jwks" }

// AddKey publishes a key under kid (a rotation when done after start).
func (p *IdP) AddKey(kid string, k crypto.Signer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[kid] = k
	p.public = append(p.public, kid)
}

// SetDown makes the JWKS endpoint answer 503 (down=true) or serve again.
func (p *IdP) SetDown(down bool) { p.down.Store(down) }

// SetHang makes the JWKS endpoint wait d before it answers (0: at once), as an IdP that
// hangs does.
func (p *IdP) SetHang(d time.Duration) { p.hang.Store(int64(d)) }

func (p *IdP) serve(w http.ResponseWriter, r *http.Request) {
	p.Fetches.Add(1)
	if d := time.Duration(p.hang.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if p.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/.well-known/openid-configuration" && p.Issuer == p.srv.URL {
		json.NewEncoder(w).Encode(map[string]string{"issuer": p.Issuer, "jwks_uri": p.JWKSURL()})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	set := jwkset.JWKSMarshal{}
	for _, kid := range p.public {
		j, err := jwkset.NewJWKFromKey(p.keys[kid].Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
		if err != nil {
			p.t.Errorf("JWKS marshal %s: %v", kid, err)
			return
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	json.NewEncoder(w).Encode(set)
}

// Claims returns a valid claim set for aud with the given scopes, expiring in an hour.
func (p *IdP) Claims(aud string, scopes string) gojwt.MapClaims {
	now := time.Now()
	return gojwt.MapClaims{
		"iss": p.Issuer, "sub": "alice", "aud": aud, "azp": "app-1", "scope": scopes,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text(),
	}
}

// Sign signs claims with the key kid and algorithm alg, putting kid in the header.
func (p *IdP) Sign(kid, alg string, claims gojwt.MapClaims) string {
	p.t.Helper()
	p.mu.Lock()
	k := p.keys[kid]
	p.mu.Unlock()
	return Sign(p.t, gojwt.GetSigningMethod(alg), kid, k, claims)
}

// SignHeader is Sign with more header parameters (typ, crit, ...); a nil value removes one.
func (p *IdP) SignHeader(kid, alg string, claims gojwt.MapClaims, header map[string]any) string {
	p.t.Helper()
	p.mu.Lock()
	k := p.keys[kid]
	p.mu.Unlock()
	tok := gojwt.NewWithClaims(gojwt.GetSigningMethod(alg), claims)
	tok.Header["kid"] = kid
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
			continue
		}
		tok.Header[name] = v
	}
	s, err := tok.SignedString(k)
	if err != nil {
		p.t.Fatalf("signing: %v", err)
	}
	return s
}

// Sign signs claims with any key (a private key, or []byte for HMAC).
func Sign(t testing.TB, m gojwt.SigningMethod, kid string, key any, claims gojwt.MapClaims) string {
	t.Helper()
	tok := gojwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

// RSAKey makes an RSA 2048 key.
func RSAKey(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ECKey makes an ECDSA key on curve c.
func ECKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// EdKey makes an Ed25519 key.
func EdKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
