package jsonbody

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// Any bytes: the validator never panics, says "not JSON" exactly when encoding/json does or
// the body is not UTF-8 (RFC 8259 §8.1; encoding/json takes invalid UTF-8 and replaces it),
// and Valid agrees with Validate.
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{`{"id":"AB-123456","customer":{"name":"Ada"},"items":[{"sku":"a","quantity":1}]}`, `[1,2.5e3,-0,"\u00e9",null,true]`,
		`{"a":{"b":[{"c":"\ud83d\ude00"}]}}`, `{"id":01}`, "\"\xff\"", `{"a" 1}`, `[1,]`, `  7  `, `{"items":[{"quantity":1.5}]}`} {
		f.Add([]byte(seed))
	}
	s := schema(f, "Order", orderSchemas)
	v, err := Compile(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		errs := v.Validate(body)
		notJSON := len(errs) > 0 && strings.Contains(errs[len(errs)-1].Reason, "the body is not ")
		deep := len(errs) > 0 && strings.Contains(errs[len(errs)-1].Reason, "nesting deeper")
		want := json.Valid(body) && utf8.Valid(body)
		if !deep && notJSON == want {
			t.Fatalf("JSON %v, but the validator says %v", want, errs)
		}
		if v.Valid(body) != (len(errs) == 0) {
			t.Fatalf("Valid %v, Validate %v", v.Valid(body), errs)
		}
		if len(errs) > MaxViolations {
			t.Fatalf("%d violations", len(errs))
		}
	})
}
