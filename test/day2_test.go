package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

const shopAPI = `openapi: 3.0.3
info: {title: shop, version: v1}
x-tollgate-throttling: shop-rate
x-tollgate-production-endpoints: ["etcd(shop_backend, http://127.0.0.1:8081)"]
paths:
  /items: {get: {security: [{}], responses: {"200": {description: ok}}}}
`

const shopPolicy = `kind: ThrottlingPolicy
name: shop-rate
rate: 100/minute
`

// -f takes a file, "-" (standard input), a directory (recursively) and an http URL (an
// OpenAPI document served by a local server); a multi-document file counts each document.
func TestDefinitionsFromAnywhere(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tree", "deeper"), 0o755)
	write(t, filepath.Join(dir, "tree"), "shop.yaml", shopAPI)
	write(t, filepath.Join(dir, "tree", "deeper"), "rate.yml", shopPolicy)
	write(t, filepath.Join(dir, "tree"), "README.md", "not a definition")
	srv := testutil.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/openapi.yaml" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, strings.ReplaceAll(shopAPI, "title: shop", "title: remote"))
	}))
	for _, c := range []struct {
		name  string
		in    string
		args  []string
		wants []string
	}{
		{"stdin", shopAPI, []string{"validate", "-f", "-"}, []string{"<stdin>: ok: shop/v1"}},
		{"stdin as argument", shopPolicy, []string{"validate", "-"}, []string{"<stdin>: ok: throttling policy shop-rate"}},
		{"directory", "", []string{"validate", "-f", filepath.Join(dir, "tree")}, []string{"shop.yaml: ok: shop/v1", "rate.yml: ok: throttling policy shop-rate"}},
		{"url", "", []string{"validate", "-f", srv.URL + "/openapi.yaml"}, []string{srv.URL + "/openapi.yaml: ok: remote/v1"}},
		{"multi-document", shopAPI + "---\n" + shopPolicy, []string{"validate", "-f", "-"}, []string{"<stdin> (document 1): ok: shop/v1", "<stdin> (document 2): ok: throttling policy shop-rate"}},
	} {
		o := stdin(t, c.in, c.args...)
		for _, w := range c.wants {
			if o.code != 0 || !strings.Contains(o.stdout, w) {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", c.name, o.code, o.stdout, o.stderr, w)
			}
		}
	}
	if o := tollgate(t, "validate", "-f", srv.URL+"/missing.yaml"); o.code != 1 || !strings.Contains(o.stderr, "404") {
		t.Errorf("a URL that is not found: exit %d, %q", o.code, o.stderr)
	}
	if o := tollgate(t, "validate", "-f", filepath.Join(dir, "tree", "deeper", "..", "..", "nothing")); o.code != 1 {
		t.Errorf("a path that does not exist: exit %d", o.code)
	}
}

