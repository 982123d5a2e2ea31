package test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A description in several files, applied by URL to a running gateway: the operation
// written as a $ref to another file keeps its own security (two scopes, all needed), the
// path item in a file of its own is served, `tollgate get api` gives back one document
// that stands alone, and a reference out of the document's host is refused with its place.
func TestMultiFileDescriptionByURL(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"api.yaml": `openapi: 3.0.3
info: {title: Depot, version: v1}
servers: [{url: "http://127.0.0.1:9300"}]
components:
  securitySchemes: {$ref: "common/schemes.yaml"}
paths:
  /parcels: {$ref: "paths/parcels.yaml"}
  /parcels/{id}:
    get: {$ref: "paths/parcel-get.yaml"}
`,
		"common/schemes.yaml": "oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: \"https://idp.example/token\", scopes: {}}}}\n",
		"paths/parcels.yaml":  "get: {security: [], responses: {\"200\": {description: the parcels}}}\n",
		"paths/parcel-get.yaml": `security: [{oauth: [parcels:read, parcels:audit]}]
responses: {"200": {description: a parcel, content: {application/json: {schema: {$ref: "../schemas/parcel.yaml"}}}}}
`,
		"schemas/parcel.yaml": "{type: object, properties: {id: {type: string}, next: {$ref: \"#\"}}}\n",
		"escape.yaml":         "openapi: 3.0.3\ninfo: {title: Escape, version: v1}\nservers: [{url: \"http://127.0.0.1:9300\"}]\npaths: {/a: {$ref: \"http://localhost:1/a.yaml\"}}\n",
	} {
		write(t, dir, name, content)
	}
	files := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer files.Close()

	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	srv := startTollgate(t, "run", "--dev", "--config", cfg)
	srv.waitUp()
	if o := tollgate(t, "apply", "--config", cfg, "-f", files.URL+"/api.yaml"); o.code != 0 {
		t.Fatalf("apply by URL: %s", o.stderr)
	}
	o := tollgate(t, "apply", "--config", cfg, "-f", files.URL+"/escape.yaml")
	if want := `$.paths['/a']: $ref "http://localhost:1/a.yaml": http://localhost:1/a.yaml is not on ` + files.URL; o.code != 1 || !strings.Contains(o.stderr, want) {
		t.Errorf("a reference to another host: exit %d, %s", o.code, o.stderr)
	}
	stored := tollgate(t, "get", "api", "depot/v1", "--config", cfg).stdout
	if strings.Contains(stored, ".yaml") || !strings.Contains(stored, "parcels:audit") {
		t.Errorf("the stored document does not stand alone with the files' security:\n%.600s", stored)
	}

	reader := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "parcels:read").stdout)
	both := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "parcels:read parcels:audit").stdout)
	for _, c := range []struct{ path, token, want string }{
		{"/depot/v1/parcels", "", "ALLOWED 200"},
		{"/depot/v1/parcels/7", "", "DENIED 401"},
		{"/depot/v1/parcels/7", reader, "DENIED 403"},
		{"/depot/v1/parcels/7", both, "ALLOWED 200"},
	} {
		args := []string{"check", "--config", cfg, "--method", "GET", "--path", c.path}
		if c.token != "" {
			args = append(args, "-H", "Authorization: Bearer "+c.token)
		}
		if o := tollgate(t, args...); !strings.Contains(o.stdout, c.want) {
			t.Errorf("GET %s: want %s, got %s%s", c.path, c.want, o.stdout, o.stderr)
		}
	}
}
