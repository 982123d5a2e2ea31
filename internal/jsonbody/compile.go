// Package jsonbody checks JSON bodies against OpenAPI schemas in one pass over the bytes:
// a schema is compiled once, when its definition is loaded (regular expressions, bounds,
// property tables), and a body is validated without building a document tree, so a request
// body costs no more than reading it. Keywords the compiler does not know are refused at
// compile time, never ignored: an operation is validated fully or not at all.
package jsonbody

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// kind is a JSON type, as a bit of a set.
type kind uint8

const (
	kNull kind = 1 << iota
	kBool
	kInteger // a number without a fraction (also matched by kNumber)
	kNumber
	kString
	kArray
	kObject
	kAny = kNull | kBool | kInteger | kNumber | kString | kArray | kObject
)

var kindNames = map[string]kind{"null": kNull, "boolean": kBool, "integer": kInteger, "number": kNumber | kInteger, "string": kString, "array": kArray, "object": kObject}

// node is one compiled schema.
type node struct {
	types kind
	never bool // the schema false: no value passes

	// numbers
	min, max         float64
	hasMin, hasMax   bool
	exclMin, exclMax bool
	multipleOf       float64

	// strings (lengths in code points)
	minLen, maxLen int // maxLen < 0: none
	pattern        matcher
	format         func([]byte) bool
	formatName     string

	// arrays
	items              *node
	minItems, maxItems int // maxItems < 0: none
	unique             bool

	// objects
	props              map[string]*prop
	required           int // how many of props are required
	additional         *node
	noAdditional       bool
	minProps, maxProps int // maxProps < 0: none

	enum         [][]byte            // canonical JSON of each allowed value
	enumStrings  map[string]struct{} // the same, when every allowed value is a string
	allOf, anyOf []*node
	oneOf        []*node
	not          *node
}

type prop struct {
	n        *node
	required bool
	bit      int // the required property's bit in an object's seen set
}

// Validator checks bodies against one compiled schema. It is safe for concurrent use.
type Validator struct{ root *node }

// Compile compiles an OpenAPI schema ($refs resolved by the loader) for validation. A
// keyword it cannot check is an error naming it.
func Compile(s *openapi3.Schema) (*Validator, error) {
	c := compiler{seen: map[*openapi3.Schema]*node{}}
	n, err := c.compile(s, "#")
	if err != nil {
		return nil, err
	}
	return &Validator{root: n}, nil
}

type compiler struct {
	seen map[*openapi3.Schema]*node // recursive schemas compile to a cycle
}

func (c *compiler) ref(r *openapi3.SchemaRef, at string) (*node, error) {
	if r == nil || r.Value == nil {
		return nil, fmt.Errorf("%s: unresolved reference %q", at, refOf(r))
	}
	return c.compile(r.Value, at)
}

func refOf(r *openapi3.SchemaRef) string {
	if r == nil {
		return ""
	}
	return r.Ref
}

