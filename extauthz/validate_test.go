package extauthz_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

const petsAPI = `openapi: 3.0.3
info: {title: Pets, version: v1}
servers: [{url: "http://127.0.0.1:8081"}]
x-tollgate-validation: {request: true, maxBodySize: 2KiB}
security: [{oauth: []}]
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp.test/token", scopes: {}}}}
  schemas:
    Pet:
      type: object
      required: [name, photoUrls]
      additionalProperties: false
      properties:
        name: {type: string, minLength: 1}
        status: {type: string, enum: [available, pending, sold]}
        photoUrls: {type: array, items: {type: string}}
        age: {type: integer, minimum: 0}
paths:
  /pets/{petId}:
    parameters:
      - {name: petId, in: path, required: true, schema: {type: integer, minimum: 1}}
    put:
      parameters:
        - {name: tags, in: query, style: form, explode: false, schema: {type: array, maxItems: 2, items: {type: string, enum: [a, b, c]}}}
        - {name: ids, in: query, schema: {type: array, items: {type: integer}}}
        - {name: dryRun, in: query, schema: {type: boolean}}
        - {name: X-Trace, in: header, schema: {type: string, pattern: "^[0-9a-f]{4}$"}}
        - {name: X-Codes, in: header, schema: {type: array, items: {type: integer}}}
        - {name: session, in: cookie, required: true, schema: {type: string, minLength: 3}}
        - {name: q, in: query, schema: {type: string, maxLength: 5}}
      requestBody:
        required: true
        content:
          application/json: {schema: {$ref: "#/components/schemas/Pet"}}
          text/plain: {schema: {type: string}}
      responses: {"200": {description: ok}}
    get:
      x-tollgate-validation: {request: false}
      responses: {"200": {description: ok}}
  /pets:
    post:
      requestBody:
        content:
          application/*+json: {schema: {$ref: "#/components/schemas/Pet"}}
      responses: {"200": {description: ok}}
`

type bodyCase struct {
	name, method, path, ctype, body string
	headers                         map[string]string
	status                          int
	want                            []string // in the fault's description, in order
}

