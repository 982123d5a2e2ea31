package openapi

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// Opener reads what a reference to another file names. from is the location of the
// document that holds the reference, ref the reference without its fragment. It returns
// the location it read (references inside that document are relative to it) and the
// bytes. The caller decides what may be read (definitions: the root document's directory
// tree, or its host).
type Opener func(from, ref string) (loc string, data []byte, err error)

// bundle replaces every reference to another file with what it names, so that the document
// stands alone: a schema is added to the document's own schemas (components.schemas, or
// definitions in Swagger 2.0) under a name of its own and referred to there — which keeps
// recursive schemas finite and a shared schema single — and anything else (a path item, an
// operation, a parameter, a response, a whole components section) is copied in place.
// Example values are data and never followed. It reports whether the tree changed.
func bundle(file, loc string, tree map[string]any, open Opener) (bool, apimodel.Problems, apimodel.Problems) {
	if !hasExternal(tree, siteOther) {
		return false, nil, nil
	}
	if loc == "" {
		loc = file
	}
	b := &bundler{open: open, file: file, root: loc, docs: map[string]any{loc: tree},
		hoisted: map[string]string{}, active: map[string]bool{}, taken: map[string]bool{}}
	sectionPath := []string{"components", "schemas"}
	b.prefix = "#/components/schemas/"
	if swagger2(tree) {
		sectionPath, b.prefix = []string{"definitions"}, "#/definitions/"
	}
	if sec := obj(lookup(tree, sectionPath)); sec != nil && sec["$ref"] == nil {
		for k := range sec {
			b.taken[k] = true
		}
	}
	// The schemas section first, so that a whole-file section's schemas keep their names
	// and references to them elsewhere find them.
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return (keys[i] == sectionPath[0]) && keys[j] != sectionPath[0] || (keys[i] == sectionPath[0]) == (keys[j] == sectionPath[0]) && keys[i] < keys[j]
	})
	for _, k := range keys {
		tree[k] = b.walk(tree[k], loc, "$"+member(k), childSite(siteOther, k))
	}
	if len(b.extra) > 0 {
		sec := ensure(tree, sectionPath)
		for k, v := range b.extra {
			sec[k] = v
		}
	}
	return true, b.problems, b.warnings
}

type bundler struct {
	open               Opener
	file, root         string
	docs               map[string]any    // location → decoded document
	prefix             string            // where hoisted schemas are referred to
	hoisted            map[string]string // location#pointer → its name in the schemas section
	taken              map[string]bool   // names in the schemas section
	extra              map[string]any    // schemas added to the section
	active             map[string]bool   // references being copied (a cycle outside schemas)
	problems, warnings apimodel.Problems
}

// site is what a value of the document is, as far as references are concerned.
type site int

const (
	siteOther      site = iota
	siteSchema          // a schema
	siteSchemaMap       // an object of schemas by name (properties, components.schemas)
	siteSchemaList      // a list of schemas (allOf, anyOf, oneOf, prefixItems)
	siteExamples        // an object of Example Objects
	siteExample         // an Example Object: its value is data
	siteData            // example values, defaults, enums, extensions: never references
)

var (
	schemaChild    = map[string]bool{"items": true, "additionalProperties": true, "not": true, "contains": true, "if": true, "then": true, "else": true, "propertyNames": true, "additionalItems": true, "unevaluatedItems": true, "unevaluatedProperties": true, "contentSchema": true}
	schemaMapChild = map[string]bool{"properties": true, "patternProperties": true, "$defs": true, "definitions": true, "dependentSchemas": true}
	schemaList     = map[string]bool{"allOf": true, "anyOf": true, "oneOf": true, "prefixItems": true}
	dataKey        = map[string]bool{"example": true, "default": true, "enum": true, "const": true}
)

// childSite is the site of the member key of an object at site s.
func childSite(s site, key string) site {
	switch {
	case s == siteData || strings.HasPrefix(key, "x-") || dataKey[key]:
		return siteData
	case s == siteSchemaMap:
		return siteSchema
	case s == siteExamples:
		return siteExample
	case s == siteExample:
		if key == "value" {
			return siteData
		}
		return siteOther
	case s == siteSchema:
		switch {
		case key == "examples":
			return siteData // a JSON Schema's examples are values
		case schemaChild[key]:
			return siteSchema
		case schemaMapChild[key]:
			return siteSchemaMap
		case schemaList[key]:
			return siteSchemaList
		}
		return siteOther
	}
	switch key {
	case "schema":
		return siteSchema
	case "schemas", "definitions":
		return siteSchemaMap
	case "examples":
		return siteExamples
	}
	return siteOther
}

