package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// DPoPKey is a DPoP client's key (P-256): it makes proofs the way RFC 9449 §4.2 says.
type DPoPKey struct {
	t   testing.TB
	key *ecdsa.PrivateKey
}

// NewDPoPKey makes a client key.
func NewDPoPKey(t testing.TB) *DPoPKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &DPoPKey{t: t, key: k}
}

func coord(v *big.Int) string {
	return base64.RawURLEncoding.EncodeToString(v.FillBytes(make([]byte, 32)))
}

// JWK is the public key as a JWK.
func (k *DPoPKey) JWK() map[string]any {
	return map[string]any{"kty": "EC", "crv": "P-256", "x": coord(k.key.X), "y": coord(k.key.Y)}
}

// Thumbprint is the key's RFC 7638 thumbprint, as an IdP writes it in cnf.jkt.
func (k *DPoPKey) Thumbprint() string {
	canonical := `{"crv":"P-256","kty":"EC","x":"` + coord(k.key.X) + `","y":"` + coord(k.key.Y) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Proof signs a proof for method and htu, bound to token ("" for none); edit may change
// its claims before signing.
func (k *DPoPKey) Proof(method, htu, token string, edit ...func(gojwt.MapClaims)) string {
	return k.ProofWith(method, htu, token, func(c gojwt.MapClaims, _ map[string]any) {
		for _, e := range edit {
			e(c)
		}
	})
}

// ProofWith is Proof with edit given the header too (typ, jwk, ...) before signing.
func (k *DPoPKey) ProofWith(method, htu, token string, edit func(claims gojwt.MapClaims, header map[string]any)) string {
	claims := gojwt.MapClaims{"jti": rand.Text(), "htm": method, "htu": htu, "iat": time.Now().Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	tok := gojwt.NewWithClaims(gojwt.SigningMethodES256, claims)
	tok.Header["typ"] = "dpop+jwt"
	tok.Header["jwk"] = k.JWK()
	edit(claims, tok.Header)
	s, err := tok.SignedString(k.key)
	if err != nil {
		k.t.Fatal(err)
	}
	return s
}
