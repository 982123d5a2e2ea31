package test

import (
	"strings"
	"testing"
)

// WSO2 definitions decide as they do in WSO2's gateways, through the built binary.
func TestWSO2DefinitionsDecideAsInWSO2(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	locks := write(t, dir, "locks.yaml", `openapi: 3.0.3
info: {title: Locks, version: v1}
x-wso2-basePath: /locks/v1
x-wso2-disable-security: true
x-wso2-production-endpoints: {urls: [http://127.0.0.1:9000]}
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: https://idp.test/token, scopes: {}}}}
paths:
  /open: {get: {responses: {"200": {description: ok}}}}
  /secured: {get: {x-wso2-disable-security: false, responses: {"200": {description: ok}}}}
  /scoped: {get: {x-wso2-disable-security: false, security: [{oauth: [write:locks, read:locks]}], responses: {"200": {description: ok}}}}
`)
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", locks)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	check := func(path string, headers ...string) string {
		args := []string{"check", "--config", cfg, "--path", path}
		for _, h := range headers {
			args = append(args, "-H", h)
		}
		return tollgate(t, args...).stdout
	}
	if o := check("/locks/v1/open"); !strings.Contains(o, "ALLOWED 200") {
		t.Errorf("an operation open by the API's x-wso2-disable-security: %s", o)
	}
	if o := check("/locks/v1/secured"); !strings.Contains(o, "DENIED 401") || !strings.Contains(o, "900902") {
		t.Errorf("x-wso2-disable-security: false under the API's true must need a credential (401 900902): %s", o)
	}
	tok := strings.TrimSpace(tollgate(t, "token", "--config", cfg).stdout)
	if o := check("/locks/v1/secured", "Authorization: Bearer "+tok); !strings.Contains(o, "ALLOWED 200") {
		t.Errorf("with a token: %s", o)
	}
	// WSO2's reading of [write:locks, read:locks]: either scope will do.
	reader := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "read:locks").stdout)
	if o := check("/locks/v1/scoped", "Authorization: Bearer "+reader); !strings.Contains(o, "ALLOWED 200") {
		t.Errorf("one of the two scopes in a WSO2 document: %s", o)
	}
	if o := check("/locks/v1/scoped", "Authorization: Bearer "+tok); !strings.Contains(o, "DENIED 403") || !strings.Contains(o, "900910") {
		t.Errorf("neither scope: %s", o)
	}
}

// A file with several YAML documents (as Kubernetes users write them) is read whole:
// validate reports each, a broken one refuses the file, and apply stores every one.
func TestMultiDocumentDefinitionFiles(t *testing.T) {
	dir := t.TempDir()
	multi := write(t, dir, "multi.yaml", `# a policy and two APIs
kind: ThrottlingPolicy
name: ten-a-minute
rate: 10/minute
---
openapi: 3.0.3
info: {title: First, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
paths:
  /a: {get: {security: [{}], responses: {"200": {description: ok}}}}
---
openapi: 3.0.3
info: {title: Second, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
paths:
  /b: {get: {security: [{}], responses: {"200": {description: ok}}}}
`)
	o := tollgate(t, "validate", multi)
	for _, want := range []string{"(document 1): ok: throttling policy ten-a-minute", "(document 2): ok: first/v1", "(document 3): ok: second/v1"} {
		if o.code != 0 || !strings.Contains(o.stdout, want) {
			t.Errorf("validate lacks %q: exit %d\n%s%s", want, o.code, o.stdout, o.stderr)
		}
	}
	broken := write(t, dir, "broken.yaml", "openapi: 3.0.3\ninfo: {title: Fine, version: v1}\nx-tollgate-production-endpoints: [http://127.0.0.1:9000]\npaths: {/a: {get: {responses: {\"200\": {description: ok}}}}}\n---\nopenapi: 3.0.3\ninfo: [\n")
	if o := tollgate(t, "validate", broken); o.code != 1 || !strings.Contains(o.stderr, "broken.yaml (document 2): $:") {
		t.Errorf("a broken second document: exit %d %s", o.code, o.stderr)
	}

	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	srv := startTollgate(t, "run", "--config", cfg, "-f", multi)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	for _, path := range []string{"/first/v1/a", "/second/v1/b"} {
		if o := tollgate(t, "check", "--config", cfg, "--path", path); !strings.Contains(o.stdout, "ALLOWED 200") {
			t.Errorf("%s from a multi-document file: %s", path, o.stdout)
		}
	}
}

// WSO2's throttling policies file is applied as it is: a resource naming one of its tiers
// is throttled by it (not 500 900809), with WSO2's whole count at once.
func TestWSO2PoliciesFileThrottles(t *testing.T) {
	dir := t.TempDir()
	policies := write(t, dir, "policies.yaml", `resourcePolicies:
  - 3PerMin:
      count: 3
      unitTime: 1
      timeUnit: min
`)
	api := write(t, dir, "tiered.yaml", `openapi: 3.0.3
info: {title: Tiered, version: v1}
x-wso2-basePath: /tiered/v1
x-wso2-production-endpoints: {urls: [http://127.0.0.1:9000]}
paths:
  /limited: {get: {x-wso2-throttling-tier: 3PerMin, x-wso2-disable-security: true, responses: {"200": {description: ok}}}}
`)
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	srv := startTollgate(t, "run", "--config", cfg, "-f", policies, "-f", api)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	for i := range 3 {
		if o := tollgate(t, "check", "--config", cfg, "--path", "/tiered/v1/limited"); !strings.Contains(o.stdout, "ALLOWED 200") {
			t.Fatalf("request %d: %s", i+1, o.stdout)
		}
	}
	if o := tollgate(t, "check", "--config", cfg, "--path", "/tiered/v1/limited"); !strings.Contains(o.stdout, "DENIED 429") || !strings.Contains(o.stdout, "900802") {
		t.Errorf("the fourth request in a minute: %s", o.stdout)
	}
}
