package test

import (
	"strings"
	"testing"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// DPoP through the built binary: a token minted bound to the client's key (cnf.jkt) is
// allowed with a proof for the request, refused when the proof is replayed, and refused
// as a Bearer token.
func TestDPoPBoundTokensThroughTheBinary(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	def := write(t, dir, "bank.yaml", `openapi: 3.1.0
info: {title: Bank, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {}}}}
security: [{oauth: []}]
paths:
  /accounts: {get: {responses: {"200": {description: ok}}}}
`)
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
