package openapi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

func parseExample(t *testing.T, name string) *apimodel.API {
	t.Helper()
	file := filepath.Join("..", "..", "..", "examples", name, name+".yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Parse(file, data)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return res.API
}

func TestExamplesParse(t *testing.T) {
	cb := parseExample(t, "coffeebar")
	if cb.ID() != "coffeebar/v1" || cb.BasePath != "/coffeebar/v1" {
		t.Fatalf("coffeebar id %q base %q", cb.ID(), cb.BasePath)
	}
	if got := cb.Production.URLs[0].URL; got != "http://127.0.0.1:8081/coffeebar" {
		t.Errorf("production endpoint %q", got)
	}
	if got := cb.Sandbox.URLs[0].URL; got != "http://127.0.0.1:8082/coffeebar" {
		t.Errorf("sandbox endpoint %q", got)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{cb})
	_, op := cat.Operation("coffeebar/v1", "GET /order/{orderId}")
	if op == nil || len(op.Security) != 1 || op.Security[0][0].Scheme != "oauth2" || op.Security[0][0].Scopes[0] != "read:order" {
		t.Fatalf("GET /order/{orderId} security = %+v", op)
	}

	ps := parseExample(t, "petstore")
	if ps.BasePath != "/petstore/v1" || ps.Production.URLs[0].URL != "http://127.0.0.1:8084/v1" {
		t.Errorf("petstore base %q production %+v (from servers)", ps.BasePath, ps.Production)
	}
	_, op = apimodel.NewCatalog([]*apimodel.API{ps}).Match("", "GET", "/petstore/v1/pets/7")
	if op == nil || op.Security[0][0].Scheme != DefaultScheme {
		t.Errorf("a definition without security needs a bearer token by default, got %+v", op)
	}

	st := parseExample(t, "online-store")
	_, op = apimodel.NewCatalog([]*apimodel.API{st}).Match("", "GET", "/store/v1/searchItem")
	if op == nil {
		t.Fatal("no /searchItem")
	}
	want := apimodel.Endpoint{Discovery: "searchItem_etcd_key", URL: "http://127.0.0.1:8087/search"}
	if op.Production.URLs[0] != want || !op.Open() {
		t.Errorf("searchItem production %+v open %v", op.Production, op.Open())
	}
}

const head = `openapi: 3.0.3
info: {title: Shop, version: v2}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
`

func TestSecurityRequirements(t *testing.T) {
	doc := head + `components:
  securitySchemes:
    jwt: {type: http, scheme: bearer}
    key: {type: apiKey, in: header, name: X-API-Key}
security:
  - jwt: [a, b]
  - key: []
paths:
  /inherit: {get: {responses: {"200": {description: ok}}}}
  /open: {get: {security: [], responses: {"200": {description: ok}}}}
  /open2: {get: {security: [{}], responses: {"200": {description: ok}}}}
  /both: {get: {security: [{jwt: [c], key: []}], responses: {"200": {description: ok}}}}
  /off: {get: {x-wso2-disable-security: true, responses: {"200": {description: ok}}}}
`
	res, err := Parse("shop.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{res.API})
	get := func(p string) *apimodel.Operation {
		_, op := cat.Operation("shop/v2", "GET "+p)
		if op == nil {
			t.Fatalf("no GET %s", p)
		}
		return op
	}
	if op := get("/inherit"); len(op.Security) != 2 || op.Open() || len(op.Security[0][0].Scopes) != 2 {
		t.Errorf("/inherit: %+v", op.Security)
	}
	for _, p := range []string{"/open", "/open2", "/off"} {
		if !get(p).Open() {
			t.Errorf("%s should be open: %+v", p, get(p).Security)
		}
	}
	if op := get("/both"); len(op.Security) != 1 || len(op.Security[0]) != 2 {
		t.Errorf("/both: want one requirement with two schemes, got %+v", op.Security)
	}
	if s := res.API.Schemes["key"]; s.Type != apimodel.SchemeAPIKey || s.In != "header" || s.Param != "X-API-Key" {
		t.Errorf("apiKey scheme %+v", s)
	}
}

func TestBrokenDefinitions(t *testing.T) {
	ok200 := `{responses: {"200": {description: ok}}}`
	cases := []struct {
		name, doc, path, reason string
	}{
		{"bad YAML", "openapi: 3.0.3\ninfo: [\n", "$", "line 2"},
		{"neither OpenAPI 3 nor Swagger 2", "swagger: '1.2'\ninfo: {title: a, version: b}\npaths: {}\n", "$", "only Swagger 2.0 and OpenAPI 3.x"},
		{"no version at all", "info: {title: a, version: b}\npaths: {}\n", "$.openapi", "OpenAPI 3.x"},
		{"endpoint extension of the wrong shape", `openapi: 3.0.3
info: {title: Shop, version: v2}
x-wso2-production-endpoints: 42
paths: {/a: {get: ` + ok200 + `}}
`, "$.x-wso2-production-endpoints", "must be an endpoint object"},
		{"endpoint urls not a list", `openapi: 3.0.3
info: {title: Shop, version: v2}
x-wso2-production-endpoints: {urls: http://a}
paths: {/a: {get: ` + ok200 + `}}
`, "$.x-wso2-production-endpoints.urls", "must be a list"},
		{"endpoint not a URL", head + "paths: {/a: {get: {x-tollgate-production-endpoints: [ftp://x], responses: {\"200\": {description: ok}}}}}\n",
			"$.paths['/a'].get.x-tollgate-production-endpoints.urls[0]", "http or https"},
		{"bad etcd endpoint", head + "paths: {/a: {get: {x-tollgate-production-endpoints: ['etcd(key)'], responses: {\"200\": {description: ok}}}}}\n",
			"$.paths['/a'].get.x-tollgate-production-endpoints[0]", "etcd(KEY, DEFAULT_URL)"},
		{"throttling not a string", head + "x-wso2-throttling-tier: [gold]\npaths: {/a: {get: " + ok200 + "}}\n",
			"$.x-wso2-throttling-tier", "must be a string"},
		{"unknown x-tollgate extension", head + "x-tollgate-base-path: /x\npaths: {/a: {get: " + ok200 + "}}\n",
			"$.x-tollgate-base-path", "unknown extension"},
		{"duplicate operation by template shape, with other security", head + "paths:\n  /pets/{id}: {get: " + ok200 + "}\n  /pets/{petId}: {get: {security: [], responses: {}}}\n",
			"$.paths['/pets/{petId}'].get", "duplicate operation"},
		{"duplicate path key", head + "paths:\n  /a:\n    get: " + ok200 + "\n  /a:\n    post: " + ok200 + "\n",
			"$", "line 7: key \"/a\" is already defined at line 5"},
		{"bad path template", head + "paths:\n  /a/{id: {get: " + ok200 + "}\n", "$.paths['/a/{id']", "well-formed"},
		{"empty template parameter", head + "paths:\n  /a/{}: {get: " + ok200 + "}\n", "$.paths['/a/{}']", "empty or invalid"},
		{"unknown scheme in requirement", head + "paths:\n  /a: {get: {security: [{nope: []}], responses: {\"200\": {description: ok}}}}\n",
			"$.paths['/a'].get.security[0]", "unknown security scheme"},
		{"no endpoints at all", "openapi: 3.0.3\ninfo: {title: Shop, version: v2}\npaths: {/a: {get: " + ok200 + "}}\n",
			"$.servers", "none of its 1 operations (GET /a) has one of its own: give the API an absolute http(s) URL in servers, or x-tollgate-production-endpoints"},
		{"bad base path", head + "x-wso2-basePath: shop\npaths: {/a: {get: " + ok200 + "}}\n", "$.x-tollgate-basePath", "must start with '/'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Parse("broken.yaml", []byte(c.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", res.API)
			}
			ps, ok := err.(apimodel.Problems)
			if !ok {
				t.Fatalf("error is %T, want Problems", err)
			}
			found := false
			for _, p := range ps {
				if p.File == "broken.yaml" && strings.Contains(p.Path, c.path) && strings.Contains(p.Reason, c.reason) {
					found = true
				}
			}
			if !found {
				t.Errorf("want a problem at %q saying %q, got:\n%v", c.path, c.reason, err)
			}
		})
	}
}