// hasExternal says whether v holds a reference to another file.
func hasExternal(v any, s site) bool {
	switch x := v.(type) {
	case map[string]any:
		if s == siteData {
			return false
		}
		if ref, ok := x["$ref"].(string); ok && !strings.HasPrefix(ref, "#") {
			return true
		}
		for k, e := range x {
			if hasExternal(e, childSite(s, k)) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasExternal(e, elemSite(s)) {
				return true
			}
		}
	}
	return false
}

func elemSite(s site) site {
	switch s {
	case siteSchemaList, siteSchema: // items: [..] in older schemas
		return siteSchema
	case siteData:
		return siteData
	}
	return siteOther
}

// walk copies v, a value of the document at loc, with its references to other files
// resolved; at is the JSON path in the root document, for messages.
func (b *bundler) walk(v any, loc, at string, s site) any {
	switch x := v.(type) {
	case map[string]any:
		if s == siteData {
			return v
		}
		if ref, ok := x["$ref"].(string); ok {
			return b.ref(x, ref, loc, at, s)
		}
		// In a fixed order, so that the same files bundle to the same bytes (and the same
		// stored blob), and schemas first, so that they keep their own names.
		out := make(map[string]any, len(x))
		keys := sortedKeys(x)
		sort.SliceStable(keys, func(i, j int) bool { return keys[i] == "schemas" && keys[j] != "schemas" })
		for _, k := range keys {
			out[k] = b.walk(x[k], loc, at+member(k), childSite(s, k))
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = b.walk(e, loc, fmt.Sprintf("%s[%d]", at, i), elemSite(s))
		}
		return out
	}
	return v
}

// ref resolves one reference object found in the document at loc.
func (b *bundler) ref(x map[string]any, ref, loc, at string, s site) any {
	target, val, ok := b.target(ref, loc, at, s)
	switch {
	case !ok:
		return map[string]any{}
	case target == b.root:
		// A reference into the root document (from it, or back from another file).
		return map[string]any{"$ref": "#" + escapeFragment(fragment(ref))}
	case s == siteSchema:
		return b.hoist(target, fragment(ref), val, at)
	}
	return b.inline(x, ref, target, val, at, s)
}

// target finds what a reference names: the document it is in and the value there.
func (b *bundler) target(ref, loc, at string, s site) (string, any, bool) {
	file, _, _ := strings.Cut(ref, "#")
	target := loc
	if file != "" {
		if b.open == nil {
			b.fail(at, "$ref %q names another file, and this document was not read from a file or URL its references could be read against", ref)
			return "", nil, false
		}
		t, err := b.read(loc, file)
		if err != nil {
			b.unresolved(at, s, fmt.Sprintf("$ref %q: %v", ref, err))
			return "", nil, false
		}
		target = t
	}
	if target == b.root {
		return target, nil, true
	}
	val, ok := pointer(b.docs[target], fragment(ref))
	if !ok {
		b.unresolved(at, s, fmt.Sprintf("$ref %q: %s has nothing at #%s", ref, target, fragment(ref)))
	}
	return target, val, ok
}

// hoist puts a schema of another file into the document's own schemas, once, and refers
// to it there. A schema of the section itself, written as a reference, keeps its name.
func (b *bundler) hoist(target, frag string, val any, at string) any {
	key := target + "#" + frag
	if name, ok := b.sectionMember(at); ok && b.hoisted[key] == "" {
		b.hoisted[key] = name
		return b.walk(val, target, at, siteSchema)
	}
	name, seen := b.hoisted[key]
	if !seen {
		// Named before its content is walked, which may refer to it.
		name = b.name(target, frag)
		b.hoisted[key] = name
		if b.extra == nil {
			b.extra = map[string]any{}
		}
		b.extra[name] = b.walk(val, target, at, siteSchema)
	}
	return map[string]any{"$ref": b.prefix + name} // names are [A-Za-z0-9._-]
}

