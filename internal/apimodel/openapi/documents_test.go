package openapi

import (
	"strings"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

func mustParse(t *testing.T, doc string) *Result {
	t.Helper()
	res, err := Parse("d.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	return res
}

func op(t *testing.T, api *apimodel.API, key string) *apimodel.Operation {
	t.Helper()
	_, o := apimodel.NewCatalog([]*apimodel.API{api}).Operation(api.ID(), key)
	if o == nil {
		t.Fatalf("%s is not served; operations: %+v", key, api.Operations)
	}
	return o
}

func hasWarning(t *testing.T, res *Result, want string) {
	t.Helper()
	if !strings.Contains(res.Warnings.Error(), want) {
		t.Errorf("want a warning\n  %s\ngot\n%s", want, res.Warnings.Error())
	}
}

// An operation written as a $ref keeps the security of what it names; one whose $ref names
// nothing — or another file, in a document that must stand alone — is refused where it
// is, never served as an empty (open to any token) operation.
func TestOperationRefsKeepTheirSecurity(t *testing.T) {
	res := mustParse(t, head+`components:
  securitySchemes: {o: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/t", scopes: {}}}}}
  x-ops: {}
x-operations:
  read: {security: [{o: [items:read, items:audit]}], responses: {"200": {description: ok}}}
paths:
  /items: {get: {$ref: "#/x-operations/read"}}
  /again: {$ref: "#/x-paths/again"}
x-paths:
  again: {post: {$ref: "#/x-operations/read"}}
`)
	for _, key := range []string{"GET /items", "POST /again"} {
		o := op(t, res.API, key)
		if len(o.Security) != 1 || len(o.Security[0]) != 1 || strings.Join(o.Security[0][0].Scopes, " ") != "items:read items:audit" {
			t.Errorf("%s: security %+v, want o with items:read and items:audit", key, o.Security)
		}
	}
	for doc, want := range map[string]string{
		head + "paths:\n  /items: {get: {$ref: \"#/x-operations/gone\"}}\n": `d.yaml: $.paths['/items'].get: the operation is a $ref to "#/x-operations/gone", which is not in the document; refused rather than served without what it says`,
		head + "paths:\n  /items: {get: {$ref: \"paths/items.yaml\"}}\n":    `d.yaml: $.paths['/items'].get: $ref "paths/items.yaml" names another file, and this document was not read from a file or URL`,
		head + "paths:\n  /items: {$ref: \"#/nowhere\"}\n":                  `d.yaml: $.paths['/items']: the path item is a $ref to "#/nowhere", which is not in the document`,
	} {
		_, err := Parse("d.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want the problem\n  %s\ngot\n  %v", want, err)
		}
	}
}

// Servers are alternatives, not replicas: the first is production; one described as a
// sandbox is the sandbox; the others are named in warnings; a relative URL names no
// backend and says so; a path's or an operation's servers override the document's.
func TestServersAreAlternatives(t *testing.T) {
	res := mustParse(t, `openapi: 3.0.3
info: {title: Shop, version: v2}
servers:
  - {url: "https://production.example.com/v2"}
  - {url: "https://sandbox.example.com/v2", description: Sandbox for testing}
  - {url: "https://eu.example.com/v2", description: EU region}
paths:
  /a: {get: {responses: {}}}
  /b:
    servers: [{url: "https://b.example.com"}]
    get: {responses: {}}
    put: {servers: [{url: "https://b-writer.example.com"}], responses: {}}
`)
	api := res.API
	if fmtEndpoints(api.Production) != "https://production.example.com/v2" || fmtEndpoints(api.Sandbox) != "https://sandbox.example.com/v2" {
		t.Errorf("production %s, sandbox %s", fmtEndpoints(api.Production), fmtEndpoints(api.Sandbox))
	}
	hasWarning(t, res, `d.yaml: $.servers[1].url: server "https://sandbox.example.com/v2" is described as a sandbox: it is the sandbox endpoint, not a production one`)
	hasWarning(t, res, `d.yaml: $.servers[2].url: server "https://eu.example.com/v2" is an alternative to "https://production.example.com/v2" and is not used`)
	if got := fmtEndpoints(op(t, api, "GET /b").Production); got != "https://b.example.com" {
		t.Errorf("GET /b goes to %s, not its path's server", got)
	}
	if got := fmtEndpoints(op(t, api, "PUT /b").Production); got != "https://b-writer.example.com" {
		t.Errorf("PUT /b goes to %s, not its own server", got)
	}
	if o := op(t, api, "GET /a"); !o.Production.Empty() {
		t.Errorf("GET /a has endpoints of its own: %s", fmtEndpoints(o.Production))
	}

	_, err := Parse("d.yaml", []byte("openapi: 3.0.3\ninfo: {title: Shop, version: v2}\nservers: [{url: /v2}]\npaths: {/a: {get: {responses: {}}}}\n"))
	if err == nil || !strings.Contains(err.Error(), "$.servers: the API has no backend") {
		t.Errorf("a relative server only: %v", err)
	}
	res = mustParse(t, "openapi: 3.0.3\ninfo: {title: Shop, version: v2}\nservers: [{url: /v2}]\nx-tollgate-production-endpoints: [http://127.0.0.1:9]\npaths: {/a: {get: {responses: {}}}}\n")
	if len(res.Warnings) != 0 {
		t.Errorf("servers are not read when the extension gives the backend: %v", res.Warnings)
	}
	res = mustParse(t, "openapi: 3.0.3\ninfo: {title: Shop, version: v2}\nservers: [{url: //api.example.com/v2}]\npaths: {/a: {get: {responses: {}}}}\n")
	if got := fmtEndpoints(res.API.Production); got != "https://api.example.com/v2" {
		t.Errorf("a scheme-relative server: production %s", got)
	}
	hasWarning(t, res, `d.yaml: $.servers[0].url: server URL "//api.example.com/v2" names no scheme; read as "https://api.example.com/v2"`)
	res = mustParse(t, "openapi: 3.0.3\ninfo: {title: Shop, version: v2}\nservers: [{url: /v2}, {url: \"http://127.0.0.1:9\"}]\npaths: {/a: {get: {responses: {}}}}\n")
	hasWarning(t, res, `d.yaml: $.servers[0].url: server URL "/v2" is not an absolute http(s) URL, so it names no backend and is not used`)

	// Swagger 2.0: schemes are alternatives too; https wins.
	res = mustParse(t, `swagger: "2.0"
info: {title: Old, version: v1}
host: api.example.com
basePath: /base
schemes: [http, https]
paths: {/a: {get: {responses: {"200": {description: ok}}}}}
`)
	if got := fmtEndpoints(res.API.Production); got != "https://api.example.com/base" {
		t.Errorf("Swagger 2.0 production %s", got)
	}
	hasWarning(t, res, "d.yaml: $.schemes: the backend is reached over https; http is not used (schemes are alternatives, not replicas)")
}

func fmtEndpoints(e apimodel.Endpoints) string {
	var s []string
	for _, u := range e.URLs {
		s = append(s, u.URL)
	}
	return strings.Join(s, " ")
}

// Path keys with a fragment or a query (allowed by OpenAPI: any key starting with '/') are
// served at their path, or skipped when the path has that method already; never refused.
func TestPathKeysWithFragmentsAndQueries(t *testing.T) {
	res := mustParse(t, head+`paths:
  /items: {get: {responses: {}}}
  /items#create: {post: {security: [], responses: {}}}
  /items?beta=true: {get: {responses: {}}, put: {responses: {}}}
  /other#x: {get: {responses: {}}}
`)
	for _, key := range []string{"GET /items", "POST /items", "PUT /items", "GET /other"} {
		op(t, res.API, key)
	}
	if len(res.API.Operations) != 4 {
		t.Errorf("operations %d, want 4", len(res.API.Operations))
	}
	if !op(t, res.API, "POST /items").Open() {
		t.Errorf("POST /items lost its own security: []")
	}
	hasWarning(t, res, `d.yaml: $.paths['/items#create'].post: path key with a fragment; served as POST /items (routes match the path, not a fragment)`)
	hasWarning(t, res, `d.yaml: $.paths['/items?beta=true'].get: path key with a query; GET /items is defined already, so this operation is not served`)
	hasWarning(t, res, `d.yaml: $.paths['/items?beta=true'].put: path key with a query; served as PUT /items`)
	hasWarning(t, res, `d.yaml: $.paths['/other#x']: path key with a fragment; served as "/other"`)
}

// YAML is read as 1.2, as OpenAPI tools read it: scopes named y, on or no are strings.
func TestYAML12Scalars(t *testing.T) {
	res := mustParse(t, `openapi: 3.0.3
info: {title: Shop, version: 1.0}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
components: {securitySchemes: {o: {type: http, scheme: bearer}}}
paths: {/a: {get: {security: [{o: [y, on, no]}], responses: {}}}}
`)
	if got := strings.Join(op(t, res.API, "GET /a").Security[0][0].Scopes, " "); got != "y on no" || res.API.Version != "1.0" {
		t.Errorf("scopes %q, version %q", got, res.API.Version)
	}
}

// info.version is free text in OpenAPI; one the gateway cannot key on is served as its slug.
func TestFreeTextVersion(t *testing.T) {
	res := mustParse(t, "openapi: 3.0.3\ninfo: {title: Gitea, version: \"1.20.0+dev-539-g5e389228f\"}\nx-tollgate-production-endpoints: [http://127.0.0.1:9]\npaths: {/a: {get: {responses: {}}}}\n")
	if res.API.ID() != "gitea/1.20.0-dev-539-g5e389228f" || res.API.BasePath != "/gitea/1.20.0-dev-539-g5e389228f" {
		t.Errorf("id %s, base path %s", res.API.ID(), res.API.BasePath)
	}
	hasWarning(t, res, `d.yaml: $.info.version: version "1.20.0+dev-539-g5e389228f" is not a name the gateway can key and route on (letters, digits, '-', '_', '.'); served as version "1.20.0-dev-539-g5e389228f"`)
}

// A member the gateway reads, of the wrong type, is refused where it is, in OpenAPI's
// words; a server variable's numeric default is read as the string it stands for.
func TestWrongShapesAreLocated(t *testing.T) {
	for doc, want := range map[string]string{
		"openapi: 3.0.3\ninfo: {title: A, version: v1}\nservers: http://x\npaths: {/a: {get: {}}}\n":                                 `d.yaml: $.servers: must be a list of servers ([{url: "https://..."}]), not a string`,
		head + "components: {securitySchemes: {o: {type: 42}}}\npaths: {/a: {get: {security: [{o: []}]}}}\n":                         "d.yaml: $.components.securitySchemes.o.type: must be a string, not a number",
		head + "paths: {/a: {get: {operationId: [1]}}}\n":                                                                            "d.yaml: $.paths['/a'].get.operationId: must be a string, not a list",
		head + "components: {securitySchemes: {o: {type: http, scheme: bearer}}}\npaths: {/a: {get: {security: [{o: [{x: 1}]}]}}}\n": "d.yaml: $.paths['/a'].get.security[0].o[0]: must be a string, not an object",
	} {
		_, err := Parse("d.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want\n  %s\ngot\n  %v", want, err)
		}
	}
	res := mustParse(t, "openapi: 3.0.3\ninfo: {title: A, version: v1}\nservers: [{url: \"http://127.0.0.1:{port}\", variables: {port: {default: 8443}}}]\npaths: {/a: {get: {}}}\n")
	if got := fmtEndpoints(res.API.Production); got != "http://127.0.0.1:8443" {
		t.Errorf("production %s", got)
	}
}