// What changes neither routing nor security is a warning located by JSON path: an
// undeclared path parameter, a schema $ref that points at nothing, an ECMA-262 pattern RE2
// cannot compile, a description written as a $ref, a response $ref into requestBodies; and
// two operations alike in everything enforced that match the same requests are one.
func TestWarningsDoNotReject(t *testing.T) {
	res, err := Parse("w.yaml", []byte(`openapi: 3.0.3
info: {title: Shop, version: v2, description: {$ref: "#/x-notes"}}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
paths:
  /a/{id}:
    get:
      responses:
        "200": {$ref: "#/components/requestBodies/Thing"}
        "404": {description: no, content: {application/json: {schema: {$ref: "#/components/schemas/Gone"}}}}
  /a/{other}:
    get: {responses: {"200": {description: ok}}}
components:
  requestBodies:
    Thing: {content: {application/json: {schema: {type: string, pattern: '^(a)\1$'}}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`w.yaml: $.components.requestBodies.Thing.content['application/json'].schema.pattern: pattern "^(a)\\1$" is not supported by the RE2 engine Go uses (invalid escape sequence); it is valid ECMA-262, and nothing checks it`,
		`w.yaml: $.paths['/a/{id}'].get.responses['404'].content['application/json'].schema: $ref "#/components/schemas/Gone" points at nothing in the document; read as empty (nothing the gateway enforces is there)`,
		`w.yaml: $.paths['/a/{other}'].get: matches the same requests as GET /a/{id}, with the same security and endpoints; served as that operation`,
	}
	got := res.Warnings.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("want the warning\n  %s\ngot\n%s", w, got)
		}
	}
	if len(res.API.Operations) != 1 {
		t.Errorf("operations %d, want 1", len(res.API.Operations))
	}
}

func TestWSO2EndpointReference(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: Ref, version: v1}
x-wso2-endpoints:
  - primary:
      urls: [http://127.0.0.1:7001, http://127.0.0.1:7002]
      type: failover
x-wso2-production-endpoints: "#/x-wso2-endpoints/primary"
paths: {/a: {get: {responses: {"200": {description: ok}}}}}
`
	res, err := Parse("ref.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p := res.API.Production; p.Type != "failover" || len(p.URLs) != 2 {
		t.Errorf("production %+v", p)
	}
}

// A WSO2 definition in Swagger 2.0, with the spellings WSO2 API Manager exports
// (x-throttling-tier, x-auth-type: None, endpoint type loadbalance), imports unchanged.
func TestWSO2Swagger2Definition(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "wso2-swagger2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Parse("wso2-swagger2.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	a := res.API
	if a.ID() != "swagger-petstore/1.0.5" || a.BasePath != "/petstore/v1" || a.Production.Type != "load_balance" || a.Production.URLs[0].URL != "https://petstore.swagger.io/v2" {
		t.Fatalf("api %+v", a)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{a})
	_, get := cat.Operation(a.ID(), "GET /pet/{petId}")
	_, del := cat.Operation(a.ID(), "DELETE /pet/{petId}")
	if get == nil || del == nil {
		t.Fatal("operations missing")
	}
	if get.Throttling != "Unlimited" || get.Security[0][0].Scheme != "api_key" || a.Schemes["api_key"].Type != apimodel.SchemeAPIKey {
		t.Errorf("GET: throttling %q security %+v", get.Throttling, get.Security)
	}
	if !del.Open() {
		t.Errorf("x-auth-type: None must open DELETE: %+v", del.Security)
	}
	if a.Schemes["petstore_auth"].Type != apimodel.SchemeBearer {
		t.Errorf("oauth2 scheme %+v", a.Schemes["petstore_auth"])
	}
}

func TestWSO2XScope(t *testing.T) {
	doc := head + `paths:
  /menu: {get: {x-scope: read_menu, responses: {"200": {description: ok}}}}
  /open: {get: {x-scope: ignored, x-auth-type: None, responses: {"200": {description: ok}}}}
`
	res, err := Parse("xscope.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{res.API})
	_, op := cat.Operation("shop/v2", "GET /menu")
	if len(op.Security) != 1 || len(op.Security[0][0].Scopes) != 1 || op.Security[0][0].Scopes[0] != "read_menu" {
		t.Errorf("x-scope: %+v", op.Security)
	}
	if _, open := cat.Operation("shop/v2", "GET /open"); !open.Open() {
		t.Errorf("x-auth-type None with x-scope must stay open: %+v", open.Security)
	}
}

// WSO2 API Manager exports the application credentials an API takes as
// x-wso2-application-security; API keys travel in the apikey header or query parameter.
func TestWSO2ApplicationSecurity(t *testing.T) {
	doc := `openapi: 3.0.1
info: {title: Orders, version: 1.0.0}
x-wso2-production-endpoints: {urls: ["http://10.0.0.1"], type: http}
x-wso2-application-security: {security-types: [oauth2, api_key], optional: false}
components:
  securitySchemes:
    default: {type: oauth2, flows: {implicit: {authorizationUrl: "https://test.com", scopes: {}}}}
security: [{default: []}]
paths:
  /orders:
    get:
      x-auth-type: Application & Application User
      responses: {"200": {description: ok}}
  /keys-only:
    get:
      x-wso2-application-security: {security-types: [api_key]}
      responses: {"200": {description: ok}}
`
	res, err := Parse("orders.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{res.API})
	_, orders := cat.Operation(res.API.ID(), "GET /orders")
	if len(orders.Security) != 3 || orders.Security[0][0].Scheme != "default" {
		t.Errorf("oauth2 or an API key in header or query: %+v", orders.Security)
	}
	_, keys := cat.Operation(res.API.ID(), "GET /keys-only")
	if len(keys.Security) != 2 || res.API.Schemes[keys.Security[0][0].Scheme].Param != "apikey" {
		t.Errorf("API keys only: %+v", keys.Security)
	}
}

// An operation's x-wso2-disable-security overrides the API's either way: false under an
// API-level true secures that operation (WSO2 answers 401 900902 there, not 200).
func TestOperationDisableSecurityOverridesTheAPIs(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: Locks, version: v1}
x-wso2-disable-security: true
x-wso2-production-endpoints: [http://127.0.0.1:9000]
paths:
  /open: {get: {responses: {"200": {description: ok}}}}
  /secured: {get: {x-wso2-disable-security: false, responses: {"200": {description: ok}}}}
`
	res, err := Parse("locks.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{res.API})
	if _, op := cat.Operation("locks/v1", "GET /open"); op == nil || !op.Open() {
		t.Errorf("/open should be open under the API's true: %+v", op)
	}
	_, op := cat.Operation("locks/v1", "GET /secured")
	if op == nil || op.Open() || len(op.Security) == 0 {
		t.Fatalf("/secured must need a credential: %+v", op)
	}
}

// x-tollgate-scopes takes any or all; the default follows the document's dialect.
func TestScopeModeFollowsTheDialect(t *testing.T) {
	doc := func(ext, opExt string) string {
		return `openapi: 3.0.3
info: {title: S, version: v1}
` + ext + `
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
components: {securitySchemes: {o: {type: http, scheme: bearer}}}
paths:
  /a: {get: {` + opExt + `security: [{o: [x, y]}], responses: {"200": {description: ok}}}}
`
	}
	for _, c := range []struct {
		name, ext, opExt string
		anyOf            bool
	}{
		{"plain OpenAPI: all", "", "", false},
		{"a WSO2 extension: any", "x-wso2-auth-header: Authorization", "", true},
		{"document says any", "x-tollgate-scopes: any", "", true},
		{"operation says all under a WSO2 document", "x-wso2-auth-header: Authorization", "x-tollgate-scopes: all, ", false},
	} {
		res, err := Parse("s.yaml", []byte(doc(c.ext, c.opExt)))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := res.API.Operations[0].Security[0][0].AnyScope; got != c.anyOf {
			t.Errorf("%s: any-of %v, want %v", c.name, got, c.anyOf)
		}
	}
	if _, err := Parse("s.yaml", []byte(doc("x-tollgate-scopes: some", ""))); err == nil || !strings.Contains(err.Error(), "$.x-tollgate-scopes: must be any or all") {
		t.Errorf("a bad mode: %v", err)
	}
}

// Spec problems that change neither routing nor security are warnings, as WSO2 accepted
// them: a duplicate operationId; in a WSO2 document, a requirement naming an undeclared
// scheme, read as OAuth2 (in a plain OpenAPI document that stays an error).
func TestLenientSpecProblemsAreWarnings(t *testing.T) {
	const dup = `openapi: 3.0.3
info: {title: Dup, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
paths:
  /a: {get: {operationId: x, responses: {"200": {description: ok}}}}
  /b: {get: {operationId: x, responses: {"200": {description: ok}}}}
`
	res, err := Parse("dup.yaml", []byte(dup))
	if err != nil {
		t.Fatalf("a duplicate operationId refused: %v", err)
	}
	if !strings.Contains(res.Warnings.Error(), "$.paths['/b'].get.operationId: duplicate operationId") {
		t.Errorf("warnings: %v", res.Warnings)
	}
	const undeclared = `openapi: 3.0.3
info: {title: Und, version: v1}
%s
paths:
  /a: {get: {security: [{petstore_auth: [read:pets]}], responses: {"200": {description: ok}}}}
`
	res, err = Parse("wso2.yaml", []byte(fmt.Sprintf(undeclared, "x-wso2-production-endpoints: {urls: [http://127.0.0.1:9000]}")))
	if err != nil {
		t.Fatalf("WSO2 document with an undeclared scheme refused: %v", err)
	}
	if s := res.API.Schemes["petstore_auth"]; s.Type != apimodel.SchemeBearer || !strings.Contains(res.Warnings.Error(), "read as OAuth2") {
		t.Errorf("scheme %+v, warnings %v", s, res.Warnings)
	}
	if _, err := Parse("plain.yaml", []byte(fmt.Sprintf(undeclared, "x-tollgate-production-endpoints: [http://127.0.0.1:9000]"))); err == nil || !strings.Contains(err.Error(), "unknown security scheme") {
		t.Errorf("plain OpenAPI with an undeclared scheme: %v", err)
	}
}

// What WSO2's gateways read without a word is read here too, with a warning naming it:
// requirements written as strings, scopes as one string, and $refs that point at nothing
// in a response schema.
func TestLooseWSO2DocumentsAreReadWithWarnings(t *testing.T) {
	const doc = `openapi: 3.0.3
info: {title: Loose, version: v1}
x-wso2-production-endpoints: {urls: [http://127.0.0.1:9000]}
components:
  securitySchemes:
    petstore_auth: {type: oauth2, flows: {clientCredentials: {tokenUrl: https://idp.test/t, scopes: {}}}}
paths:
  /a:
    get:
      security:
        - petstore_auth:[]
      responses: {"200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Missing"}}}}}
  /b:
    get:
      security:
        - petstore_auth: "admin"
      responses: {"200": {description: ok}}
  /c:
    get:
      security:
        - "petstore_auth:[read, write]"
      responses: {"200": {description: ok}}
`
	res, err := Parse("loose.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{res.API})
	for path, want := range map[string][]string{"GET /a": {}, "GET /b": {"admin"}, "GET /c": {"read", "write"}} {
		_, op := cat.Operation("loose/v1", path)
		if op == nil || len(op.Security) != 1 || op.Security[0][0].Scheme != "petstore_auth" || strings.Join(op.Security[0][0].Scopes, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %+v, want petstore_auth with %v", path, op, want)
		}
	}
	w := res.Warnings.Error()
	for _, want := range []string{
		`$.paths['/a'].get.security[0]: requirement written as the string "petstore_auth:[]"`,
		`$.paths['/b'].get.security[0].petstore_auth: scopes written as the string "admin"`,
		`$.paths['/a'].get.responses['200'].content['application/json'].schema: $ref "#/components/schemas/Missing" points at nothing`,
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
}

// Choreo Connect's endpoints on the path item serve the path's operations that name none of
// their own; x-wso2-* extensions that are not done are warnings that say so.
func TestPathItemEndpointsAndUnsupportedWSO2Extensions(t *testing.T) {
	const doc = `openapi: 3.0.3
info: {title: Items, version: v1}
x-wso2-production-endpoints: {urls: [http://10.0.0.1:80]}
x-wso2-request-interceptor: checkHeaders
x-wso2-something-new: 1
paths:
  /a:
    x-wso2-production-endpoints:
      urls: [http://10.0.0.2:80/a]
      advanceEndpointConfig: {timeoutInMillis: 2000}
    x-wso2-throttling-tier: Gold
    get: {responses: {"200": {description: ok}}}
    post: {x-wso2-production-endpoints: {urls: [http://10.0.0.3:80]}, responses: {"200": {description: ok}}}
  /b: {get: {responses: {"200": {description: ok}}}}
`
	res, err := Parse("items.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{res.API})
	if _, op := cat.Operation("items/v1", "GET /a"); op == nil || op.Production.URLs[0].URL != "http://10.0.0.2:80/a" || op.Production.Policy.Timeout.Seconds() != 2 {
		t.Errorf("GET /a should take the path item's endpoints and their timeout: %+v", op)
	}
	if _, op := cat.Operation("items/v1", "POST /a"); op == nil || op.Production.URLs[0].URL != "http://10.0.0.3:80" {
		t.Errorf("POST /a keeps its own endpoints: %+v", op)
	}
	if _, op := cat.Operation("items/v1", "GET /b"); op == nil || !op.Production.Empty() {
		t.Errorf("GET /b uses the API's endpoints: %+v", op)
	}
	w := res.Warnings.Error()
	for _, want := range []string{
		"$.x-wso2-request-interceptor: request and response interceptors are not run",
		"$.x-wso2-something-new: not supported; ignored",
		"$.paths['/a'].x-wso2-throttling-tier: not read here",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
}

// WSO2's optional application security is not honoured, and says so: the credential stays
// required.
func TestWSO2OptionalApplicationSecurityWarns(t *testing.T) {
	doc := `openapi: 3.0.1
info: {title: Opt, version: v1}
x-wso2-production-endpoints: {urls: [http://127.0.0.1:9000]}
x-wso2-application-security: {security-types: [api_key], optional: true}
paths: {/a: {get: {responses: {"200": {description: ok}}}}}
`
	res, err := Parse("opt.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var warned bool
	for _, w := range res.Warnings {
		warned = warned || strings.Contains(w.String(), "optional") && strings.Contains(w.String(), "stays required")
	}
	if !warned {
		t.Errorf("no warning for optional: true: %v", res.Warnings)
	}
	if op := res.API.Operations[0]; op.Open() || len(op.Security) == 0 {
		t.Errorf("the operation is open: %+v", op.Security)
	}
}
