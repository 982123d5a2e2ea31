package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// client is a DPoP client: its own key, and proofs made the way RFC 9449 §4.2 says.
type client struct {
	t   *testing.T
	key crypto.Signer
	jwk map[string]any
}

func newClient(t *testing.T) *client {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &client{t: t, key: k, jwk: publicJWK(t, k.Public())}
}

func publicJWK(t *testing.T, pub any) map[string]any {
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j.Marshal())
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// thumb is the RFC 7638 thumbprint of the client's key, as an IdP puts it in cnf.jkt.
func (c *client) thumb() string {
	return Thumbprint(map[string]string{"crv": c.jwk["crv"].(string), "kty": "EC", "x": c.jwk["x"].(string), "y": c.jwk["y"].(string)})
}

type proofOpt func(claims gojwt.MapClaims, header map[string]any)

func (c *client) proof(method, htu, token string, opts ...proofOpt) string {
	claims := gojwt.MapClaims{"jti": rand.Text(), "htm": method, "htu": htu, "iat": time.Now().Unix()}
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	tok := gojwt.NewWithClaims(gojwt.SigningMethodES256, claims)
	tok.Header["typ"] = "dpop+jwt"
	tok.Header["jwk"] = c.jwk
	for _, o := range opts {
		o(claims, tok.Header)
	}
	s, err := tok.SignedString(c.key)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

var req = Request{Method: "GET", Scheme: "https", Host: "api.example.com", Path: "/shop/v1/orders?page=2", AccessToken: "the-access-token"}

const htu = "https://api.example.com/shop/v1/orders"

func TestRFC9449Proofs(t *testing.T) {
	chk, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	p, err := chk.Verify(context.Background(), c.proof("GET", htu, req.AccessToken), req)
	if err != nil || p.Thumbprint != c.thumb() {
		t.Fatalf("a valid proof: %+v %v (thumbprint want %s)", p, err, c.thumb())
	}
	// htu normalized (RFC 3986 §6.2.2-6.2.3): case, default port, unreserved escapes; the query
	// is not part of it.
	for _, u := range []string{"HTTPS://API.example.com:443/shop/v1/orders", "https://api.example.com/shop/v1/%6Frders"} {
		if _, err := chk.Verify(context.Background(), c.proof("GET", u, req.AccessToken), req); err != nil {
			t.Errorf("htu %s: %v", u, err)
		}
	}
	other := newClient(t)
	hmacProof := func() string {
		tok := gojwt.NewWithClaims(gojwt.SigningMethodHS256, gojwt.MapClaims{"jti": "h", "htm": "GET", "htu": htu, "iat": time.Now().Unix()})
		tok.Header["typ"], tok.Header["jwk"] = "dpop+jwt", map[string]any{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}
		s, _ := tok.SignedString([]byte("secretsecretsecretsecretsecret"))
		return s
	}()
	priv := c.jwk
	withD := map[string]any{}
	for k, v := range priv {
		withD[k] = v
	}
	withD["d"] = "AAAA"
	for name, proof := range map[string]string{
		"wrong method (htm)":      c.proof("POST", htu, req.AccessToken),
		"wrong URI (htu)":         c.proof("GET", "https://api.example.com/shop/v1/other", req.AccessToken),
		"wrong host (htu)":        c.proof("GET", "https://evil.example.com/shop/v1/orders", req.AccessToken),
		"another token (ath)":     c.proof("GET", htu, "another-token"),
		"no ath":                  c.proof("GET", htu, ""),
		"iat too old":             c.proof("GET", htu, req.AccessToken, func(cl gojwt.MapClaims, _ map[string]any) { cl["iat"] = time.Now().Add(-2 * time.Minute).Unix() }),
		"iat in the future":       c.proof("GET", htu, req.AccessToken, func(cl gojwt.MapClaims, _ map[string]any) { cl["iat"] = time.Now().Add(time.Minute).Unix() }),
		"no jti":                  c.proof("GET", htu, req.AccessToken, func(cl gojwt.MapClaims, _ map[string]any) { delete(cl, "jti") }),
		"typ JWT":                 c.proof("GET", htu, req.AccessToken, func(_ gojwt.MapClaims, h map[string]any) { h["typ"] = "JWT" }),
		"another key in jwk":      c.proof("GET", htu, req.AccessToken, func(_ gojwt.MapClaims, h map[string]any) { h["jwk"] = other.jwk }),
		"a private key in jwk":    c.proof("GET", htu, req.AccessToken, func(_ gojwt.MapClaims, h map[string]any) { h["jwk"] = withD }),
		"no jwk":                  c.proof("GET", htu, req.AccessToken, func(_ gojwt.MapClaims, h map[string]any) { delete(h, "jwk") }),
		"a symmetric key (HS256)": hmacProof,
		"two proofs":              c.proof("GET", htu, req.AccessToken) + ", " + c.proof("GET", htu, req.AccessToken),
		"garbage":                 "not-a-proof",
	} {
		if _, err := chk.Verify(context.Background(), proof, req); err == nil {
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
	c := newClient(t)
	proof := c.proof("GET", htu, req.AccessToken)
	wrong := req
	wrong.Method = "DELETE"
	if _, err := a.Verify(context.Background(), proof, wrong); err == nil {
		t.Fatal("a proof for GET passed a DELETE")
	}
	if _, err := a.Verify(context.Background(), proof, req); err != nil {
		t.Fatalf("first use on replica A: %v", err)
	}
	if _, err := b.Verify(context.Background(), proof, req); err == nil || !strings.Contains(err.Error(), "used before") {
		t.Errorf("replayed on replica B: %v", err)
	}
	if _, err := a.Verify(context.Background(), proof, req); err == nil {
		t.Error("replayed on replica A")
	}
	// In memory: the same on one replica.
	m, _ := New(Config{})
	p2 := c.proof("GET", htu, req.AccessToken)
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
