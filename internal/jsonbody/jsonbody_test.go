package jsonbody

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// schema loads an OpenAPI 3.0 document's components.schemas.<name>, $refs resolved, as
// definitions are loaded.
func schema(t testing.TB, name, schemas string) *openapi3.Schema {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData([]byte("openapi: 3.0.3\ninfo: {title: t, version: v1}\npaths: {}\ncomponents:\n  schemas:\n" + schemas))
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas[name].Value
}

const orderSchemas = `
    Order:
      type: object
      required: [id, customer, items]
      additionalProperties: false
      properties:
        id: {type: string, pattern: "^[A-Z]{2}-[0-9]{6}$"}
        customer: {$ref: "#/components/schemas/Customer"}
        items:
          type: array
          minItems: 1
          maxItems: 50
          items: {$ref: "#/components/schemas/Item"}
        shipping: {type: string, enum: [standard, express, pickup]}
        gift: {type: boolean}
        note: {type: string, nullable: true, maxLength: 5}
        discount: {type: number, minimum: 0, maximum: 50, exclusiveMaximum: true, multipleOf: 0.5}
        tags: {type: array, uniqueItems: true, items: {type: string}}
        contact:
          oneOf:
            - {type: object, required: [email], properties: {email: {type: string}}, additionalProperties: false}
            - {type: object, required: [phone], properties: {phone: {type: string}}, additionalProperties: false}
    Customer:
      type: object
      required: [name]
      properties:
        name: {type: string, minLength: 1, maxLength: 10}
        parent: {$ref: "#/components/schemas/Customer"}
    Item:
      type: object
      required: [sku, quantity]
      properties:
        sku: {type: string}
        quantity: {type: integer, minimum: 1}
`

func TestOpenAPI30Bodies(t *testing.T) {
	v, err := Compile(schema(t, "Order", orderSchemas))
	if err != nil {
		t.Fatal(err)
	}
	valid := []string{
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}]}`,
		`{"id":"AB-123456","customer":{"name":"Ada","parent":{"name":"Byron"}},"items":[{"sku":"a","quantity":2.0}],"shipping":"express","gift":true,"note":null,"discount":49.5,"tags":["x","y"],"contact":{"email":"a@b"}}`,
		" \n{\"id\":\"AB-123456\",\"customer\":{\"name\":\"\\u00c5sa\"},\"items\":[{\"sku\":\"a\",\"quantity\":1e2}]} \n",
	}
	for _, b := range valid {
		if errs := v.Validate([]byte(b)); errs != nil || !v.Valid([]byte(b)) {
			t.Errorf("valid body %s: %v", b, errs)
		}
	}
	for body, want := range map[string]string{
		`{"id":"AB-123456","customer":{"name":"Ada"}}`:                                                          ": required properties missing: items",
		`{"id":"ab","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}]}`:                              "/id: does not match the pattern",
		`{"id":"AB-123456","customer":{"name":""},"items":[{"sku":"a","quantity":1}]}`:                          "/customer/name: a string of 0 characters, shorter than 1",
		`{"id":"AB-123456","customer":{"name":"Ada","parent":{}},"items":[{"sku":"a","quantity":1}]}`:           "/customer/parent: required properties missing: name",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[]}`:                                               "/items: 0 items, fewer than 1",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1.5}]}`:                     "/items/0/quantity: a number with a fraction, where an integer is wanted",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":0}]}`:                       "/items/0/quantity: 0 is less than the minimum 1",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}],"shipping":"drone"}`:    "/shipping: not one of the values",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}],"gift":"yes"}`:          "/gift: a string, where a boolean is wanted",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}],"a/b~c":1}`:             "/a~1b~0c: a property the schema does not allow",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}],"discount":50}`:         "/discount: 50 is not less than 50",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}],"discount":1.2}`:        "/discount: 1.2 is not a multiple of 0.5",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}],"note":"toolong"}`:      "/note: a string of 7 characters, longer than 5",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}],"tags":["x","x"]}`:      "/tags: item 1 repeats an earlier item",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}],"contact":{}}`:          "/contact: matches 0 of the oneOf schemas",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}],"contact":{"email":1}}`: "/contact: matches 0 of the oneOf schemas",
		`[1,2]`:               ": an array, where an object is wanted",
		`{"id":"AB-123456",}`: "the body is not JSON",
		`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}]} {}`: "not one JSON value",
		`{"id":01}`:                            "the body is not JSON: a malformed number",
		`{"id":"\a"}`:                          "a malformed string escape",
		`{"a\/b":1}`:                           "/a~1b: a property the schema does not allow",
		"{\"id\":\"\xff\"}":                    "not UTF-8",
		`{"id":"AB-123456","customer":{"name"`: "the body is not JSON",
		``:                                     "the body is not JSON: unexpected end",
	} {
		errs := v.Validate([]byte(body))
		if len(errs) == 0 || !strings.Contains(errs[0].String(), want) {
			t.Errorf("%s: %v, want %q first", body, errs, want)
		}
		if v.Valid([]byte(body)) {
			t.Errorf("%s: Valid says it is", body)
		}
	}
	// Every violation is listed (up to MaxViolations), never a value of the body.
	errs := v.Validate([]byte(`{"id":"secret-value","customer":{"name":""},"items":[],"gift":1}`))
	if len(errs) != 4 {
		t.Errorf("violations %v, want 4", errs)
	}
	for _, e := range errs {
		if strings.Contains(e.String(), "secret-value") {
			t.Errorf("a violation repeats the body: %s", e)
		}
	}
	many := `{"items":[` + strings.Repeat(`{"quantity":0},`, 30) + `{"quantity":0}]}`
	if errs := v.Validate([]byte(many)); len(errs) != MaxViolations {
		t.Errorf("%d violations reported, want at most %d", len(errs), MaxViolations)
	}
}

