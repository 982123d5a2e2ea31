package openapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Document is a definition decoded once into plain values (maps, lists, strings,
// json.Number, booleans, nil), the form every step below works on: YAML is converted
// once, not once per question asked of it.
type Document struct {
	tree map[string]any
}

// Decode reads a YAML or JSON document whose top level is an object.
func Decode(data []byte) (*Document, error) {
	v, err := decodeValue(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document is %s, not an object", kind(v))
	}
	return &Document{tree: m}, nil
}

// decodeValue reads YAML or JSON into plain values; JSON is read directly, YAML converted.
func decodeValue(data []byte) (any, error) {
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) == 0 || t[0] != '{' && t[0] != '[' {
		v, err := decodeYAML(data)
		if err != nil {
			return nil, errors.New(cleanYAMLError(err))
		}
		return v, nil
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // "1.0" stays 1.0 when the document is written again
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not a YAML or JSON document: %v", err)
	}
	return v, nil
}

func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return strings.Join(strings.Fields(msg), " ")
}

// IsAPI says whether the document is an OpenAPI or Swagger description (it has openapi or
// swagger at its top level).
func (d *Document) IsAPI() bool {
	_, o := d.tree["openapi"]
	_, s := d.tree["swagger"]
	return o || s
}

// Kind is the document's top-level kind ("" when none): Tollgate's own documents have one.
func (d *Document) Kind() string {
	k, _ := d.tree["kind"].(string)
	return k
}

// swagger2 says whether the tree is a Swagger 2.0 document.
func swagger2(tree map[string]any) bool {
	_, ok := tree["swagger"]
	return ok
}

// obj and list read a tree value as an object or a list (nil when it is not one).
func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// copyTree is a deep copy of a tree value.
func copyTree(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyTree(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = copyTree(e)
		}
		return l
	}
	return v
}

// pointer follows a JSON pointer ("/components/schemas/Pet"; "" is the whole document).
func pointer(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	if ptr[0] != '/' {
		return nil, false
	}
	cur := doc
	for _, part := range strings.Split(ptr[1:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[part]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// fragment is a $ref's JSON pointer: the part after '#', unescaped from its URI form (real
// documents also write raw '{' '}' there, which stay as they are).
func fragment(ref string) string {
	_, frag, _ := strings.Cut(ref, "#")
	if u, err := url.PathUnescape(frag); err == nil {
		frag = u
	}
	return frag
}

// member is a key's step in a JSON path: .name, or ['/a/{b}'] for anything else.
func member(k string) string {
	if identifier.MatchString(k) {
		return "." + k
	}
	return "['" + k + "']"
}

// httpMethods are the operation keys of a path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func isMethod(k string) bool {
	for _, m := range httpMethods {
		if k == m {
			return true
		}
	}
	return false
}
