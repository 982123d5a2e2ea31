package jwt

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// FuzzVerify throws arbitrary strings at the token path: it must refuse them with a typed
// error, never panic, and never accept a token it did not sign.
func FuzzVerify(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dir := f.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	os.WriteFile(jwks, []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"`+b64(pub)+`"}]}`), 0o600)
	v, err := New(Config{Issuers: []IssuerConfig{{Issuer: "fuzz", JWKSFile: jwks, Audiences: []string{"a"}}}}, zap.NewNop(), nil)
	if err != nil {
		f.Fatal(err)
	}
	good := tu.Sign(f, gojwt.SigningMethodEdDSA, "k", priv, gojwt.MapClaims{"iss": "fuzz", "aud": "a", "exp": time.Now().Add(time.Hour).Unix()})
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := v.Verify(t.Context(), tok)
		if err == nil {
			if tok != good {
				t.Fatalf("accepted a token it did not sign: %q", tok)
			}
			if id == nil {
				t.Fatal("nil identity without error")
			}
			return
		}
		if kindOf(err) == 0 {
			t.Fatalf("untyped error %v", err)
		}
	})
}

func b64(b []byte) string { return base64URL.EncodeToString(b) }

var base64URL = base64.RawURLEncoding