// A body nested deeper than maxDepth is refused, not followed down the stack.
func TestDeepBodies(t *testing.T) {
	v, err := Compile(&openapi3.Schema{})
	if err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	if errs := v.Validate([]byte(deep)); len(errs) != 1 || !strings.Contains(errs[0].Reason, "nesting deeper") {
		t.Errorf("deep body: %v", errs)
	}
	ok := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	if !v.Valid([]byte(ok)) {
		t.Errorf("a body nested 100 deep is refused")
	}
}

// A keyword the validator does not implement refuses the schema, naming it, rather than
// being ignored; so does a $ref the loader did not resolve.
func TestUnsupportedKeywordsAreRefused(t *testing.T) {
	s := schema(t, "A", "    A: {type: object, x-note: fine}\n")
	if _, err := Compile(s); err != nil {
		t.Errorf("an x- extension refused: %v", err)
	}
	s.Extensions["dependencies"] = map[string]any{"a": []any{"b"}}
	if _, err := Compile(s); err == nil || !strings.Contains(err.Error(), "#/dependencies") {
		t.Errorf("dependencies: %v", err)
	}
	bad := &openapi3.Schema{Properties: openapi3.Schemas{"p": &openapi3.SchemaRef{Ref: "#/nowhere"}}}
	if _, err := Compile(bad); err == nil || !strings.Contains(err.Error(), `#/properties/p: unresolved reference "#/nowhere"`) {
		t.Errorf("an unresolved $ref: %v", err)
	}
}

// The cost of a request body: a 1 KB order validated with no schema work and few
// allocations (issue 25: at most 30 per validated 1 KB body).
func TestValidationAllocations(t *testing.T) {
	v, err := Compile(schema(t, "Order", orderSchemas))
	if err != nil {
		t.Fatal(err)
	}
	body := order()
	if !v.Valid(body) {
		t.Fatalf("the benchmark body is invalid: %v", v.Validate(body))
	}
	if n := testing.AllocsPerRun(100, func() { v.Valid(body) }); n > 30 {
		t.Errorf("%v allocations per 1 KB body, want at most 30", n)
	}
}

func order() []byte {
	var b strings.Builder
	b.WriteString(`{"id":"AB-123456","customer":{"name":"Ada"},"shipping":"express","gift":false,"tags":["a","b"],"items":[`)
	for i := 0; b.Len() < 950; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%04d","quantity":%d}`, i, i+1)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func BenchmarkValidate1KB(b *testing.B) {
	v, err := Compile(schema(b, "Order", orderSchemas))
	if err != nil {
		b.Fatal(err)
	}
	body := order()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		v.Valid(body)
	}
}

// Past 64 required properties the seen set is a slice, not a word's bits.
func TestManyRequiredProperties(t *testing.T) {
	s := &openapi3.Schema{Type: &openapi3.Types{"object"}, Properties: openapi3.Schemas{}}
	var all []string
	for i := range 70 {
		name := fmt.Sprintf("p%02d", i)
		s.Required = append(s.Required, name)
		all = append(all, fmt.Sprintf("%q:%d", name, i))
	}
	v, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if errs := v.Validate([]byte("{" + strings.Join(all, ",") + "}")); errs != nil {
		t.Errorf("every required property present: %v", errs)
	}
	errs := v.Validate([]byte("{" + strings.Join(append(all[:42:42], all[43:]...), ",") + "}"))
	if len(errs) != 1 || errs[0].Reason != "required properties missing: p42" {
		t.Errorf("one missing of 70: %v", errs)
	}
}

// OpenAPI 3.1's boolean schemas: false allows no value, true any; keywords the validator
// does not implement (dependentRequired, $dynamicRef) refuse the schema.
func TestBooleanSchemas(t *testing.T) {
	var s openapi3.Schema
	if err := json.Unmarshal([]byte(`{"type":"object","properties":{"no":false,"yes":true}}`), &s); err != nil {
		t.Fatal(err)
	}
	v, err := Compile(&s)
	if err != nil {
		t.Fatal(err)
	}
	if errs := v.Validate([]byte(`{"yes":[1,{"a":null}]}`)); errs != nil {
		t.Errorf("true allows anything: %v", errs)
	}
	if errs := v.Validate([]byte(`{"no":null}`)); len(errs) != 1 || errs[0].String() != "/no: no value is allowed here (the schema is false)" {
		t.Errorf("false allows nothing: %v", errs)
	}
	for _, doc := range []string{`{"dependentRequired":{"a":["b"]}}`, `{"$dynamicRef":"#meta"}`} {
		var u openapi3.Schema
		if err := json.Unmarshal([]byte(doc), &u); err != nil {
			t.Fatal(err)
		}
		if _, err := Compile(&u); err == nil {
			t.Errorf("%s compiled", doc)
		}
	}
}
