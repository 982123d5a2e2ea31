package dpop

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// proofOpt edits a proof's claims and header before it is signed.
type proofOpt = func(claims gojwt.MapClaims, header map[string]any)

// proof is k's proof, edited by opts.
func proof(k *tu.DPoPKey, method, htu, token string, opts ...proofOpt) string {
	return k.ProofWith(method, htu, token, func(c gojwt.MapClaims, h map[string]any) {
		for _, o := range opts {
			o(c, h)
		}
	})
}

var req = Request{Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/shop/v1/orders?page=2", AccessToken: "the-access-token"}

const htu = "https://api.example.com/shop/v1/orders"

func TestRFC9449Proofs(t *testing.T) {
	chk, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := tu.NewDPoPKey(t)
	p, err := chk.Verify(context.Background(), proof(c, "GET", htu, req.AccessToken), req)
	if err != nil || p.Thumbprint != c.Thumbprint() {
		t.Fatalf("a valid proof: %+v %v (thumbprint want %s)", p, err, c.Thumbprint())
	}
	// htu normalized (RFC 3986 §6.2.2-6.2.3): case, default port, unreserved escapes; the query
	// is not part of it.
	for _, u := range []string{"HTTPS://API.example.com:443/shop/v1/orders", "https://api.example.com/shop/v1/%6Frders"} {
		if _, err := chk.Verify(context.Background(), proof(c, "GET", u, req.AccessToken), req); err != nil {
			t.Errorf("htu %s: %v", u, err)
		}
	}
	other := tu.NewDPoPKey(t)
	hmacProof := func() string {
		tok := gojwt.NewWithClaims(gojwt.SigningMethodHS256, gojwt.MapClaims{"jti": "h", "htm": "GET", "htu": htu, "iat": time.Now().Unix()})
		tok.Header["typ"], tok.Header["jwk"] = "dpop+jwt", map[string]any{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}
		s, _ := tok.SignedString([]byte("secretsecretsecretsecretsecret"))
		return s
	}()
	withD := c.JWK()
	withD["d"] = "AAAA"
	for name, bad := range map[string]string{
		"wrong method (htm)":      proof(c, "POST", htu, req.AccessToken),
		"wrong URI (htu)":         proof(c, "GET", "https://api.example.com/shop/v1/other", req.AccessToken),
		"wrong host (htu)":        proof(c, "GET", "https://evil.example.com/shop/v1/orders", req.AccessToken),
		"another token (ath)":     proof(c, "GET", htu, "another-token"),
		"no ath":                  proof(c, "GET", htu, ""),
		"iat too old":             proof(c, "GET", htu, req.AccessToken, func(cl gojwt.MapClaims, _ map[string]any) { cl["iat"] = time.Now().Add(-2 * time.Minute).Unix() }),
		"iat in the future":       proof(c, "GET", htu, req.AccessToken, func(cl gojwt.MapClaims, _ map[string]any) { cl["iat"] = time.Now().Add(time.Minute).Unix() }),
		"no jti":                  proof(c, "GET", htu, req.AccessToken, func(cl gojwt.MapClaims, _ map[string]any) { delete(cl, "jti") }),
		"typ JWT":                 proof(c, "GET", htu, req.AccessToken, func(_ gojwt.MapClaims, h map[string]any) { h["typ"] = "JWT" }),
		"another key in jwk":      proof(c, "GET", htu, req.AccessToken, func(_ gojwt.MapClaims, h map[string]any) { h["jwk"] = other.JWK() }),
		"a private key in jwk":    proof(c, "GET", htu, req.AccessToken, func(_ gojwt.MapClaims, h map[string]any) { h["jwk"] = withD }),
		"no jwk":                  proof(c, "GET", htu, req.AccessToken, func(_ gojwt.MapClaims, h map[string]any) { delete(h, "jwk") }),
		"a symmetric key (HS256)": hmacProof,
		"two proofs":              proof(c, "GET", htu, req.AccessToken) + ", " + proof(c, "GET", htu, req.AccessToken),
		"garbage":                 "not-a-proof",
	} {
		if _, err := chk.Verify(context.Background(), bad, req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// RFC 9449 §11.1: a proof is used once. Two enforcers sharing Redis refuse a proof the other
// has seen; a proof that failed another check does not use up its jti.
func TestRFC9449ReplayAcrossReplicas(t *testing.T) {
	r := tu.StartRedis(t)
	newChecker := func() *Checker {
		client := redis.NewClient(&redis.Options{Addr: r.Addr})
		t.Cleanup(func() { client.Close() })
		chk, err := New(Config{Replay: NewRedis(client, "test:dpop:")})
		if err != nil {
			t.Fatal(err)
		}
		return chk
	}
	a, b := newChecker(), newChecker()
	c := tu.NewDPoPKey(t)
	p1 := proof(c, "GET", htu, req.AccessToken)
	wrong := req
	wrong.Method = "DELETE"
	if _, err := a.Verify(context.Background(), p1, wrong); err == nil {
		t.Fatal("a proof for GET passed a DELETE")
	}
	if _, err := a.Verify(context.Background(), p1, req); err != nil {
		t.Fatalf("first use on replica A: %v", err)
	}
	if _, err := b.Verify(context.Background(), p1, req); err == nil || !strings.Contains(err.Error(), "used before") {
		t.Errorf("replayed on replica B: %v", err)
	}
	if _, err := a.Verify(context.Background(), p1, req); err == nil {
		t.Error("replayed on replica A")
	}
	// In memory: the same on one replica.
	m, _ := New(Config{})
	p2 := proof(c, "GET", htu, req.AccessToken)
	if _, err := m.Verify(context.Background(), p2, req); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(context.Background(), p2, req); err == nil {
		t.Error("replayed in memory")
	}
}

func TestMemoryReplayIsBounded(t *testing.T) {
	m := NewMemory(100)
	for i := range 1000 {
		m.Seen(context.Background(), string(rune(i)), time.Minute)
	}
	if len(m.ids) > 100 {
		t.Errorf("%d ids kept, bound 100", len(m.ids))
	}
}

func TestConfigRefusesSymmetricAlgorithms(t *testing.T) {
	for _, a := range []string{"HS256", "none"} {
		if _, err := New(Config{Algorithms: []string{a}}); err == nil {
			t.Errorf("%s accepted for proofs", a)
		}
	}
}

// RFC 7638 §3.1's example: the thumbprint of its RSA key.
func TestRFC7638Thumbprint(t *testing.T) {
	n := "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	if got := Thumbprint(map[string]string{"e": "AQAB", "kty": "RSA", "n": n}); got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Errorf("thumbprint %s", got)
	}
}

// htu is compared as RFC 9449 §4.3 says: after RFC 3986 §6.2.2 and §6.2.3 normalization,
// and no other. Each case names the rule that decides it.
func TestHtuNormalization(t *testing.T) {
	chk, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	k := tu.NewDPoPKey(t)
	for _, c := range []struct {
		htu, path string
		same      bool
		rule      string
	}{
		{"https://api.example.com/api%2Fv1/items", "/api/v1/items", false, "§6.2.2.2: only unreserved characters are decoded; %2F is not /"},
		{"https://api.example.com/api/v1/items", "/api%2Fv1/items", false, "§6.2.2.2, from the request's side"},
		{"https://api.example.com/a%40b/items", "/a@b/items", false, "§6.2.2.2: @ is reserved (gen-delims)"},
		{"https://api.example.com/a%21b/items", "/a!b/items", false, "§6.2.2.2: ! is reserved (sub-delims)"},
		{"https://api.example.com/v1/%7Eme", "/v1/~me", true, "§6.2.2.2: ~ is unreserved"},
		{"https://api.example.com/v1/%7eme", "/v1/%7Eme", true, "§6.2.2.1/2: hex case, then unreserved decoded"},
		{"https://api.example.com/v1/a%3ab", "/v1/a%3Ab", true, "§6.2.2.1: percent-encoding hex digits in either case"},
		{"https://api.example.com/v1/./items", "/v1/items", true, "§6.2.2.3: dot segments removed (§5.2.4)"},
		{"https://api.example.com/v1/x/../items", "/v1/items", true, "§6.2.2.3"},
		{"https://api.example.com/v1/%2E%2E/v1/items", "/v1/items", true, "§6.2.2.2 then §6.2.2.3: %2E is an unreserved '.'"},
		{"https://api.example.com/v1//items", "/v1/items", false, "§6.2.2.3 removes dot segments only, not empty ones (unlike path.Clean)"},
		{"https://api.example.com/v1/items/", "/v1/items", false, "a trailing slash is part of the path"},
		{"https://api.example.com", "/", true, "§6.2.3: an empty path is /"},
		{"https://API.Example.COM:443/v1/items", "/v1/items", true, "§6.2.2.1 and §6.2.3: host case, default port"},
	} {
		r := Request{Method: "GET", Scheme: "https", Host: "api.example.com", Path: c.path}
		_, err := chk.Verify(context.Background(), proof(k, "GET", c.htu, ""), r)
		if (err == nil) != c.same {
			t.Errorf("htu %s for path %s: %v (%s)", c.htu, c.path, err, c.rule)
		}
	}
}

// RFC 3986 §5.4's examples of removing dot segments (the paths of §5.4.1 and §5.4.2).
func TestRemoveDotSegments(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b/c/./../../g": "/a/g", "mid/content=5/../6": "mid/6", "/b/c/./g": "/b/c/g", "/b/c/.": "/b/c/",
		"/b/c/..": "/b/", "/b/c/../g": "/b/g", "/b/c/../..": "/", "/b/c/../../../g": "/g", "/b/c/g.": "/b/c/g.",
		"/b/c/.g": "/b/c/.g", "/b/c/g..": "/b/c/g..", "/b/c/./../g": "/b/g", "/b/c/./g/.": "/b/c/g/", "/b/c/g/./h": "/b/c/g/h",
		"/b/c/g/../h": "/b/c/h", "//a//./b": "//a//b",
	} {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}

// RFC 9864 §2.2: a proof whose alg is the fully specified "Ed25519", which current JOSE
// libraries write for Ed25519 keys, is verified with its Ed25519 key, as "EdDSA" is; a
// configuration that lists only EdDSA refuses it, and the name does not let another kind of
// key through.
func TestEd25519ProofsRFC9864(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	okp := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub)}
	sign := func(alg string, jwk map[string]any) string {
		tok := gojwt.NewWithClaims(gojwt.GetSigningMethod(alg), gojwt.MapClaims{"jti": fmt.Sprint(time.Now().UnixNano()), "htm": "GET", "htu": htu, "iat": time.Now().Unix()})
		tok.Header["typ"], tok.Header["jwk"] = "dpop+jwt", jwk
		s, err := tok.SignedString(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	r := Request{Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/shop/v1/orders"}
	all, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"Ed25519", "EdDSA"} {
		p, err := all.Verify(context.Background(), sign(alg, okp), r)
		if err != nil || p.Thumbprint == "" {
			t.Errorf("a proof of alg %s with its Ed25519 key: %v", alg, err)
		}
	}
	eddsaOnly, err := New(Config{Algorithms: []string{"EdDSA"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eddsaOnly.Verify(context.Background(), sign("Ed25519", okp), r); err == nil {
		t.Error("a proof of alg Ed25519 passed a configuration of EdDSA alone")
	}
	ec := tu.NewDPoPKey(t)
	if _, err := all.Verify(context.Background(), sign("Ed25519", ec.JWK()), r); err == nil {
		t.Error("a proof of alg Ed25519 naming an EC key in its header passed")
	}
}