func (c *compiler) compile(s *openapi3.Schema, at string) (*node, error) {
	if n, ok := c.seen[s]; ok {
		return n, nil
	}
	n := &node{types: kAny, maxLen: -1, maxItems: -1, maxProps: -1}
	c.seen[s] = n
	if s.Always != nil { // a boolean schema (OpenAPI 3.1)
		n.never = !*s.Always
		return n, nil
	}
	if err := unsupported(s, at); err != nil {
		return nil, err
	}
	if err := kinds(n, s, at); err != nil {
		return nil, err
	}
	c.numbers(n, s)
	if err := c.strings(n, s, at); err != nil {
		return nil, err
	}
	if err := c.arrays(n, s, at); err != nil {
		return nil, err
	}
	if err := c.objects(n, s, at); err != nil {
		return nil, err
	}
	for _, v := range s.Enum {
		b, err := canonical(v)
		if err != nil {
			return nil, fmt.Errorf("%s/enum: %v", at, err)
		}
		n.enum = append(n.enum, b)
	}
	n.enumStrings = stringSet(s.Enum)
	if s.Const != nil {
		if err := n.constant(s.Const); err != nil {
			return nil, fmt.Errorf("%s/const: %v", at, err)
		}
	}
	var err error
	for name, list := range map[string]struct {
		refs openapi3.SchemaRefs
		out  *[]*node
	}{"allOf": {s.AllOf, &n.allOf}, "anyOf": {s.AnyOf, &n.anyOf}, "oneOf": {s.OneOf, &n.oneOf}} {
		for i, r := range list.refs {
			sub, err := c.ref(r, fmt.Sprintf("%s/%s/%d", at, name, i))
			if err != nil {
				return nil, err
			}
			*list.out = append(*list.out, sub)
		}
	}
	if s.Not != nil {
		if n.not, err = c.ref(s.Not, at+"/not"); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// kinds compiles type (and OpenAPI 3.0's nullable).
func kinds(n *node, s *openapi3.Schema, at string) error {
	if s.Type == nil || len(*s.Type) == 0 {
		return nil
	}
	n.types = 0
	for _, t := range *s.Type {
		k, ok := kindNames[t]
		if !ok {
			return fmt.Errorf("%s/type: unknown type %q", at, t)
		}
		n.types |= k
	}
	if s.Nullable {
		n.types |= kNull
	}
	return nil
}

// strings compiles the string keywords: lengths, pattern and format.
func (c *compiler) strings(n *node, s *openapi3.Schema, at string) error {
	n.minLen = int(min(s.MinLength, math.MaxInt32))
	if s.MaxLength != nil {
		n.maxLen = int(min(*s.MaxLength, math.MaxInt32))
	}
	if s.Pattern != "" {
		re, err := compilePattern(s.Pattern)
		if err != nil {
			return fmt.Errorf("%s/pattern: %v", at, err)
		}
		n.pattern = re
	}
	if f, ok := stringFormats[s.Format]; ok {
		n.format, n.formatName = f, s.Format
	}
	return nil
}

func (c *compiler) numbers(n *node, s *openapi3.Schema) {
	if s.Min != nil {
		n.min, n.hasMin, n.exclMin = *s.Min, true, s.ExclusiveMin.IsTrue()
	}
	if s.Max != nil {
		n.max, n.hasMax, n.exclMax = *s.Max, true, s.ExclusiveMax.IsTrue()
	}
	// OpenAPI 3.1: exclusiveMinimum/Maximum are bounds of their own.
	if v := s.ExclusiveMin.Value; v != nil && (!n.hasMin || *v >= n.min) {
		n.min, n.hasMin, n.exclMin = *v, true, true
	}
	if v := s.ExclusiveMax.Value; v != nil && (!n.hasMax || *v <= n.max) {
		n.max, n.hasMax, n.exclMax = *v, true, true
	}
	if s.MultipleOf != nil {
		n.multipleOf = *s.MultipleOf
	}
	if bounds, ok := numberFormats[s.Format]; ok {
		if !n.hasMin || n.min < bounds[0] {
			n.min, n.hasMin, n.exclMin = bounds[0], true, false
		}
		if !n.hasMax || n.max > bounds[1] {
			n.max, n.hasMax, n.exclMax = bounds[1], true, false
		}
	}
}

func (c *compiler) arrays(n *node, s *openapi3.Schema, at string) error {
	n.minItems = int(min(s.MinItems, math.MaxInt32))
	if s.MaxItems != nil {
		n.maxItems = int(min(*s.MaxItems, math.MaxInt32))
	}
	n.unique = s.UniqueItems
	if s.Items != nil {
		var err error
		if n.items, err = c.ref(s.Items, at+"/items"); err != nil {
			return err
		}
	}
	return nil
}

func (c *compiler) objects(n *node, s *openapi3.Schema, at string) error {
	n.minProps = int(min(s.MinProps, math.MaxInt32))
	if s.MaxProps != nil {
		n.maxProps = int(min(*s.MaxProps, math.MaxInt32))
	}
	if len(s.Properties) > 0 || len(s.Required) > 0 {
		n.props = map[string]*prop{}
	}
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sub, err := c.ref(s.Properties[name], at+"/properties/"+name)
		if err != nil {
			return err
		}
		n.props[name] = &prop{n: sub}
	}
	for _, name := range s.Required {
		p := n.props[name]
		if p == nil {
			p = &prop{n: &node{types: kAny, maxLen: -1, maxItems: -1, maxProps: -1}}
			n.props[name] = p
		}
		if !p.required {
			p.required, p.bit = true, n.required
			n.required++
		}
	}
	switch ap := s.AdditionalProperties; {
	case ap.Has != nil && !*ap.Has:
		n.noAdditional = true
	case ap.Schema != nil:
		var err error
		if n.additional, err = c.ref(ap.Schema, at+"/additionalProperties"); err != nil {
			return err
		}
	}
	return nil
}

// annotations are keywords that assert nothing about a value.
var annotations = map[string]bool{"$schema": true, "$id": true, "$comment": true, "$anchor": true, "definitions": true, "$defs": true,
	"contentEncoding": true, "contentMediaType": true, "contentSchema": true}

// unsupported names a keyword the validator would otherwise ignore: an assertion it does not
// implement, or a keyword the schema object kept aside as unknown (a $ref left unresolved,
// draft 4's dependencies) — never ignored, so an operation is validated fully or not at all.
func unsupported(s *openapi3.Schema, at string) error {
	keys := make([]string, 0, len(s.Extensions))
	for k := range s.Extensions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, "x-") && !annotations[k] {
			return fmt.Errorf("%s/%s: not supported by the body validator", at, k)
		}
	}
	for name, set := range map[string]bool{
		"prefixItems": len(s.PrefixItems) > 0, "contains": s.Contains != nil, "patternProperties": len(s.PatternProperties) > 0,
		"dependentSchemas": len(s.DependentSchemas) > 0, "propertyNames": s.PropertyNames != nil, "if": s.If != nil,
		"unevaluatedItems":      s.UnevaluatedItems.Has != nil || s.UnevaluatedItems.Schema != nil,
		"unevaluatedProperties": s.UnevaluatedProperties.Has != nil || s.UnevaluatedProperties.Schema != nil,
		"dependentRequired":     len(s.DependentRequired) > 0,
		"$dynamicRef":           s.DynamicRef != "",
	} {
		if set {
			return fmt.Errorf("%s/%s: not supported by the body validator yet", at, name)
		}
	}
	return nil
}

