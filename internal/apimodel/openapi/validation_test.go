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
		"{response: enforce}":             "response validation is not available yet",
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