// inline copies what a reference outside schemas names in its place.
func (b *bundler) inline(x map[string]any, ref, target string, val any, at string, s site) any {
	key := target + "#" + fragment(ref)
	if b.active[key] {
		b.fail(at, "$ref %q: refers to itself through other references outside schemas", ref)
		return map[string]any{}
	}
	b.active[key] = true
	defer delete(b.active, key)
	if m := obj(val); m != nil && s == siteSchemaMap && (at == "$.components.schemas" || at == "$.definitions") {
		// A whole file as the schemas section: its schemas keep their names, and
		// references to them (also from inside it) refer to these.
		for k := range m {
			b.hoisted[key+"/"+escapePointer(k)] = k
			b.taken[k] = true
		}
	}
	out := b.walk(val, target, at, s)
	// Members beside $ref (a summary or description in 3.1) are kept over the target's.
	if m := obj(out); m != nil && len(x) > 1 {
		for k, v := range x {
			if k != "$ref" {
				m[k] = copyTree(v)
			}
		}
	}
	return out
}

// sectionMember says whether at is a member of the root's schemas section, and its name.
func (b *bundler) sectionMember(at string) (string, bool) {
	sec := "$.components.schemas"
	if b.prefix == "#/definitions/" {
		sec = "$.definitions"
	}
	rest, ok := strings.CutPrefix(at, sec)
	switch {
	case !ok:
		return "", false
	case strings.HasPrefix(rest, ".") && identifier.MatchString(rest[1:]):
		return rest[1:], true
	case strings.HasPrefix(rest, "['") && strings.HasSuffix(rest, "']"):
		return rest[2 : len(rest)-2], true
	}
	return "", false
}

// read opens another document once and returns its location.
func (b *bundler) read(from, file string) (string, error) {
	loc, data, err := b.open(from, file)
	if err != nil {
		return "", err
	}
	if _, ok := b.docs[loc]; ok {
		return loc, nil
	}
	v, err := decodeValue(data)
	if err != nil {
		return "", fmt.Errorf("reading %s: %v", loc, err)
	}
	b.docs[loc] = v
	return loc, nil
}

// unresolved reports a reference that cannot be followed: a problem where it could carry
// security or routing, a warning inside a schema (the gateway does not read schemas).
func (b *bundler) unresolved(at string, s site, reason string) {
	if s == siteSchema || s == siteSchemaMap || s == siteSchemaList {
		b.warnings = append(b.warnings, apimodel.Problem{File: b.file, Path: at, Reason: reason + "; the schema is read as empty"})
		return
	}
	b.fail(at, "%s", reason)
}

func (b *bundler) fail(at, format string, args ...any) {
	b.problems = append(b.problems, apimodel.Problem{File: b.file, Path: at, Reason: fmt.Sprintf(format, args...)})
}

var nameUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// name is a free name in the schemas section for the schema at loc#frag: the pointer's
// last step, or the file's name.
func (b *bundler) name(loc, frag string) string {
	base := frag[strings.LastIndex(frag, "/")+1:]
	if base == "" {
		base = strings.TrimSuffix(path.Base(loc), path.Ext(loc))
	}
	base = strings.Trim(nameUnsafe.ReplaceAllString(base, "_"), "_")
	if base == "" {
		base = "schema"
	}
	name := base
	for i := 2; b.taken[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	b.taken[name] = true
	return name
}

// escapePointer escapes one step of a JSON pointer.
func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// escapeFragment writes a pointer as a URI fragment ('%' and the characters a fragment
// cannot hold escaped).
func escapeFragment(ptr string) string {
	var sb strings.Builder
	for _, c := range []byte(ptr) {
		if c == '%' || c == ' ' || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' || c == '|' || c == '}' || c < 0x20 || c >= 0x7f {
			fmt.Fprintf(&sb, "%%%02X", c)
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// lookup follows keys from v.
func lookup(v any, keys []string) any {
	for _, k := range keys {
		v = obj(v)[k]
	}
	return v
}

// ensure returns the object at keys below tree, making the objects on the way.
func ensure(tree map[string]any, keys []string) map[string]any {
	cur := tree
	for _, k := range keys {
		next := obj(cur[k])
		if next == nil {
			next = map[string]any{}
			cur[k] = next
		}
		cur = next
	}
	return cur
}
