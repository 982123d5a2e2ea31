package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// bankAPI takes any bearer token of the development issuer, DPoP-bound or not.
const bankAPI = `openapi: 3.1.0
info: {title: Bank, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {}}}}
security: [{oauth: []}]
paths:
  /accounts: {get: {responses: {"200": {description: ok}}}}
`

// DPoP through the built binary: a token minted bound to the client's key (cnf.jkt) is
// allowed with a proof for the request, refused when the proof is replayed, and refused
// as a Bearer token.
func TestDPoPBoundTokensThroughTheBinary(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	def := write(t, dir, "bank.yaml", bankAPI)
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", def)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	key := tu.NewDPoPKey(t)
	tok := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--dpop-jkt", key.Thumbprint()).stdout)
	check := func(authz, proof string) string {
		args := []string{"check", "--config", cfg, "--path", "/bank/v1/accounts", "-H", "Authorization: " + authz}
		if proof != "" {
			args = append(args, "-H", "DPoP: "+proof)
		}
		return tollgate(t, args...).stdout
	}
	proof := key.Proof("GET", "https://localhost/bank/v1/accounts", tok)
	if o := check("DPoP "+tok, proof); !strings.Contains(o, "ALLOWED 200") {
		t.Fatalf("a bound token with its proof: %s", o)
	}
	if o := check("DPoP "+tok, proof); !strings.Contains(o, "DENIED 401") || !strings.Contains(o, `error="invalid_dpop_proof"`) {
		t.Errorf("the proof replayed: %s", o)
	}
	if o := check("Bearer "+tok, ""); !strings.Contains(o, "DENIED 401") || !strings.Contains(o, "DPoP realm=") {
		t.Errorf("the bound token as a Bearer token: %s", o)
	}
}

// RFC 9449 §8-§9 through the binary: with authz.dpop.requireNonce, a proof without a
// nonce is refused with use_dpop_nonce and a DPoP-Nonce; the retry with it passes, also
// at a second enforcer that shares the nonce secret file.
func TestDPoPNoncesThroughTheBinary(t *testing.T) {
	dir := t.TempDir()
	secret := write(t, dir, "nonce.key", "a-nonce-secret-of-at-least-32-bytes-shared\n")
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	base, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = write(t, dir, "run.yaml", strings.Replace(string(base), "authz: {listen: "+p.authz+"}",
		"authz: {listen: "+p.authz+", dpop: {requireNonce: true, nonceSecretFile: "+secret+"}}", 1))
	def := write(t, dir, "bank.yaml", bankAPI)
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", def)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	// A second enforcer on the same etcd, with the same nonce secret.
	q := newPorts(t)
	second := write(t, dir, "authz2.yaml", `dataDir: `+filepath.Join(dir, "data-authz2")+`
etcd: {endpoints: [`+p.etcd+`]}
authz: {listen: `+q.authz+`, dpop: {requireNonce: true, nonceSecretFile: `+secret+`}}
admin: {listen: `+q.admin+`}
`)
	startTollgate(t, "authz", "--dev", "--config", second, "--data-dir", filepath.Join(dir, "data-run")).waitUp()
	waitReady(t, "http://"+q.admin+"/readyz")

	key := tu.NewDPoPKey(t)
	tok := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--dpop-jkt", key.Thumbprint()).stdout)
	check := func(config string, proof string) string {
		return tollgate(t, "check", "--config", config, "--path", "/bank/v1/accounts", "-H", "Authorization: DPoP "+tok, "-H", "DPoP: "+proof).stdout
	}
	const htu = "https://localhost/bank/v1/accounts"
	o := check(cfg, key.Proof("GET", htu, tok))
	m := regexp.MustCompile(`(?i)dpop-nonce: (\S+)`).FindStringSubmatch(o)
	if !strings.Contains(o, "DENIED 401") || !strings.Contains(o, `error="use_dpop_nonce"`) || m == nil {
		t.Fatalf("a proof without a nonce: %s", o)
	}
	withNonce := func(c gojwt.MapClaims) { c["nonce"] = m[1] }
	if o := check(cfg, key.Proof("GET", htu, tok, withNonce)); !strings.Contains(o, "ALLOWED 200") {
		t.Errorf("the retry with the nonce: %s", o)
	}
	if o := check(second, key.Proof("GET", htu, tok, withNonce)); !strings.Contains(o, "ALLOWED 200") {
		t.Errorf("the nonce at a second enforcer sharing the secret: %s", o)
	}
}
