package openapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

const validatedDoc = `openapi: 3.0.3
info: {title: Pets, version: v1}
servers: [{url: "http://127.0.0.1:8081"}]
security: []
x-tollgate-validation: {request: true, maxBodySize: 64KiB}
paths:
  /pets/{petId}:
    parameters:
      - {name: petId, in: path, required: true, schema: {type: integer, minimum: 1}}
    put:
      parameters:
        - {name: tags, in: query, style: form, explode: false, schema: {type: array, items: {type: string, enum: [a, b]}}}
        - {name: X-Trace, in: header, schema: {type: string, pattern: "^[0-9a-f]+$"}}
      requestBody:
        required: true
        content:
          application/json: {schema: {$ref: "#/components/schemas/Pet"}}
          "*/*": {}
          application/*: {}
      responses: {"200": {description: ok}}
    get:
      x-tollgate-validation: {request: false}
      responses: {"200": {description: ok}}
components:
  schemas:
    Pet:
      type: object
      required: [name]
      properties:
        name: {type: string}
        const: {type: string, const: cat}
`

func TestValidationCompiledAtLoad(t *testing.T) {
	res, err := Parse("pets.yaml", []byte(validatedDoc))
	if err != nil {
		t.Fatal(err)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{res.API})
	_, get := cat.Operation("pets/v1", "GET /pets/{petId}")
	if get.Validation != nil {
		t.Error("GET turned validation off, and has rules")
	}
	_, put := cat.Operation("pets/v1", "PUT /pets/{petId}")
	v := put.Validation
	if v == nil {
		t.Fatal("PUT has no rules")
	}
	if v.MaxBody != 64<<10 {
		t.Errorf("max body %d, want 64 KiB", v.MaxBody)
	}
	var names []string
	for _, p := range v.Params {
		names = append(names, string(p.In)+":"+p.Name)
	}
	if strings.Join(names, ",") != "query:tags,header:X-Trace,path:petId" {
		t.Errorf("params %v: want the operation's and its path item's", names)
	}
	if p := v.Params[0]; !p.Array || p.Explode || p.Sep != ',' || p.Types != apimodel.ParamString {
		t.Errorf("tags: %+v", p)
	}
	if p := v.Params[2]; !p.Required || p.Types != apimodel.ParamInteger {
		t.Errorf("petId: %+v", p)
	}
	if v.Body == nil || !v.Body.Required || len(v.Body.Media) != 3 {
		t.Fatalf("body: %+v", v.Body)
	}
	if got := []string{v.Body.Media[0].Type, v.Body.Media[1].Type, v.Body.Media[2].Type}; strings.Join(got, " ") != "application/json application/* */*" {
		t.Errorf("media order %v: most specific first", got)
	}
	m := v.Body.Find("Application/JSON; charset=utf-8")
	if m == nil || m.Schema == nil {
		t.Fatal("application/json with parameters does not find its schema")
	}
	if !m.Schema.Valid([]byte(`{"name":"x","const":"cat"}`)) || m.Schema.Valid([]byte(`{"const":"cat"}`)) || m.Schema.Valid([]byte(`{"name":"x","const":"dog"}`)) {
		t.Error("the $ref'd schema is not the one compiled")
	}
	if f := v.Body.Find("text/plain"); f == nil || f.Type != "*/*" {
		t.Errorf("text/plain found %+v, want */*", f)
	}
}