func TestRequestValidation(t *testing.T) {
	metrics := prometheus.NewRegistry()
	e, idp, reg := newEnforcerOn(t, tu.NewIdP(t, "https://idp.test"), extauthz.Config{}, 0, metrics, petsAPI)
	r := serveRig(t, e, idp, reg)
	good := `{"name":"rex","photoUrls":["http://x/1.png"],"status":"sold","age":3}`
	cookie := map[string]string{"cookie": "theme=dark; session=abcdef"}
	cases := []bodyCase{
		{"valid", "PUT", "/pets/v1/pets/7?tags=a,b&ids=1&ids=2&dryRun=true&q=caf%C3%A9", "application/json", good,
			map[string]string{"x-trace": "00ff", "x-codes": "1, 2,3", "cookie": "session=abc"}, 200, nil},
		{"content type with parameters", "PUT", "/pets/v1/pets/7", "Application/JSON; charset=utf-8", good, cookie, 200, nil},
		{"a body without a schema's checks", "PUT", "/pets/v1/pets/7", "text/plain", "anything", cookie, 200, nil},
		{"structured suffix", "POST", "/pets/v1/pets", "application/merge-patch+json", good, nil, 200, nil},
		{"validation off on GET", "GET", "/pets/v1/pets/0?tags=zzz", "", "", nil, 200, nil},
		{"missing required properties", "PUT", "/pets/v1/pets/7", "application/json", `{"status":"sold"}`, cookie, 400,
			[]string{"body: required properties missing: name, photoUrls"}},
		{"wrong enum and type", "PUT", "/pets/v1/pets/7", "application/json", `{"name":"rex","photoUrls":[1],"status":"hello"}`, cookie, 400,
			[]string{"body /photoUrls/0:", "body /status:"}},
		{"additional property", "PUT", "/pets/v1/pets/7", "application/json", `{"name":"rex","photoUrls":[],"owner":"x"}`, cookie, 400,
			[]string{"body /owner:"}},
		{"not JSON", "PUT", "/pets/v1/pets/7", "application/json", `{"name":`, cookie, 400, []string{"body "}},
		{"body required", "PUT", "/pets/v1/pets/7", "application/json", "", cookie, 400, []string{"body: a request body is required"}},
		{"undeclared content type", "PUT", "/pets/v1/pets/7", "application/xml", "<pet/>", cookie, 415, nil},
		{"missing content type", "PUT", "/pets/v1/pets/7", "", good, cookie, 415, nil},
		{"too large", "PUT", "/pets/v1/pets/7", "application/json", `{"name":"` + strings.Repeat("x", 2048) + `","photoUrls":[]}`, cookie, 413, nil},
		{"path parameter", "PUT", "/pets/v1/pets/0", "application/json", good, cookie, 400, []string{"path parameter petId:"}},
		{"path parameter not a number", "PUT", "/pets/v1/pets/rex", "application/json", good, cookie, 400, []string{"path parameter petId:"}},
		{"query form without explode", "PUT", "/pets/v1/pets/7?tags=a,z", "application/json", good, cookie, 400, []string{"query parameter tags: item 1:"}},
		{"query too many items", "PUT", "/pets/v1/pets/7?tags=a,b,c", "application/json", good, cookie, 400, []string{"query parameter tags:"}},
		{"query exploded array", "PUT", "/pets/v1/pets/7?ids=1&ids=x", "application/json", good, cookie, 400, []string{"query parameter ids: item 1:"}},
		{"query boolean", "PUT", "/pets/v1/pets/7?dryRun=yes", "application/json", good, cookie, 400, []string{"query parameter dryRun:"}},
		{"query percent-encoded", "PUT", "/pets/v1/pets/7?q=%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9", "application/json", good, cookie, 400, []string{"query parameter q:"}},
		{"header pattern", "PUT", "/pets/v1/pets/7", "application/json", good, map[string]string{"x-trace": "zz", "cookie": "session=abc"}, 400, []string{"header parameter X-Trace:"}},
		{"header simple array", "PUT", "/pets/v1/pets/7", "application/json", good, map[string]string{"x-codes": "1,b", "cookie": "session=abc"}, 400, []string{"header parameter X-Codes: item 1:"}},
		{"cookie required", "PUT", "/pets/v1/pets/7", "application/json", good, nil, 400, []string{"cookie parameter session: required, and missing"}},
		{"cookie too short", "PUT", "/pets/v1/pets/7", "application/json", good, map[string]string{"cookie": "session=ab"}, 400, []string{"cookie parameter session:"}},
		{"several at once", "PUT", "/pets/v1/pets/0?dryRun=1", "application/json", `{}`, nil, 400,
			[]string{"query parameter dryRun:", "cookie parameter session:", "path parameter petId:", "body: required properties missing: name, photoUrls"}},
	}
	token := r.token("")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := checkBody(t, r, c, token)
			if got.status != c.status {
				t.Fatalf("status %d, want %d: %s", got.status, c.status, got.body)
			}
			if c.status == 200 {
				return
			}
			var f struct {
				Fault struct {
					Code        int
					Message     string
					Description string
				}
			}
			if err := json.Unmarshal([]byte(got.body), &f); err != nil || f.Fault.Code != c.status || got.headers["content-type"] != "application/json" {
				t.Fatalf("fault %s (%v)", got.body, err)
			}
			rest := f.Fault.Description
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("description %q lacks %q (in order)", f.Fault.Description, w)
				}
				rest = rest[i+len(w):]
			}
			if strings.Contains(f.Fault.Description, "rex") || strings.Contains(f.Fault.Description, "hello") {
				t.Errorf("the description repeats what the client sent: %s", f.Fault.Description)
			}
		})
	}
	// MGW 3.x's own bytes around the description.
	got := checkBody(t, r, bodyCase{method: "PUT", path: "/pets/v1/pets/7", ctype: "application/json", body: `{"name":"rex"}`, headers: cookie}, token)
	if got.body != `{"fault":{"code":400, "message":"Bad Request", "description":"body: required properties missing: photoUrls"}}` {
		t.Errorf("MGW 3.x shape: %s", got.body)
	}
	// An unauthenticated caller is refused before its body costs anything.
	if got := checkBody(t, r, bodyCase{method: "PUT", path: "/pets/v1/pets/7", ctype: "application/json", body: "{", headers: cookie}, ""); got.status != 401 {
		t.Errorf("no token, bad body: %d, want 401", got.status)
	}
	if v := testutil.ToFloat64(counter(t, metrics, "tollgate_validations_total", "invalid")); v < 20 {
		t.Errorf("invalid validations counted %v", v)
	}
}

func TestRequestValidationProblemDetails(t *testing.T) {
	r := newRig(t, extauthz.Config{Format: extauthz.FormatProblem}, petsAPI)
	got := checkBody(t, r, bodyCase{method: "PUT", path: "/pets/v1/pets/0", ctype: "application/json", body: `{"name":"","photoUrls":[]}`,
		headers: map[string]string{"cookie": "session=abc"}}, r.token(""))
	var p struct {
		Status int
		Code   int
		Errors []struct{ In, Pointer, Parameter, Detail string }
	}
	if err := json.Unmarshal([]byte(got.body), &p); err != nil || got.headers["content-type"] != "application/problem+json" {
		t.Fatalf("%s: %v", got.body, err)
	}
	if p.Status != 400 || len(p.Errors) != 2 || p.Errors[0].In != "path" || p.Errors[0].Parameter != "petId" ||
		p.Errors[1].In != "body" || p.Errors[1].Pointer != "/name" || p.Errors[1].Detail == "" {
		t.Errorf("problem %s", got.body)
	}
}

