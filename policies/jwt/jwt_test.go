package jwt

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/identity"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

const aud = "api.example.com"

func newVerifier(t *testing.T, issuers ...IssuerConfig) *Verifier {
	t.Helper()
	v, err := New(Config{Issuers: issuers, ClaimHeaders: map[string]string{"sub": "X-User"}}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	go v.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !v.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("verifier never got its keys")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return v
}

func kindOf(err error) identity.Failure {
	var e *identity.Error
	if errors.As(err, &e) {
		return e.Failure
	}
	return 0
}

func TestVerify(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	v := newVerifier(t, IssuerConfig{Name: "idp", Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}})
	other := tu.NewIdP(t, "https://other.test")
	now := time.Now()
	with := func(edit func(c gojwt.MapClaims)) gojwt.MapClaims {
		c := idp.Claims(aud, "read write")
		edit(c)
		return c
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(tu.RSAKey(t).Public())
	cases := []struct {
		name  string
		token string
		want  identity.Failure // 0 = accepted
	}{
		{"valid RS256", idp.Sign("rsa", "RS256", idp.Claims(aud, "read")), 0},
		{"valid PS256", idp.Sign("rsa", "PS256", idp.Claims(aud, "read")), 0},
		{"valid ES256", idp.Sign("ec", "ES256", idp.Claims(aud, "read")), 0},
		{"valid EdDSA", idp.Sign("ed", "EdDSA", idp.Claims(aud, "read")), 0},
		{"valid Ed25519 (RFC 9864's fully specified name for EdDSA over Ed25519)", idp.Sign("ed", "Ed25519", idp.Claims(aud, "read")), 0},
		{"Ed25519 with an RSA key's kid", idp.SignHeader("ed", "Ed25519", idp.Claims(aud, "read"), map[string]any{"kid": "rsa"}), identity.Invalid},
		{"audience in a list", idp.Sign("rsa", "RS256", with(func(c gojwt.MapClaims) { c["aud"] = []string{"x", aud} })), 0},
		{"expired", idp.Sign("rsa", "RS256", with(func(c gojwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), identity.Expired},
		{"expired within skew is accepted", idp.Sign("rsa", "RS256", with(func(c gojwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })), 0},
		{"no exp", idp.Sign("rsa", "RS256", with(func(c gojwt.MapClaims) { delete(c, "exp") })), identity.Invalid},
		{"not yet valid", idp.Sign("rsa", "RS256", with(func(c gojwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), identity.Invalid},
		{"issued in the future", idp.Sign("rsa", "RS256", with(func(c gojwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })), identity.Invalid},
		{"exp not a number", idp.Sign("rsa", "RS256", with(func(c gojwt.MapClaims) { c["exp"] = "tomorrow" })), identity.Malformed},
		{"wrong issuer", other.Sign("rsa", "RS256", other.Claims(aud, "read")), identity.Invalid},
		{"right iss, key of another IdP", other.Sign("rsa", "RS256", idp.Claims(aud, "read")), identity.Invalid},
		{"wrong audience", idp.Sign("rsa", "RS256", with(func(c gojwt.MapClaims) { c["aud"] = "other-api" })), identity.Invalid},
		{"no audience", idp.Sign("rsa", "RS256", with(func(c gojwt.MapClaims) { delete(c, "aud") })), identity.Invalid},
		{"alg none", unsigned(idp.Claims(aud, "read")), identity.Invalid},
		{"HS256 signed with the RSA public key (confusion)", tu.Sign(t, gojwt.SigningMethodHS256, "rsa", pemBytes(pubDER), idp.Claims(aud, "read")), identity.Invalid},
		{"ES256 header on the RSA key's kid", swapAlg(idp.Sign("rsa", "RS256", idp.Claims(aud, "read")), "ES256"), identity.Invalid},
		{"tampered payload", tamper(idp.Sign("rsa", "RS256", idp.Claims(aud, "read"))), identity.Invalid},
		{"garbage", "not-a-token", identity.Malformed},
		{"three garbage parts", "a.b.c", identity.Malformed},
		{"too long", strings.Repeat("a", 9000), identity.Malformed},
		{"empty", "", identity.Malformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := v.Verify(t.Context(), c.token)
			if got := kindOf(err); got != c.want {
				t.Fatalf("kind = %d (%v), want %d", got, err, c.want)
			}
			if c.want == 0 && (id.Subject != "alice" || id.ClientID != "app-1" || id.Issuer != "idp") {
				t.Errorf("identity %+v", id)
			}
			if err != nil && strings.Contains(err.Error(), c.token) && c.token != "" {
				t.Error("the error message leaks the token")
			}
		})
	}
}

func TestAlgorithmAllowList(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	v := newVerifier(t, IssuerConfig{Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}, Algorithms: []string{"PS256"}})
	if _, err := v.Verify(t.Context(), idp.Sign("rsa", "PS256", idp.Claims(aud, ""))); err != nil {
		t.Fatalf("PS256 refused: %v", err)
	}
	if _, err := v.Verify(t.Context(), idp.Sign("rsa", "RS256", idp.Claims(aud, ""))); kindOf(err) != identity.Invalid {
		t.Fatalf("RS256 on a PS256-only issuer: %v", err)
	}
}

func TestCurveMustMatchAlgorithm(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	idp.AddKey("p384", tu.ECKey(t, elliptic.P384()))
	v := newVerifier(t, IssuerConfig{Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}})
	if _, err := v.Verify(t.Context(), idp.Sign("p384", "ES384", idp.Claims(aud, ""))); err != nil {
		t.Fatalf("ES384 on P-384 refused: %v", err)
	}
	// A P-384 key named by a token that claims ES256 must be refused before any signature math.
	tok := swapAlg(idp.Sign("p384", "ES384", idp.Claims(aud, "")), "ES256")
	if _, err := v.Verify(t.Context(), tok); kindOf(err) != identity.Invalid {
		t.Fatalf("ES256 with a P-384 key: %v", err)
	}
}

func TestHMACIssuerNeedsItsSecretAndOnlyHS(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	v := newVerifier(t, IssuerConfig{Issuer: "hs", HMACSecret: secret, Audiences: []string{aud}})
	claims := gojwt.MapClaims{"iss": "hs", "aud": aud, "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
	if _, err := v.Verify(t.Context(), tu.Sign(t, gojwt.SigningMethodHS256, "", secret, claims)); err != nil {
		t.Fatalf("HS256 with the secret refused: %v", err)
	}
	if _, err := v.Verify(t.Context(), tu.Sign(t, gojwt.SigningMethodHS256, "", []byte("another-secret-another-secret-xx"), claims)); kindOf(err) != identity.Invalid {
		t.Fatalf("HS256 with another secret: %v", err)
	}
	for _, bad := range []IssuerConfig{
		{Issuer: "x", JWKSURL: "http://127.0.0.1:1/jwks", Audiences: []string{aud}, Algorithms: []string{"HS256"}},
		{Issuer: "x", JWKSURL: "http://127.0.0.1:1/jwks", Audiences: []string{aud}, Algorithms: []string{"none"}},
		{Issuer: "x", HMACSecret: secret, Audiences: []string{aud}, Algorithms: []string{"RS256"}},
		{Issuer: "x", HMACSecret: []byte("short"), Audiences: []string{aud}},
		{Issuer: "x", JWKSURL: "http://127.0.0.1:1/jwks"},
		{Issuer: "x", JWKSURL: "http://127.0.0.1:1/jwks", Audiences: []string{aud}, ClockSkew: time.Hour},
	} {
		if _, err := New(Config{Issuers: []IssuerConfig{bad}}, zap.NewNop(), nil); err == nil {
			t.Errorf("config accepted: %+v", bad)
		}
	}
}

func TestKeyRotationAndIdPDown(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	v := newVerifier(t, IssuerConfig{Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}, MinRefreshInterval: 50 * time.Millisecond})
	// The IdP rotates: a token signed with a key the gateway has never seen.
	time.Sleep(60 * time.Millisecond)
	idp.AddKey("rsa-2", tu.RSAKey(t))
	before := idp.Fetches.Load()
	if _, err := v.Verify(t.Context(), idp.Sign("rsa-2", "RS256", idp.Claims(aud, ""))); err != nil {
		t.Fatalf("token with the rotated key refused: %v", err)
	}
	if idp.Fetches.Load() != before+1 {
		t.Errorf("unknown kid should cause exactly one fetch, got %d", idp.Fetches.Load()-before)
	}
	// A flood of made-up kids costs at most one fetch per MinRefreshInterval.
	base := idp.Sign("rsa", "RS256", idp.Claims(aud, ""))
	before = idp.Fetches.Load()
	start := time.Now()
	for i := range 50 {
		if _, err := v.Verify(t.Context(), forgeKid(base, fmt.Sprintf("nope-%d", i))); kindOf(err) != identity.Invalid {
			t.Fatalf("made-up kid: %v", err)
		}
	}
	if n, most := idp.Fetches.Load()-before, int64(time.Since(start)/(50*time.Millisecond))+2; n > most {
		t.Errorf("50 unknown kids caused %d fetches, want at most %d", n, most)
	}
	// The IdP goes down: cached keys keep working, unknown keys fail fast.
	idp.SetDown(true)
	time.Sleep(60 * time.Millisecond)
	if _, err := v.Verify(t.Context(), idp.Sign("ec", "ES256", idp.Claims(aud, ""))); err != nil {
		t.Fatalf("IdP down: token with a cached key refused: %v", err)
	}
	idp.AddKey("rsa-3", tu.RSAKey(t))
	start = time.Now()
	if _, err := v.Verify(t.Context(), idp.Sign("rsa-3", "RS256", idp.Claims(aud, ""))); kindOf(err) != identity.Invalid {
		t.Fatalf("IdP down, unknown key: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("unknown key with the IdP down took %v", d)
	}
	// Back up: the new key is found.
	idp.SetDown(false)
	time.Sleep(60 * time.Millisecond)
	if _, err := v.Verify(t.Context(), idp.Sign("rsa-3", "RS256", idp.Claims(aud, ""))); err != nil {
		t.Fatalf("IdP back: %v", err)
	}
}

func TestCacheSkipsSignatureCheckButNotExpiry(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	v := newVerifier(t, IssuerConfig{Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}, ClockSkew: time.Second})
	c := idp.Claims(aud, "read")
	c["exp"] = time.Now().Add(1500 * time.Millisecond).Unix()
	tok := idp.Sign("rsa", "RS256", c)
	for range 3 {
		id, err := v.Verify(t.Context(), tok)
		if err != nil || !id.HasScope("read") || id.HasScope("write") {
			t.Fatalf("id %+v err %v", id, err)
		}
		if len(id.Headers) != 1 || id.Headers[0] != (identity.Header{Name: "X-User", Value: "alice"}) {
			t.Errorf("claim headers %+v", id.Headers)
		}
	}
	if n := testutil.ToFloat64(v.m.verify.WithLabelValues("ok")); n != 1 {
		t.Errorf("signature checks = %v, want 1", n)
	}
	if n := testutil.ToFloat64(v.m.cacheHits); n != 2 {
		t.Errorf("cache hits = %v, want 2", n)
	}
	// Past exp (+skew) the cached entry must not answer.
	time.Sleep(time.Until(time.Unix(c["exp"].(int64), 0).Add(1100 * time.Millisecond)))
	if _, err := v.Verify(t.Context(), tok); kindOf(err) != identity.Expired {
		t.Fatalf("after exp: %v", err)
	}
}

func TestStaticKeySources(t *testing.T) {
	dir := t.TempDir()
	k := tu.RSAKey(t)
	der, _ := x509.MarshalPKIXPublicKey(k.Public())
	pemFile := filepath.Join(dir, "pub.pem")
	os.WriteFile(pemFile, pemBytes(der), 0o600)
	v := newVerifier(t, IssuerConfig{Issuer: "pem", CertificateFile: pemFile, Audiences: []string{aud}, Algorithms: []string{"RS256"}})
	claims := gojwt.MapClaims{"iss": "pem", "aud": aud, "exp": time.Now().Add(time.Hour).Unix()}
	if _, err := v.Verify(t.Context(), tu.Sign(t, gojwt.SigningMethodRS256, "any-kid", k, claims)); err != nil {
		t.Fatalf("PEM issuer: %v", err)
	}
	if _, err := v.Verify(t.Context(), tu.Sign(t, gojwt.SigningMethodRS256, "", tu.RSAKey(t), claims)); kindOf(err) != identity.Invalid {
		t.Fatalf("PEM issuer, other key: %v", err)
	}
}

func TestScopesFromScpAndCustomClaim(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	v := newVerifier(t,
		IssuerConfig{Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}},
		IssuerConfig{Issuer: "custom", JWKSURL: idp.JWKSURL(), Audiences: []string{aud}, ScopeClaim: "permissions"})
	c := idp.Claims(aud, "")
	delete(c, "scope")
	c["scp"] = []string{"a", "b"}
	id, err := v.Verify(t.Context(), idp.Sign("rsa", "RS256", c))
	if err != nil || !id.HasScope("a") || !id.HasScope("b") {
		t.Fatalf("scp: %+v %v", id, err)
	}
	c = idp.Claims(aud, "ignored")
	c["iss"] = "custom"
	c["permissions"] = "x y"
	id, err = v.Verify(t.Context(), idp.Sign("rsa", "RS256", c))
	if err != nil || !id.HasScope("x") || id.HasScope("ignored") {
		t.Fatalf("custom claim: %+v %v", id, err)
	}
}

func pemBytes(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func unsigned(c gojwt.MapClaims) string {
	s, _ := gojwt.NewWithClaims(gojwt.SigningMethodNone, c).SignedString(gojwt.UnsafeAllowNoneSignatureType)
	return s
}

// swapAlg rewrites the header's alg, keeping kid and the original signature.
func swapAlg(tok, alg string) string {
	parts := strings.Split(tok, ".")
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	h = []byte(strings.Replace(string(h), `"alg":"`+headerAlg(string(h))+`"`, `"alg":"`+alg+`"`, 1))
	parts[0] = base64.RawURLEncoding.EncodeToString(h)
	return strings.Join(parts, ".")
}

func forgeKid(tok, kid string) string {
	parts := strings.Split(tok, ".")
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	h = []byte(strings.Replace(string(h), `"kid":"rsa"`, `"kid":"`+kid+`"`, 1))
	parts[0] = base64.RawURLEncoding.EncodeToString(h)
	return strings.Join(parts, ".")
}

func headerAlg(h string) string {
	i := strings.Index(h, `"alg":"`) + len(`"alg":"`)
	return h[i : i+strings.Index(h[i:], `"`)]
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	p = []byte(strings.Replace(string(p), `"alice"`, `"admin"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

// An enforcer that starts while the IdP is away verifies tokens with the JWKS it last
// fetched (kept in the cache directory); the copy is replaced by each good fetch.
func TestStartWithIdPDownUsesTheLastFetchedJWKS(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	dir := t.TempDir()
	cfg := IssuerConfig{Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}}
	first, err := New(Config{Issuers: []IssuerConfig{cfg}, CacheDir: dir}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if first.Ready() {
		t.Fatal("keys before any fetch and with no copy")
	}
	ctx, cancel := context.WithCancel(t.Context())
	go first.Run(ctx)
	tu.Eventually(t, "first fetch", first.Ready)
	files, _ := filepath.Glob(filepath.Join(dir, "jwks-*.json"))
	if len(files) != 1 {
		t.Fatalf("copies: %v", files)
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("copy mode %v", fi.Mode().Perm())
	}
	cancel()

	idp.SetDown(true)
	reg := prometheus.NewRegistry()
	second, err := New(Config{Issuers: []IssuerConfig{cfg}, CacheDir: dir}, zap.NewNop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	go second.Run(t.Context())
	if !second.Ready() {
		t.Fatal("no keys from the copy")
	}
	if _, err := second.Verify(t.Context(), idp.Sign("rsa", "RS256", idp.Claims(aud, ""))); err != nil {
		t.Fatalf("IdP down at start, token refused: %v", err)
	}
	if n, _ := testutil.GatherAndCount(reg, "tollgate_jwks_age_seconds"); n != 1 {
		t.Errorf("jwks age metric: %d series", n)
	}
	// Without a copy, the same start refuses: nothing was kept.
	none, _ := New(Config{Issuers: []IssuerConfig{cfg}, CacheDir: t.TempDir()}, zap.NewNop(), nil)
	if _, err := none.Verify(t.Context(), idp.Sign("rsa", "RS256", idp.Claims(aud, ""))); err == nil {
		t.Error("a token verified with no keys at all")
	}
}

// While the IdP hangs, a token naming a key the verifier does not know waits for the
// refetch no longer than half of what is left of the call's deadline — Envoy's ext_authz
// timeout (500 ms in the generated configuration) — so the answer is still a 401, not
// Envoy's 503; the refetch goes on in the background, and a key it brings is used.
func TestUnknownKidWhileTheIdPHangsAnswersWithinTheDeadline(t *testing.T) {
	idp := tu.NewIdP(t, "https://idp.test")
	v := newVerifier(t, IssuerConfig{Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}, MinRefreshInterval: 10 * time.Millisecond})
	time.Sleep(20 * time.Millisecond)
	idp.AddKey("rsa-late", tu.RSAKey(t))
	idp.SetHang(2 * time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := v.Verify(ctx, idp.Sign("rsa-late", "RS256", idp.Claims(aud, "")))
	if took := time.Since(start); kindOf(err) != identity.Invalid || took > 300*time.Millisecond {
		t.Fatalf("unknown kid, IdP hanging: %v after %v, want Invalid within 300 ms", err, took)
	}
	idp.SetHang(0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := v.Verify(t.Context(), idp.Sign("rsa-late", "RS256", idp.Claims(aud, ""))); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the key the hanging IdP served at last is never used")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
