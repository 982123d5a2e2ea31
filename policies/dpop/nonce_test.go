package dpop

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// RFC 9449 §8 and §9: with nonces required, a proof without one (or with one the gateway
// did not give out, or an expired one) is refused with UseNonce, so that the enforcer
// answers error="use_dpop_nonce" and a DPoP-Nonce to retry with; a proof with a good
// nonce passes, and one past half its life asks for a renewal (§8.2).
func TestServerNonces(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	n, err := NewNonces(key, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	n.now = func() time.Time { return now }
	chk, err := New(Config{Nonces: n})
	if err != nil {
		t.Fatal(err)
	}
	c := tu.NewDPoPKey(t)
	withNonce := func(v string) proofOpt {
		return func(claims gojwt.MapClaims, _ map[string]any) { claims["nonce"] = v }
	}
	useNonce := func(what string, p string) {
		t.Helper()
		_, err := chk.Verify(context.Background(), p, req)
		var e *Error
		if !errors.As(err, &e) || !e.UseNonce || !strings.Contains(e.Reason, "RFC 9449 §8") {
			t.Errorf("%s: %v, want a use_dpop_nonce refusal", what, err)
		}
	}
	useNonce("no nonce", proof(c, "GET", htu, req.AccessToken))
	given := chk.Nonce()
	if len(given) != 32 || strings.ContainsAny(given, "+/=") {
		t.Fatalf("nonce %q is not 32 base64url characters", given)
	}
	got, err := chk.Verify(context.Background(), proof(c, "GET", htu, req.AccessToken, withNonce(given)), req)
	if err != nil || got.RenewNonce {
		t.Fatalf("a fresh nonce: %+v %v", got, err)
	}
	// Another enforcer with the same key takes it; one with another key does not.
	same, _ := NewNonces(key, time.Minute)
	same.now = n.now
	if _, err := same.check(given); err != nil {
		t.Errorf("the same key refuses the nonce: %v", err)
	}
	otherKey, _ := NewNonces(nil, time.Minute)
	if _, err := otherKey.check(given); err == nil {
		t.Errorf("another key takes the nonce")
	}
	useNonce("a forged nonce", proof(c, "GET", htu, req.AccessToken, withNonce(strings.Repeat("A", 32))))
	useNonce("a nonce of another length", proof(c, "GET", htu, req.AccessToken, withNonce(given+"A")))
	// The same nonce serves many proofs; one nonce is given out per quarter of its life.
	now = now.Add(14 * time.Second)
	if chk.Nonce() != given {
		t.Errorf("a new nonce before a quarter of the lifetime")
	}
	now = now.Add(20 * time.Second) // 34 s: past half the life
	got, err = chk.Verify(context.Background(), proof(c, "GET", htu, req.AccessToken, withNonce(given)), req)
	if err != nil || !got.RenewNonce {
		t.Errorf("a nonce past half its life: %+v %v, want accepted with a renewal", got, err)
	}
	if chk.Nonce() == given {
		t.Errorf("no new nonce after a quarter of the lifetime")
	}
	now = now.Add(27 * time.Second) // 61 s
	useNonce("an expired nonce", proof(c, "GET", htu, req.AccessToken, withNonce(given)))
	if _, err := NewNonces([]byte("short"), time.Minute); err == nil {
		t.Errorf("a short key is taken")
	}
}