// constant narrows the allowed values to one (const: null is not told apart from no
// const by the schema object, and is not checked).
func (n *node) constant(v any) error {
	b, err := canonical(v)
	if err != nil {
		return err
	}
	if n.enum == nil {
		n.enum, n.enumStrings = [][]byte{b}, stringSet([]any{v})
		return nil
	}
	for _, e := range n.enum {
		if string(e) == string(b) {
			n.enum, n.enumStrings = [][]byte{b}, stringSet([]any{v})
			return nil
		}
	}
	n.never = true // enum and const agree on no value
	return nil
}

// canonical is the compact JSON of a value with object keys sorted and numbers in one form,
// so that equal JSON values compare equal as bytes.
func canonical(v any) ([]byte, error) {
	return json.Marshal(normalize(v))
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalize(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case json.Number:
		f, _ := x.Float64()
		return f
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v
}

// stringSet is the enum's values when every one is a string (nil otherwise): a string is
// then looked up, not decoded and re-encoded.
func stringSet(enum []any) map[string]struct{} {
	if len(enum) == 0 {
		return nil
	}
	set := make(map[string]struct{}, len(enum))
	for _, v := range enum {
		s, ok := v.(string)
		if !ok {
			return nil
		}
		set[s] = struct{}{}
	}
	return set
}
