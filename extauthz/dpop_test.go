package extauthz_test

import (
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-gw/tollgate/extauthz"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/policies/dpop"
)

const dpopAPI = `openapi: 3.1.0
info: {title: Bank, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {}}}}
security: [{oauth: []}]
paths:
  /accounts: {get: {responses: {"200": {description: ok}}}, post: {responses: {"201": {description: ok}}}}
---
`

const dpopOnlyAPI = `openapi: 3.1.0
info: {title: Vaulted, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
x-tollgate-dpop: true
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {}}}}
security: [{oauth: []}]
paths:
  /safe: {get: {responses: {"200": {description: ok}}}}
`

// dpopRig sends CheckRequests with an Authorization and a DPoP header, for
// https://gw.test<path>.
type dpopRig struct{ *rig }

func (r dpopRig) send(t *testing.T, method, path, authz, proof string) result {
	t.Helper()
	hs := map[string]string{"authorization": authz}
	if proof != "" {
		hs["dpop"] = proof
	}
	resp, err := r.client.Check(t.Context(), extauthz.NewCheckRequest(extauthz.Request{Method: method, Path: path, Host: "gw.test", Headers: hs}))
	if err != nil {
		t.Fatal(err)
	}
	out := result{status: 200, headers: map[string]string{}, resp: resp}
	if d := resp.GetDeniedResponse(); d != nil {
		out.status, out.body = int(d.GetStatus().GetCode()), d.GetBody()
		for _, h := range d.GetHeaders() {
			out.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
	}
	return out
}

func newDPoPRig(t *testing.T, replay dpop.Replay) dpopRig {
	chk, err := dpop.New(dpop.Config{Replay: replay})
	if err != nil {
		t.Fatal(err)
	}
	return dpopRig{newRig(t, extauthz.Config{DPoP: chk}, strings.TrimSuffix(dpopAPI, "---\n"), dpopOnlyAPI)}
}

// boundToken is an access token bound to key (cnf.jkt).
func boundToken(r *rig, key *tu.DPoPKey) string {
	c := r.idp.Claims(aud, "")
	c["cnf"] = map[string]any{"jkt": key.Thumbprint()}
	return r.idp.Sign("ec", "ES256", c)
}

// RFC 9449 through the enforcer: a DPoP-bound token passes with the DPoP scheme and a
// proof by its key for this request, once; never as a Bearer token; with the right
// challenges.
func TestRFC9449DPoPBoundTokens(t *testing.T) {
	r := newDPoPRig(t, nil)
	key := tu.NewDPoPKey(t)
	tok := boundToken(r.rig, key)
	const htu = "https://gw.test/bank/v1/accounts"
	good := key.Proof("GET", htu, tok)
	if got := r.send(t, "GET", "/bank/v1/accounts?page=1", "DPoP "+tok, good); got.status != 200 {
		t.Fatalf("a valid proof: %d %s %v", got.status, got.body, got.headers)
	}
	other := tu.NewDPoPKey(t)
	for _, c := range []struct {
		name, method, authz, proof, wantErr string
	}{
		{"the same proof again (jti replayed)", "GET", "DPoP " + tok, good, "invalid_dpop_proof"},
		{"the bound token as a Bearer token", "GET", "Bearer " + tok, "", "invalid_token"},
		{"no proof", "GET", "DPoP " + tok, "", "invalid_dpop_proof"},
		{"a proof by another key", "GET", "DPoP " + tok, other.Proof("GET", htu, tok), "invalid_dpop_proof"},
		{"a proof for another method", "POST", "DPoP " + tok, key.Proof("GET", htu, tok), "invalid_dpop_proof"},
		{"a proof for another URL", "GET", "DPoP " + tok, key.Proof("GET", "https://gw.test/bank/v1/other", tok), "invalid_dpop_proof"},
		{"a proof for another token", "GET", "DPoP " + tok, key.Proof("GET", htu, boundToken(r.rig, key)), "invalid_dpop_proof"},
		{"an old proof", "GET", "DPoP " + tok, key.Proof("GET", htu, tok, func(c gojwt.MapClaims) { c["iat"] = c["iat"].(int64) - 600 }), "invalid_dpop_proof"},
		{"an unbound token with the DPoP scheme", "GET", "DPoP " + r.idp.Sign("ec", "ES256", r.idp.Claims(aud, "")), key.Proof("GET", htu, ""), "invalid_token"},
	} {
		got := r.send(t, c.method, "/bank/v1/accounts", c.authz, c.proof)
		wa := got.headers["www-authenticate"]
		if got.status != 401 || !strings.Contains(got.body, "900901") || !strings.HasPrefix(wa, `DPoP realm="bank/v1", algs="ES256`) || !strings.Contains(wa, `error="`+c.wantErr+`"`) {
			t.Errorf("%s: %d %s, WWW-Authenticate %q", c.name, got.status, got.body, wa)
		}
	}
	// Plain bearer tokens still work where DPoP is not required.
	if got := r.send(t, "GET", "/bank/v1/accounts", "Bearer "+r.idp.Sign("ec", "ES256", r.idp.Claims(aud, "")), ""); got.status != 200 {
		t.Errorf("an unbound Bearer token: %d %s", got.status, got.body)
	}
	// x-tollgate-dpop: only bound tokens with their proof; the challenge says DPoP.
	if got := r.send(t, "GET", "/vaulted/v1/safe", "Bearer "+r.idp.Sign("ec", "ES256", r.idp.Claims(aud, "")), ""); got.status != 401 || !strings.HasPrefix(got.headers["www-authenticate"], "DPoP ") {
		t.Errorf("an unbound token on a DPoP API: %d %v", got.status, got.headers)
	}
	if got := r.send(t, "GET", "/vaulted/v1/safe", "", ""); got.status != 401 || !strings.Contains(got.body, "900902") || got.headers["www-authenticate"] != `DPoP realm="vaulted/v1", algs="`+strings.Join([]string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA", "Ed25519"}, " ")+`"` {
		t.Errorf("no credential on a DPoP API: %d %v", got.status, got.headers)
	}
	if got := r.send(t, "GET", "/vaulted/v1/safe", "DPoP "+tok, key.Proof("GET", "https://gw.test/vaulted/v1/safe", tok)); got.status != 200 {
		t.Errorf("a bound token with its proof on a DPoP API: %d %s", got.status, got.body)
	}
}

// RFC 9449 §11.1 across replicas: two enforcers sharing Redis; a proof one of them
// accepted is refused by the other.
func TestRFC9449ReplayAcrossEnforcerReplicas(t *testing.T) {
	rs := tu.StartRedis(t)
	replay := func() dpop.Replay {
		c := redis.NewClient(&redis.Options{Addr: rs.Addr})
		t.Cleanup(func() { c.Close() })
		return dpop.NewRedis(c, "test:dpop:")
	}
	a := newDPoPRig(t, replay())
	// Replica B trusts the same IdP: the same verifier config, its own checker and replay.
	chk, _ := dpop.New(dpop.Config{Replay: replay()})
	eB, _, regB := newEnforcerWithIdP(t, a.idp, extauthz.Config{DPoP: chk}, strings.TrimSuffix(dpopAPI, "---\n"))
	b := dpopRig{serveRig(t, eB, a.idp, regB)}
	key := tu.NewDPoPKey(t)
	tok := boundToken(a.rig, key)
	proof := key.Proof("GET", "https://gw.test/bank/v1/accounts", tok)
	if got := a.send(t, "GET", "/bank/v1/accounts", "DPoP "+tok, proof); got.status != 200 {
		t.Fatalf("replica A: %d %s", got.status, got.body)
	}
	if got := b.send(t, "GET", "/bank/v1/accounts", "DPoP "+tok, proof); got.status != 401 || !strings.Contains(got.headers["www-authenticate"], "invalid_dpop_proof") {
		t.Errorf("the proof replayed on replica B: %d %s %v", got.status, got.body, got.headers)
	}
}

// RFC 9449 §8-§9 through the enforcer: with nonces required, a proof without one is
// answered 401 with error="use_dpop_nonce" and a DPoP-Nonce header; the client's retry
// with that nonce (a new proof, as a client makes one per request) passes.
func TestDPoPServerNonces(t *testing.T) {
	nonces, err := dpop.NewNonces(nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	chk, err := dpop.New(dpop.Config{Nonces: nonces})
	if err != nil {
		t.Fatal(err)
	}
	r := dpopRig{newRig(t, extauthz.Config{DPoP: chk}, strings.TrimSuffix(dpopAPI, "---\n"))}
	key := tu.NewDPoPKey(t)
	tok := boundToken(r.rig, key)
	const htu = "https://gw.test/bank/v1/accounts"
	got := r.send(t, "GET", "/bank/v1/accounts", "DPoP "+tok, key.Proof("GET", htu, tok))
	nonce := got.headers["dpop-nonce"]
	if got.status != 401 || !strings.Contains(got.headers["www-authenticate"], `error="use_dpop_nonce"`) || len(nonce) != 32 {
		t.Fatalf("a proof without a nonce: %d %v", got.status, got.headers)
	}
	withNonce := func(v string) func(gojwt.MapClaims) { return func(c gojwt.MapClaims) { c["nonce"] = v } }
	if got := r.send(t, "GET", "/bank/v1/accounts", "DPoP "+tok, key.Proof("GET", htu, tok, withNonce(nonce))); got.status != 200 {
		t.Fatalf("the retry with the nonce: %d %s %v", got.status, got.body, got.headers)
	}
	if got := r.send(t, "GET", "/bank/v1/accounts", "DPoP "+tok, key.Proof("GET", htu, tok, withNonce("x"+nonce[1:]))); got.status != 401 || got.headers["dpop-nonce"] != nonce {
		t.Errorf("a nonce the gateway did not give out: %d %v", got.status, got.headers)
	}
	// Bearer tokens are not touched by DPoP nonces.
	if got := r.send(t, "GET", "/bank/v1/accounts", "Bearer "+r.idp.Sign("ec", "ES256", r.idp.Claims(aud, "")), ""); got.status != 200 {
		t.Errorf("an unbound Bearer token: %d %s", got.status, got.body)
	}
}
