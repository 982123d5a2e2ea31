package jsonbody

import (
	"fmt"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestFormats(t *testing.T) {
	for format, cases := range map[string]map[string]bool{
		"date-time":  {`"2026-12-05T21:51:01Z"`: true, `"2026-12-05T21:51:01.123+01:00"`: true, `"2026-12-05 21:51:01Z"`: false, `"2026-12-05T21:51:01"`: false, `"2026-13-05T21:51:01Z"`: false},
		"date":       {`"2026-12-05"`: true, `"2026-2-05"`: false, `"2026-02-30"`: false, `"20261205"`: false},
		"time":       {`"21:51:01Z"`: true, `"21:51:01.5+05:30"`: true, `"21:51"`: false, `"25:00:00Z"`: false},
		"byte":       {`"aGVsbG8="`: true, `"aGVsbG8"`: true, `""`: true, `"not base64!"`: false},
		"uuid":       {`"536e564f316c83104c000020"`: true}, // an annotation (see stringFormats)
		"email":      {`"ada"`: true},
		"ipv4":       {`"192.0.2.1"`: true, `"::1"`: false, `"256.0.0.1"`: false},
		"ipv6":       {`"2001:db8::1"`: true, `"192.0.2.1"`: false, `"fe80::1%eth0"`: false},
		"int32":      {`2147483647`: true, `2147483648`: false, `-2147483649`: false},
		"hostname":   {`"anything at all"`: true}, // not checked: an annotation
		"date-time ": {`"anything"`: true},
	} {
		typ := "string"
		if format == "int32" {
			typ = "integer"
		}
		v, err := Compile(&openapi3.Schema{Type: &openapi3.Types{typ}, Format: format})
		if err != nil {
			t.Fatal(err)
		}
		for body, want := range cases {
			vs := v.Validate([]byte(body))
			if (len(vs) == 0) != want {
				t.Errorf("%s %s: %v, want valid %v", format, body, vs, want)
			}
			if !want && len(vs) > 0 && format != "int32" && vs[0].Reason != fmt.Sprintf("not a valid %s", format) {
				t.Errorf("%s %s: reason %q", format, body, vs[0].Reason)
			}
		}
	}
	// A format applies to strings only: other types pass it.
	v, _ := Compile(&openapi3.Schema{Format: "date"})
	if !v.Valid([]byte(`12`)) {
		t.Error("a number fails a string format")
	}
}