// What real descriptions write and the gateway can still serve as written: a scheme it
// cannot check as one alternative among others (that alternative is not served; an
// operation with no other is refused), a title too long or with nothing to make a name of,
// path keys with empty segments, and extensions among the paths.
func TestMoreRealWorldShapes(t *testing.T) {
	res := mustParse(t, `openapi: 3.0.3
info: {title: "", version: v2}
servers: [{url: "https://api.example.com/v2"}]
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
    oauth1: {type: http, scheme: OAuth}
security: [{bearer: []}, {oauth1: []}]
paths:
  x-codegen-contextRoot: /api
  //openapi: {get: {security: [], responses: {}}}
  /map/wms//: {get: {responses: {}}}
`)
	if res.API.Name != "api.example.com" {
		t.Errorf("name %q", res.API.Name)
	}
	if o := op(t, res.API, "GET /map/wms"); apimodel.SecurityText(o.Security) != "bearer" {
		t.Errorf("GET /map/wms: %s, want the bearer alternative alone", apimodel.SecurityText(o.Security))
	}
	if !op(t, res.API, "GET /openapi").Open() {
		t.Error("GET /openapi is not open as written")
	}
	hasWarning(t, res, `d.yaml: $.components.securitySchemes.oauth1.scheme: HTTP authentication scheme "OAuth" is not supported: requirements that need scheme "oauth1" are not served, the operation's other alternatives are`)
	hasWarning(t, res, `d.yaml: $.info.title: the title makes no name; the API is named "api.example.com" after its server`)
	hasWarning(t, res, `d.yaml: $.paths['//openapi']: path key with empty segments; served as "/openapi"`)

	_, err := Parse("d.yaml", []byte(head+`components: {securitySchemes: {k: {type: http, scheme: negotiate}}}
paths: {/a: {get: {security: [{k: []}], responses: {}}}, /b: {get: {security: [], responses: {}}}}
`))
	if err == nil || !strings.Contains(err.Error(), `d.yaml: $.components.securitySchemes.k.scheme: 1 operations (GET /a) need k, which the gateway cannot check, in every alternative; refused rather than served without it`) {
		t.Errorf("an operation with no alternative left: %v", err)
	}
	res = mustParse(t, "openapi: 3.0.3\ninfo: {title: "+strings.Repeat("word ", 30)+", version: v1}\nx-tollgate-production-endpoints: [http://127.0.0.1:9]\npaths: {/a: {get: {}}}\n")
	if n := res.API.Name; len(n) > 100 || !strings.HasPrefix(n, "word-word") || strings.HasSuffix(n, "-") {
		t.Errorf("a long title's name: %q", n)
	}
}

// Aliases that would expand a small document into millions of values are refused, fast.
func TestAliasBombIsRefused(t *testing.T) {
	doc := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		doc += n + ": &" + n + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+", ", 10), ", ") + "]\n"
		prev = n
	}
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "expands to too many values") || time.Since(start) > 2*time.Second {
		t.Errorf("a billion laughs: %v after %v", err, time.Since(start))
	}
}