// get, describe and delete against the etcd of a running `tollgate run`: every kind, every
// output format, the stored definition round-tripping through get | apply -f -, deletes
// refused while referenced, and every mutation's revision.
func TestGetDescribeDelete(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "tollgate.yaml", p, "")
	api := write(t, dir, "shop.yaml", shopAPI)
	pol := write(t, dir, "rate.yaml", shopPolicy)
	srv := startTollgate(t, "run", "--config", cfg, "-f", api, "-f", pol)
	srv.waitUp()
	tg := func(args ...string) out { return tollgate(t, append(args, "--config", cfg)...) }
	ok := func(o out, what string) string {
		t.Helper()
		if o.code != 0 {
			t.Fatalf("%s: exit %d: %s", what, o.code, o.stderr)
		}
		return o.stdout
	}
	rev := regexp.MustCompile(`at revision \d+`)

	if got := ok(tg("endpoints", "set", "shop_backend", "http://10.1.2.3:8080"), "endpoints set"); !rev.MatchString(got) {
		t.Errorf("endpoints set printed no revision: %q", got)
	}
	if got := ok(tg("revoke", "--jti", "j-1", "--until", "1h", "--reason", "lost"), "revoke"); !rev.MatchString(got) {
		t.Errorf("revoke printed no revision: %q", got)
	}
	key := strings.TrimSpace(ok(tg("apikey", "create", "--app", "billing", "--api", "shop/v1"), "apikey create"))
	if ok := stdin(t, "s3cret-password\n", "user", "put", "ann", "--config", cfg); ok.code != 0 || !rev.MatchString(ok.stdout) {
		t.Fatalf("user put: %d %s %s", ok.code, ok.stdout, ok.stderr)
	}

	tables := map[string][]string{
		"apis":        {"API", "shop/v1", "/shop/v1", "shop-rate"},
		"policies":    {"POLICY", "shop-rate", "100/1m0s", "shop/v1"},
		"endpoints":   {"KEY", "shop_backend", "http://10.1.2.3:8080"},
		"revocations": {"REVOCATION", "jti/j-1", "lost"},
		"apikeys":     {"ID", "billing", "shop/v1"},
		"users":       {"USER", "ann", "bcrypt"},
	}
	for kind, wants := range tables {
		got := ok(tg("get", kind), "get "+kind)
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Errorf("get %s: no %q in\n%s", kind, w, got)
			}
		}
		if strings.Contains(got, key) || strings.Contains(got, "$2") {
			t.Errorf("get %s shows a secret:\n%s", kind, got)
		}
		var v []map[string]any
		if err := json.Unmarshal([]byte(ok(tg("get", kind, "-o", "json"), "get -o json")), &v); err != nil || len(v) != 1 {
			t.Errorf("get %s -o json: %v %v", kind, v, err)
		}
		if y := ok(tg("get", kind, "-o", "yaml"), "get -o yaml"); !strings.HasPrefix(y, "- ") {
			t.Errorf("get %s -o yaml: %q", kind, y)
		}
	}
	if o := tg("get", "apis", "-o", "xml"); o.code != 2 {
		t.Errorf("get apis -o xml: exit %d", o.code)
	}

	// get api prints the document as applied, and it round-trips through apply -f -.
	doc := ok(tg("get", "api", "shop/v1"), "get api")
	if doc != shopAPI {
		t.Errorf("get api shop/v1 = %q, want the applied document", doc)
	}
	edited := strings.Replace(doc, "/items:", "/goods:", 1)
	if o := stdin(t, edited, "apply", "-f", "-", "--config", cfg); o.code != 0 || !strings.Contains(o.stdout, "applied shop/v1 (<stdin>) at revision") {
		t.Fatalf("apply -f - of the edited document: %d %s %s", o.code, o.stdout, o.stderr)
	}
	if j := ok(tg("get", "api", "shop/v1", "-o", "json"), "get api -o json"); !json.Valid([]byte(j)) || !strings.Contains(j, "/goods") {
		t.Errorf("get api -o json: %q", j)
	}
	if o := tg("get", "api", "nope/v9"); o.code != 1 || !strings.Contains(o.stderr, "API nope/v9 is not stored") {
		t.Errorf("get api of nothing: exit %d %q", o.code, o.stderr)
	}

	// describe: operations with security and throttling, clusters with the endpoints Envoy
	// gets (the discovery key's address, not the default).
	d := ok(tg("describe", "api", "shop/v1"), "describe")
	for _, w := range []string{"shop/v1", "GET", "/shop/v1/goods", "open", "EDS", "10.1.2.3:8080"} {
		if !strings.Contains(d, w) {
			t.Errorf("describe: no %q in\n%s", w, d)
		}
	}
	var dj struct {
		Operations []struct{ Method, Path, Security string }
		Clusters   []struct{ Endpoints []string }
	}
	if err := json.Unmarshal([]byte(ok(tg("describe", "api", "shop/v1", "-o", "json"), "describe -o json")), &dj); err != nil ||
		len(dj.Operations) != 1 || len(dj.Clusters) == 0 || dj.Clusters[0].Endpoints[0] != "10.1.2.3:8080" {
		t.Errorf("describe -o json: %+v %v", dj, err)
	}

	// Deletes refused while referenced, with what references them; --force; revisions.
	if o := tg("delete", "policy", "shop-rate"); o.code != 1 || !strings.Contains(o.stderr, "referenced by shop/v1") {
		t.Errorf("delete of a policy an API names: exit %d %q", o.code, o.stderr)
	}
	if o := tg("delete", "api", "shop/v1"); o.code != 1 || !strings.Contains(o.stderr, "referenced by API key") || !strings.Contains(o.stderr, "billing") {
		t.Errorf("delete of an API a key opens: exit %d %q", o.code, o.stderr)
	}
	for _, args := range [][]string{
		{"delete", "revocation", "jti/j-1"},
		{"delete", "user", "ann"},
		{"delete", "api", "shop/v1", "--force"},
		{"delete", "policy", "shop-rate"}, // nothing names it any more
	} {
		if got := ok(tg(args...), strings.Join(args, " ")); !strings.HasPrefix(got, "deleted ") || !rev.MatchString(got) {
			t.Errorf("%v: %q", args, got)
		}
	}
	for kind, what := range map[string]string{"revocations": "jti/j-1", "users": "ann", "apis": "shop/v1", "policies": "shop-rate"} {
		if got := ok(tg("get", kind), "get "+kind); strings.Contains(got, what) {
			t.Errorf("after delete, get %s still shows %s", kind, what)
		}
	}
	if o := tg("delete", "user", "ann"); o.code != 1 || !strings.Contains(o.stderr, "user ann is not stored") {
		t.Errorf("delete of what is not there: exit %d %q", o.code, o.stderr)
	}
}