// An operation whose rules do not compile: refused when the definition asks for
// validation, served unvalidated (with a warning) when only the gateway's default does.
func TestValidationThatCannotCompile(t *testing.T) {
	doc := strings.Replace(validatedDoc, "const: {type: string, const: cat}", "odd: {type: string, if: {minLength: 1}}", 1)
	_, err := Parse("pets.yaml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "pets.yaml: $.paths['/pets/{petId}'].put.requestBody.content['application/json'].schema: cannot validate PUT /pets/{petId}") ||
		!strings.Contains(err.Error(), "/if: not supported") {
		t.Fatalf("explicit validation of an uncompilable schema: %v", err)
	}
	byDefault := strings.Replace(doc, "x-tollgate-validation: {request: true, maxBodySize: 64KiB}\n", "", 1)
	res, err := ParseWith("pets.yaml", []byte(byDefault), apimodel.ValidationDefaults{Request: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Warnings.Error(), "PUT /pets/{petId}: served without request validation") {
		t.Errorf("warnings: %v", res.Warnings)
	}
	for _, op := range res.API.Operations {
		if op.Method == "PUT" && op.Validation != nil {
			t.Error("PUT validated with a schema that did not compile")
		}
		if op.Method == "GET" && op.Validation != nil {
			t.Error("GET validated though its definition turns validation off")
		}
	}
}

func TestValidationSettingsRefused(t *testing.T) {
	for setting, want := range map[string]string{
		"{request: yes}":                  "$.x-tollgate-validation.request: must be true or false",
		"{maxBodySize: 9MiB}":             "$.x-tollgate-validation.maxBodySize: 9437184 bytes: must be 1 byte to 8 MiB",
		"{maxBodySize: lots}":             `"lots" is not a size`,
		"{response: sometimes}":           "$.x-tollgate-validation.response: must be enforce, report or off",
		"{requests: true}":                "$.x-tollgate-validation.requests: unknown field",
		"true":                            "must be an object like {request: true}",
		"{request: true, maxBodySize: 0}": "0 bytes",
	} {
		doc := strings.Replace(validatedDoc, "{request: true, maxBodySize: 64KiB}", setting, 1)
		if _, err := Parse("pets.yaml", []byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", setting, err, want)
		}
	}
}

// Swagger 2.0 bodies (converted) and WSO2's own validation test definition compile.
func TestValidationOfRealDefinitions(t *testing.T) {
	file := filepath.Join("..", "..", "..", "..", "shared", "wso2", "mgw3-tests", "src", "test", "resources", "openAPIs", "validation", "validation_api.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ParseWith(file, data, apimodel.ValidationDefaults{Request: true})
	if err != nil {
		t.Fatal(err)
	}
	var addPet *apimodel.Operation
	for i, op := range res.API.Operations {
		if op.Key() == "POST /pet" {
			addPet = &res.API.Operations[i]
		}
	}
	if addPet == nil || addPet.Validation == nil || addPet.Validation.Body == nil {
		t.Fatalf("POST /pet not validated; warnings %v", res.Warnings)
	}
	m := addPet.Validation.Body.Find("application/json")
	if m == nil || m.Schema == nil {
		t.Fatal("POST /pet has no JSON schema")
	}
	// MGW 3.x's own test: a pet without name and photoUrls is refused.
	vs := m.Schema.Validate([]byte(`{"id":1}`))
	if len(vs) == 0 || !strings.Contains(vs[0].Reason, "name") {
		t.Errorf("violations %v", vs)
	}
}

func TestResponseRulesCompiled(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: Shop, version: v1}
servers: [{url: "http://127.0.0.1:8081"}]
security: []
paths:
  /items/{id}:
    get:
      x-tollgate-validation: {response: enforce}
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Item"}}}}
        4XX: {$ref: "#/components/responses/Problem"}
        "404": {description: none}
        default: {description: other, content: {text/plain: {}}}
    delete:
      responses: {"204": {description: gone}}
components:
  schemas:
    Item: {type: object, required: [id], properties: {id: {type: integer}}}
  responses:
    Problem: {description: problem, content: {application/problem+json: {schema: {type: object, required: [title]}}}}
`
	res, err := ParseWith("shop.yaml", []byte(doc), apimodel.ValidationDefaults{})
	if err != nil {
		t.Fatal(err)
	}
	var get, del *apimodel.Operation
	for i := range res.API.Operations {
		switch res.API.Operations[i].Method {
		case "GET":
			get = &res.API.Operations[i]
		case "DELETE":
			del = &res.API.Operations[i]
		}
	}
	if del.Validation != nil {
		t.Error("DELETE has rules though nothing asks for them")
	}
	v := get.Validation
	if v == nil || v.Request || v.Response != apimodel.ResponseEnforce {
		t.Fatalf("GET rules %+v", v)
	}
	var order []string
	for _, r := range v.Responses {
		order = append(order, r.Status)
	}
	if strings.Join(order, " ") != "200 404 4XX default" {
		t.Errorf("responses in order %v", order)
	}
	for status, want := range map[int]string{200: "200", 404: "404", 418: "4XX", 500: "default", 99: ""} {
		got := ""
		if r := v.FindResponse(status); r != nil {
			got = r.Status
		}
		if got != want {
			t.Errorf("status %d falls under %q, want %q", status, got, want)
		}
	}
	ok := v.FindResponse(200)
	if m := apimodel.FindMedia(ok.Media, "application/json"); m == nil || m.Schema == nil || m.Schema.Valid([]byte(`{"id":"x"}`)) || !m.Schema.Valid([]byte(`{"id":1}`)) {
		t.Error("the 200's schema is not the one compiled")
	}
	if m := apimodel.FindMedia(v.FindResponse(418).Media, "application/problem+json"); m == nil || m.Schema == nil {
		t.Error("the referenced 4XX response's schema is missing")
	}
	// The gateway default turns it on for an operation that says nothing.
	res, err = ParseWith("shop.yaml", []byte(doc), apimodel.ValidationDefaults{Response: apimodel.ResponseReport})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range res.API.Operations {
		if op.Method == "DELETE" && (op.Validation == nil || op.Validation.Response != apimodel.ResponseReport || op.Validation.Request) {
			t.Errorf("DELETE under the report default: %+v", op.Validation)
		}
	}
}

func TestFaultTemplateExtension(t *testing.T) {
	for setting, want := range map[string]string{
		`{format: problem}`: "",
		`{template: "{{.Code}}", contentType: text/plain}`: "",
		`{format: xml}`: `$.x-tollgate-faults.format: "xml" must be wso2 or problem`,
		`{template: "{\"code\": {{.Cod}}}", contentType: application/json}`: "$.x-tollgate-faults.template: ",
		`{template: "{{.Message}}", contentType: application/json}`:         "does not make JSON",
		`{template: "{{.Code}}"}`:                                "needs its content type",
		`{format: wso2, template: "x", contentType: text/plain}`: "format and template: give one",
		`{style: x}`: "$.x-tollgate-faults.style: unknown field",
	} {
		doc := strings.Replace(validatedDoc, "x-tollgate-validation: {request: true, maxBodySize: 64KiB}", "x-tollgate-faults: "+setting, 1)
		res, err := Parse("pets.yaml", []byte(doc))
		switch {
		case want == "" && (err != nil || res.API.Faults == nil):
			t.Errorf("%s: %v", setting, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), "pets.yaml: "+want) && !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", setting, err, want)
		}
	}
}
