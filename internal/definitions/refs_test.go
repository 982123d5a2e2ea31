package definitions

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
)

// A multi-file description in the style bundlers such as Redocly read: a path item, an
// operation, the security schemes and a recursive schema in files of their own, and a $ref
// inside an example value (data, never followed).
var multiFile = map[string]string{
	"api.yaml": `openapi: 3.0.3
info: {title: Parts, version: v1}
servers: [{url: "http://127.0.0.1:9100/parts"}]
components:
  securitySchemes: {$ref: "common/security.yaml"}
  schemas:
    Part: {$ref: "schemas/part.yaml"}
paths:
  /parts: {$ref: "paths/parts.yaml"}
  /parts/{id}:
    get: {$ref: "paths/part-get.yaml"}
    delete: {$ref: "#/x-operations/delete"}
x-operations:
  delete: {security: [{oauth: [parts:delete]}], responses: {"204": {description: gone}}}
`,
	"common/security.yaml": `oauth:
  type: oauth2
  flows: {clientCredentials: {tokenUrl: "https://idp.example/token", scopes: {parts:list: list, parts:read: read}}}
key: {type: apiKey, in: header, name: X-Key}
`,
	"paths/parts.yaml": `get:
  security: [{oauth: [parts:list]}, {key: []}]
  responses:
    "200":
      description: the parts
      content: {application/json: {schema: {type: array, items: {$ref: "../schemas/part.yaml"}}}}
`,
	"paths/part-get.yaml": `security: [{oauth: [parts:read, parts:audit]}]
parameters: [{name: id, in: path, required: true, schema: {type: string}}]
responses:
  "200":
    description: a part
    content:
      application/json:
        schema: {$ref: "../schemas/part.yaml"}
        example: {$ref: "https://elsewhere.example/not-a-reference.json"}
`,
	"schemas/part.yaml": `type: object
properties:
  name: {type: string}
  children: {type: array, items: {$ref: "#"}}
  maker: {$ref: "maker.yaml#/Maker"}
`,
	"schemas/maker.yaml": `Maker: {type: object, properties: {name: {type: string}, parts: {type: array, items: {$ref: "part.yaml"}}}}
`,
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type noPolicies struct{}

func (noPolicies) IsPolicy([]byte) bool                         { return false }
func (noPolicies) Parse([]byte) (Policy, error)                 { return Policy{}, nil }
func (noPolicies) IsWSO2([]byte) bool                           { return false }
func (noPolicies) ParseWSO2([]byte) ([]Policy, []string, error) { return nil, nil, nil }

// checkParts checks what the gateway reads from the multi-file description, from the
// definition loaded and from what is stored (read again as etcd's followers read it: with
// no files at hand).
func checkParts(t *testing.T, defs []Definition, report Report) {
	t.Helper()
	if !report.OK() || len(defs) != 1 {
		t.Fatalf("problems: %v", report.Problems)
	}
	stored, err := openapi.Parse("stored", defs[0].Data)
	if err != nil {
		t.Fatalf("the stored document does not stand alone: %v", err)
	}
	if strings.Contains(string(defs[0].Data), `.yaml"`) || !strings.Contains(string(defs[0].Data), "not-a-reference.json") {
		t.Errorf("the stored document still refers to files, or lost an example's value: %.400s", defs[0].Data)
	}
	for _, api := range []*apimodel.API{defs[0].API, stored.API} {
		cat := apimodel.NewCatalog([]*apimodel.API{api})
		for key, want := range map[string]string{
			"GET /parts":         "oauth[parts:list] or key",
			"GET /parts/{id}":    "oauth[parts:read parts:audit]",
			"DELETE /parts/{id}": "oauth[parts:delete]",
		} {
			_, op := cat.Operation("parts/v1", key)
			if op == nil {
				t.Errorf("%s: not served", key)
				continue
			}
			if got := apimodel.SecurityText(op.Security); got != want {
				t.Errorf("%s: security %s, want %s (the file's own)", key, got, want)
			}
		}
		if s := api.Schemes["key"]; s.Type != apimodel.SchemeAPIKey || s.Param != "X-Key" {
			t.Errorf("the schemes' file: key is %+v", s)
		}
	}
	// The recursive schemas are kept finite: named in the document's schemas, referred to.
	for _, want := range []string{`"Part":{`, `"Maker":{`, `"$ref":"#/components/schemas/Part"`, `"$ref":"#/components/schemas/Maker"`} {
		if !strings.Contains(string(defs[0].Data), want) {
			t.Errorf("the bundled document has no %s", want)
		}
	}
}

func TestMultiFileDefinitionsAreBundled(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, multiFile)
	defs, report := Load([]string{filepath.Join(dir, "api.yaml")}, noPolicies{})
	checkParts(t, defs, report)
}

// Fetched by URL, references are read from the document's host, relative to its URL.
func TestMultiFileDefinitionByURL(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, multiFile)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	defs, report := Load([]string{srv.URL + "/api.yaml"}, noPolicies{})
	checkParts(t, defs, report)
}

// References are read only below the root document's directory (or from its host), and
// not at all from standard input; each refusal names where the reference is and why.
func TestReferencesStayInTheDocumentsTree(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"secret.yaml": "get: {security: [], responses: {}}\n",
		"api/api.yaml": `openapi: 3.0.3
info: {title: Escape, version: v1}
servers: [{url: "http://127.0.0.1:9100"}]
paths:
  /a: {$ref: "../secret.yaml"}
  /b: {get: {$ref: "/etc/hostname"}}
  /c: {$ref: "http://127.0.0.1:1/elsewhere.yaml"}
  /d: {$ref: "missing.yaml"}
`,
	})
	_, report := Load([]string{filepath.Join(dir, "api", "api.yaml")}, noPolicies{})
	got := strings.Join(report.Problems, "\n")
	for _, want := range []string{
		`$.paths['/a']: $ref "../secret.yaml": ` + filepath.Join(dir, "secret.yaml") + " is outside",
		`$.paths['/b'].get: $ref "/etc/hostname": `,
		`$.paths['/c']: $ref "http://127.0.0.1:1/elsewhere.yaml": a definition read from a file may refer to other files below its directory, not to URLs`,
		`$.paths['/d']: $ref "missing.yaml": cannot read ` + filepath.Join(dir, "api", "missing.yaml"),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("want a problem\n  %s\ngot\n%s", want, got)
		}
	}
	// From a URL, another host is refused before anything is fetched from it.
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "api"))))
	defer srv.Close()
	writeTree(t, dir, map[string]string{"api/api.yaml": `openapi: 3.0.3
info: {title: Escape, version: v1}
servers: [{url: "http://127.0.0.1:9100"}]
paths:
  /a: {$ref: "http://localhost:1/x.yaml"}
`})
	_, report = Load([]string{srv.URL + "/api.yaml"}, noPolicies{})
	if got := strings.Join(report.Problems, "\n"); !strings.Contains(got, `$.paths['/a']: $ref "http://localhost:1/x.yaml": http://localhost:1/x.yaml is not on `+srv.URL) {
		t.Errorf("another host: %s", got)
	}
	_, report = LoadFrom([]string{"-"}, strings.NewReader("openapi: 3.0.3\ninfo: {title: S, version: v1}\npaths: {/a: {$ref: x.yaml}}\n"), noPolicies{})
	if got := strings.Join(report.Problems, "\n"); !strings.Contains(got, "<stdin>: $.paths['/a']: $ref \"x.yaml\": a document read from standard input cannot refer to other files") {
		t.Errorf("standard input: %s", got)
	}
}
