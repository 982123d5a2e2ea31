package test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every example ships decision tests, and they pass through the binary, offline.
func TestEveryExampleDecisionTestsPass(t *testing.T) {
	dirs, _ := filepath.Glob("../examples/*")
	n := 0
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || !isAPIExample(dir) {
			continue
		}
		n++
		cases, _ := filepath.Glob(filepath.Join(dir, "*.cases.yaml"))
		if len(cases) == 0 {
			t.Errorf("%s has no decision tests (*.cases.yaml)", dir)
			continue
		}
		// The same decisions however the request arrives: matched by host, method and path;
		// through the routes the control plane generates (their metadata, Envoy's own 404s
		// and 405s); and as Istio's sidecar sends it to a CUSTOM provider (no route
		// metadata, the mesh's x-forwarded-client-cert, SPIFFE principals).
		var passed string
		for _, via := range []string{"match", "envoy", "istio"} {
			o := tollgate(t, "test", "--via", via, "-f", dir)
			if o.code != 0 || !strings.Contains(o.stdout, " 0 failed") {
				t.Errorf("tollgate test --via %s -f %s: exit %d\n%s%s", via, dir, o.code, o.stdout, o.stderr)
			}
			if passed != "" && o.stdout != passed {
				t.Errorf("%s: --via %s decides otherwise:\n%s\nthan --via match:\n%s", dir, via, o.stdout, passed)
			}
			passed = o.stdout
		}
	}
	if n < 3 {
		t.Fatalf("only %d examples", n)
	}
}

// A failing case exits 1 and says what differed; a case file that is not right is refused;
// files without cases are a usage error.
func TestDecisionTestsFailWithADiff(t *testing.T) {
	dir := t.TempDir()
	api := write(t, dir, "api.yaml", `openapi: 3.0.3
info: {title: shop, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:8081]
components: {securitySchemes: {oauth2: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {read: r}}}}}}
security: [{oauth2: [read]}]
paths: {/items: {get: {responses: {"200": {description: ok}}}}}
`)
	cases := write(t, dir, "api.cases.yaml", `kind: DecisionTests
cases:
  - name: passes
    request: {path: /shop/v1/items}
    token: {scope: read, sub: ann}
    expect: {status: 200, headers: {x-user: ann}}
  - name: wrong status
    request: {path: /shop/v1/items}
    expect: {status: 200}
  - name: wrong fault
    request: {path: /shop/v1/items}
    token: {scope: other}
    expect: {status: 403, fault: "900901"}
`)
	cfg := write(t, dir, "tollgate.yaml", "authz: {claimHeaders: {sub: x-user}}\n")
	o := tollgate(t, "test", "--config", cfg, "-f", api, cases, "-v")
	if o.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s%s", o.code, o.stdout, o.stderr)
	}
	for _, w := range []string{"PASS  " + cases + ": passes", "FAIL  " + cases + ": wrong status", "status: got 401, want 200",
		"FAIL  " + cases + ": wrong fault", `fault: got "900910", want "900901"`, "1 passed, 2 failed"} {
		if !strings.Contains(o.stdout, w) {
			t.Errorf("no %q in\n%s", w, o.stdout)
		}
	}
	bad := write(t, dir, "bad.cases.yaml", "kind: DecisionTests\ncases:\n  - name: x\n    request: {path: /a}\n    tokn: {}\n")
	if o := tollgate(t, "test", "-f", api, bad); o.code != 1 || !strings.Contains(o.stderr, "tokn") {
		t.Errorf("a misspelt field: exit %d %q", o.code, o.stderr)
	}
	if o := tollgate(t, "test", "-f", api); o.code != 2 || !strings.Contains(o.stderr, "no decision tests") {
		t.Errorf("no cases: exit %d %q", o.code, o.stderr)
	}
}

// The README's example case runs as written against coffeebar.
func TestREADMEDecisionTestExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Decision tests.*?```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("no yaml block under Decision tests")
	}
	cases := write(t, t.TempDir(), "readme.cases.yaml", string(m[1]))
	o := tollgate(t, "test", "-f", "../examples/coffeebar/", "-f", cases, "-v")
	if o.code != 0 || !strings.Contains(o.stdout, "PASS  "+cases+": the fourth order at once is throttled") {
		t.Errorf("the README's case: exit %d\n%s%s", o.code, o.stdout, o.stderr)
	}
}

// Decision tests cover every credential offline: a DPoP-bound token with its proof (RFC
// 9449: a proof by another key or none is refused), and a client certificate forwarded as
// Envoy does (trusted, from another CA, or none).
func TestDecisionTestsWithDPoPAndCertificates(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "vault.yaml", `openapi: 3.0.3
info: {title: vault, version: v1}
x-tollgate-dpop: true
x-tollgate-production-endpoints: [http://127.0.0.1:8081]
components: {securitySchemes: {oauth2: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {read: r}}}}}}
security: [{oauth2: [read]}]
paths: {/box: {get: {responses: {"200": {description: ok}}}}}
`)
	write(t, dir, "pki.yaml", `openapi: 3.1.0
info: {title: pki, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:8081]
components: {securitySchemes: {cert: {type: mutualTLS}}}
security: [{cert: []}]
paths: {/who: {get: {responses: {"200": {description: ok}}}}}
`)
	write(t, dir, "all.cases.yaml", `kind: DecisionTests
cases:
  - name: a DPoP-bound token with its proof
    request: {path: /vault/v1/box}
    token: {scope: read, dpop: {}}
    expect: {status: 200}
  - name: a proof by another key
    request: {path: /vault/v1/box}
    token: {scope: read, dpop: {proof: other}}
    expect: {status: 401, fault: "900901"}
  - name: no proof
    request: {path: /vault/v1/box}
    token: {scope: read, dpop: {proof: none}}
    expect: {status: 401, fault: "900901"}
  - name: an unbound Bearer token on a DPoP API
    request: {path: /vault/v1/box}
    token: {scope: read}
    expect: {status: 401, fault: "900901"}
  - name: a trusted client certificate
    request: {path: /pki/v1/who}
    certificate: {subject: svc-a}
    expect: {status: 200}
  - name: a certificate of another CA
    request: {path: /pki/v1/who}
    certificate: {untrusted: true}
    expect: {status: 401, fault: "900901"}
  - name: no certificate
    request: {path: /pki/v1/who}
    expect: {status: 401, fault: "900902"}
`)
	o := tollgate(t, "test", "-f", dir)
	if o.code != 0 || !strings.Contains(o.stdout, "7 passed, 0 failed") {
		t.Errorf("tollgate test: exit %d\n%s%s", o.code, o.stdout, o.stderr)
	}
}

// isAPIExample says whether an examples/ directory holds API definitions: not the Compose
// quick start (examples/compose), the examples' backend (examples/backend), the Helm chart
// (examples/helm), the manifests rendered from it (examples/kubernetes), the Grafana
// dashboard (examples/grafana) nor the status page's picture (examples/status).
func isAPIExample(dir string) bool {
	name := filepath.Base(dir)
	return name != "compose" && name != "backend" && name != "helm" && name != "kubernetes" && name != "grafana" && name != "status"
}
