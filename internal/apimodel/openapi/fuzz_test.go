package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"
)

// The YAML reader walks nodes of its own; its oracle is the YAML library's own decoding
// into plain values: both accept or both refuse, and they give the same values (numbers
// compared as numbers, keys as text). Whole documents then go through the parser, which
// must answer (a model or problems), never panic.
func FuzzDecodeYAML(f *testing.F) {
	for _, seed := range []string{
		head + "paths: {/a: {get: {security: [{o: [y, on]}], responses: {\"200\": {description: ok}}}}}\n",
		"a: &x {b: 1}\nc: *x\nd: {<<: *x, e: 2.50}\n",
		"openapi: 3.1.0\ninfo: {title: T, version: 1.0}\npaths:\n  /a/{b}...{c}: {get: {$ref: '#/x'}}\nx: {security: []}\n",
		"k: [0x1F, 0o17, 1_000, .inf, -.NaN, ~, null, true, False, 2001-12-14]\n",
		"? [a]\n: b\n",
		"a: 1\na: 2\n",
		"- 1\n- 2\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mine, err := decodeYAML(data)
		var theirs any
		err2 := yaml.Unmarshal(data, &theirs)
		// The library finds keys written twice by their text; this reader by what they read
		// as (a null key and an empty one are "null" and "").
		libDup := err2 != nil && strings.Contains(err2.Error(), "already defined")
		if (err == nil) != (err2 == nil) && !bounded(err) && !libDup {
			t.Fatalf("%q: this reader says %v, the library %v", data, err, err2)
		}
		if err == nil && err2 == nil {
			a, b := canonical(t, mine), canonical(t, plain(theirs))
			if a != "" && b != "" && !reflect.DeepEqual(reread(a), reread(b)) {
				t.Fatalf("%q: read as %s, the library reads %s", data, a, b)
			}
		}
		if d, err := Decode(data); err == nil {
			_, _ = ParseDocument("f.yaml", d, Options{})
		}
	})
}

// plain turns the library's values into what JSON has: text keys. A timestamp, which the
// library makes a time and this reader keeps as written (a date is text in OpenAPI), makes
// the value one that is not compared.
func plain(v any) any {
	switch x := v.(type) {
	case time.Time:
		return func() {}
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case map[any]any:
		out := map[string]any{}
		for k, e := range x {
			out[fmt.Sprint(k)] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// canonical is v as JSON, "" when it has no JSON form (NaN, infinities, odd keys), which is
// then not compared.
func canonical(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil || strings.Contains(string(b), `\u003cnil\u003e`) {
		return ""
	}
	return string(b)
}

func reread(s string) any {
	var v any
	_ = json.Unmarshal([]byte(s), &v)
	return v
}

// bounded says whether err is one of this reader's own bounds (aliases, depth) or its
// stricter rule that two keys reading as one value are one key written twice (000 and 00),
// which the library does not have.
func bounded(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "too many values") || strings.Contains(err.Error(), "nested too deep") ||
		strings.Contains(err.Error(), "is already defined"))
}