func checkBody(t *testing.T, r *rig, c bodyCase, authz string) result {
	t.Helper()
	hs := map[string]string{}
	for k, v := range c.headers {
		hs[k] = v
	}
	if authz != "" {
		hs["authorization"] = authz
	}
	if c.ctype != "" {
		hs["content-type"] = c.ctype
	}
	req := extauthz.NewCheckRequest(extauthz.Request{Method: c.method, Path: c.path, Host: "gw.test", Headers: hs, Body: []byte(c.body)})
	resp, err := r.client.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return answer(resp)
}

func counter(t *testing.T, g prometheus.Gatherer, name, result string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	t.Fatalf("no %s{result=%q}", name, result)
	return nil
}

// One error format for every answer: the gateway's template writes the enforcer's denies
// (a missing token, a validation's 400 with what it found), an API's own wins on its paths.
func TestErrorTemplates(t *testing.T) {
	gw, err := errfmt.Parse(`{"error":{"code":{{.Code}},"status":{{.Status}},"detail":{{json .Description}},"request":{{json .RequestID}},"api":{{json .API}},"op":{{json .Operation}}}}`, "application/vnd.acme+json")
	if err != nil {
		t.Fatal(err)
	}
	own := strings.Replace(petsAPI, "security: [{oauth: []}]", "security: [{oauth: []}]\nx-tollgate-faults: {template: \"{{.Status}} {{.Message}}: {{.Description}}\", contentType: text/plain}", 1)
	own = strings.Replace(own, "title: Pets", "title: Own", 1)
	r := newRig(t, extauthz.Config{Template: gw}, petsAPI, own)
	got := checkBody(t, r, bodyCase{method: "PUT", path: "/pets/v1/pets/7", ctype: "application/json", body: `{"name":"rex"}`,
		headers: map[string]string{"cookie": "session=abc", "x-request-id": "req-42"}}, r.token(""))
	want := `{"error":{"code":400,"status":400,"detail":"body: required properties missing: photoUrls","request":"req-42","api":"pets/v1","op":"PUT /pets/{petId}"}}`
	if got.status != 400 || got.body != want || got.headers["content-type"] != "application/vnd.acme+json" {
		t.Errorf("validation fault %d %s (%s)\nwant %s", got.status, got.body, got.headers["content-type"], want)
	}
	if got := r.check(t, "GET", "/nowhere", "", nil); got.status != 404 || !strings.HasPrefix(got.body, `{"error":{"code":900906,"status":404,`) || !strings.Contains(got.body, `"api":"","op":""`) {
		t.Errorf("no API: %d %s", got.status, got.body)
	}
	got = checkBody(t, r, bodyCase{method: "PUT", path: "/own/v1/pets/7", ctype: "application/json", body: `{}`}, "")
	if got.status != 401 || got.body != "401 Missing Credentials: Missing Credentials. Make sure your API invocation call has a header: 'Authorization: Bearer ACCESS_TOKEN'" || got.headers["content-type"] != "text/plain" {
		t.Errorf("the API's own template: %d %q (%s)", got.status, got.body, got.headers["content-type"])
	}
	if got.headers["www-authenticate"] == "" {
		t.Error("the challenge is lost with a template")
	}
}

// Decisions are counted per API, operation, decision and code, with the catalogue's names
// (never the request's path).
func TestDecisionsPerOperation(t *testing.T) {
	metrics := prometheus.NewRegistry()
	e, idp, reg := newEnforcerOn(t, tu.NewIdP(t, "https://idp.test"), extauthz.Config{}, 0, metrics, example(t, "coffeebar"))
	r := serveRig(t, e, idp, reg)
	tok := r.token("read:menu")
	for range 3 {
		r.check(t, "GET", "/coffeebar/v1/menu", tok, nil)
	}
	r.check(t, "GET", "/coffeebar/v1/menu", "", nil)
	r.check(t, "GET", "/nowhere/v1/x?id=12345", "", nil)
	mfs, err := metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "tollgate_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			got[l["api"]+"|"+l["operation"]+"|"+l["decision"]+"|"+l["code"]] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"coffeebar/v1|GET /menu|allow|":      3,
		"coffeebar/v1|GET /menu|deny|900902": 1,
		"||deny|900906":                      1,
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
