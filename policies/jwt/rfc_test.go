package jwt

import (
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/identity"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// RFC 7515 §4.1.11: a recipient that does not understand a critical extension must reject
// the token; crit must not be empty and must name parameters that are present.
func TestRFC7515CritIsRejected(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	v := newVerifier(t, IssuerConfig{Name: "idp", Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}})
	for name, h := range map[string]map[string]any{
		"an unknown critical extension":   {"crit": []string{"exp-ext"}, "exp-ext": 1},
		"crit naming an absent parameter": {"crit": []string{"nowhere"}},
		"an empty crit":                   {"crit": []string{}},
		"crit not a list":                 {"crit": "b64", "b64": false},
	} {
		_, err := v.Verify(context.Background(), idp.SignHeader("rsa", "RS256", idp.Claims(aud, "read"), h))
		if kindOf(err) != identity.Invalid {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// RFC 8725 §3.11 and RFC 9068 §4: tokens of other kinds from the same issuer (logout
// tokens, security events, DPoP proofs) are not access tokens; the issuer's accepted types
// decide the rest.
func TestRFC8725TypIsChecked(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	def := newVerifier(t, IssuerConfig{Name: "idp", Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}})
	strict := newVerifier(t, IssuerConfig{Name: "idp", Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}, AcceptedTypes: []string{"at+jwt"}})
	for _, c := range []struct {
		typ            any // nil: no typ
		def, atJWTOnly bool
	}{
		{nil, true, false},
		{"JWT", true, false},
		{"at+jwt", true, true},
		{"application/AT+JWT", true, true},
		{"logout+jwt", false, false},
		{"secevent+jwt", false, false},
		{"dpop+jwt", false, false},
		{"application/token-introspection+jwt", false, false},
		{"id+jwt", false, false},
		{42, false, false},
	} {
		tok := idp.SignHeader("rsa", "RS256", idp.Claims(aud, "read"), map[string]any{"typ": c.typ})
		if _, err := def.Verify(context.Background(), tok); (err == nil) != c.def {
			t.Errorf("typ %v, default types: %v", c.typ, err)
		}
		if _, err := strict.Verify(context.Background(), tok); (err == nil) != c.atJWTOnly {
			t.Errorf("typ %v, at+jwt only: %v", c.typ, err)
		}
	}
	if _, err := New(Config{Issuers: []IssuerConfig{{Issuer: "x", JWKSURL: "http://127.0.0.1:1/", Audiences: []string{aud}, AcceptedTypes: []string{"logout+jwt"}}}}, zap.NewNop(), nil); err == nil {
		t.Error("an issuer accepting logout tokens as access tokens was configured")
	}
}

// RFC 7800 §3.1, RFC 8705 §3.1, RFC 9449 §6: a token that says it is bound is never taken
// as unbound — a malformed cnf is refused, and a jkt is kept so that the token needs its
// DPoP proof.
func TestRFC8705MalformedCnfFailsClosed(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	v := newVerifier(t, IssuerConfig{Name: "idp", Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}})
	for name, cnf := range map[string]any{
		"x5t#S256 as an array": map[string]any{"x5t#S256": []string{"abc"}},
		"cnf as a string":      "x5t#S256=abc",
		"an empty cnf":         map[string]any{},
		"an unchecked method":  map[string]any{"jwk": map[string]any{"kty": "EC"}},
		"jkt as a number":      map[string]any{"jkt": 7},
	} {
		c := idp.Claims(aud, "read")
		c["cnf"] = cnf
		if _, err := v.Verify(context.Background(), idp.Sign("rsa", "RS256", c)); kindOf(err) != identity.Invalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := idp.Claims(aud, "read")
	c["cnf"] = map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
	id, err := v.Verify(context.Background(), idp.Sign("rsa", "RS256", c))
	if err != nil || id.KeyThumbprint != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" {
		t.Errorf("DPoP-bound token: %v %+v", err, id)
	}
}

// rawJWKS serves whatever document is stored.
func rawJWKS(t *testing.T) (url string, set func(doc []byte)) {
	var doc atomic.Pointer[[]byte]
	srv := tu.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(*doc.Load())
	}))
	return srv.URL + "/jwks", func(d []byte) { doc.Store(&d) }
}

func jwk(t *testing.T, pub any, kid string) map[string]any {
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j.Marshal())
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func jwksDoc(keys ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// RFC 7517 §5: keys a recipient cannot use are ignored, not the whole set. An off-curve EC
// key beside a valid new key: the new key verifies, the bad one is skipped and counted.
// RFC 7517 §4.5: one kid on an RSA and an EC key — each token finds its key by kid and
// algorithm.
func TestRFC7517UnusableKeysAreSkipped(t *testing.T) {
	rsaKey, ecKey := tu.RSAKey(t), tu.ECKey(t, elliptic.P256())
	offCurve := jwk(t, ecKey.Public(), "bad")
	offCurve["y"] = base64.RawURLEncoding.EncodeToString(new(big.Int).Add(ecKey.Y, big.NewInt(1)).FillBytes(make([]byte, 32)))
	url, set := rawJWKS(t)
	set(jwksDoc(offCurve, jwk(t, rsaKey.Public(), "new"), jwk(t, ecKey.Public(), "same"), jwk(t, rsaKey.Public(), "same")))
	reg := prometheus.NewRegistry()
	v, err := New(Config{Issuers: []IssuerConfig{{Name: "idp", Issuer: "https://idp.test", JWKSURL: url, Audiences: []string{aud}}}}, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	go v.Run(t.Context())
	for deadline := time.Now().Add(5 * time.Second); !v.Ready(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no keys: the bad key rejected the whole set")
		}
	}
	claims := func() gojwt.MapClaims {
		return gojwt.MapClaims{"iss": "https://idp.test", "aud": aud, "sub": "a", "exp": time.Now().Add(time.Hour).Unix()}
	}
	for name, tok := range map[string]string{
		"the valid key beside an off-curve one": tu.Sign(t, gojwt.SigningMethodRS256, "new", rsaKey, claims()),
		"RS256 under a kid shared with EC":      tu.Sign(t, gojwt.SigningMethodRS256, "same", rsaKey, claims()),
		"ES256 under a kid shared with RSA":     tu.Sign(t, gojwt.SigningMethodES256, "same", ecKey, claims()),
	} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := v.Verify(context.Background(), tu.Sign(t, gojwt.SigningMethodES256, "bad", ecKey, claims())); err == nil {
		t.Error("a token under the off-curve key's kid passed")
	}
	if n := testutil.ToFloat64(v.m.keysSkipped.WithLabelValues("idp", "invalid")); n != 1 {
		t.Errorf("tollgate_jwks_keys_skipped_total{reason=invalid} = %v, want 1", n)
	}
}
