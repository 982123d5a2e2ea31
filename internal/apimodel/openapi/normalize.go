package openapi

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// normalize reads what real documents write loosely, in place, before the gateway's view is
// taken: path keys with a fragment or query, path items and operations written as local
// $refs, security schemes written as $refs, security requirements written as strings. Each
// repair is a warning; what cannot be repaired without guessing at security is a problem.
func (p *parser) normalize(tree map[string]any) {
	p.pathKeys(tree)
	paths := obj(tree["paths"])
	for _, k := range sortedKeys(paths) {
		if strings.HasPrefix(k, "x-") {
			continue // an extension of the Paths Object
		}
		at := "$.paths" + member(k)
		item := p.follow(tree, paths[k], at, "path item")
		if item == nil {
			delete(paths, k)
			continue
		}
		paths[k] = item
		for _, m := range sortedKeys(item) {
			if !isMethod(m) {
				continue
			}
			op := p.follow(tree, item[m], at+"."+m, "operation")
			if op == nil {
				delete(item, m)
				continue
			}
			item[m] = op
		}
	}
	for _, sec := range []map[string]any{obj(lookup(tree, []string{"components", "securitySchemes"})), obj(tree["securityDefinitions"])} {
		for _, name := range sortedKeys(sec) {
			at := "$.components.securitySchemes." + name
			if swagger2(tree) {
				at = "$.securityDefinitions." + name
			}
			if s := p.follow(tree, sec[name], at, "security scheme"); s != nil {
				sec[name] = s
			} else {
				delete(sec, name)
			}
		}
	}
	for _, f := range fixSecurity(tree) {
		p.warn(f.path, "%s", f.reason)
	}
	p.scan(tree, "$", siteOther)
}

// follow returns the object v, or the object its local $ref names (copied, so that two
// uses never share one). A $ref that names nothing is a problem: what it named may have
// carried security.
func (p *parser) follow(tree map[string]any, v any, at, what string) map[string]any {
	seen := map[string]bool{}
	for {
		m := obj(v)
		if m == nil {
			p.fail(at, "the %s is %s, not an object", what, kind(v))
			return nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			if len(seen) > 0 {
				return obj(copyTree(m))
			}
			return m
		}
		if !strings.HasPrefix(ref, "#") {
			p.fail(at, "the %s is a $ref to another file (%q), which was not bundled", what, ref)
			return nil
		}
		if seen[ref] {
			p.fail(at, "the %s's $ref %q refers to itself", what, ref)
			return nil
		}
		seen[ref] = true
		target, ok := pointer(tree, fragment(ref))
		if !ok {
			p.fail(at, "the %s is a $ref to %q, which is not in the document; refused rather than served without what it says (its security, its endpoints)", what, ref)
			return nil
		}
		v = target
	}
}

// pathKeys merges path keys that carry a fragment ("/a#b") or a query ("/a?beta=true"), or
// empty segments ("//a", "/a//"), into their path: OpenAPI allows any key that starts with
// '/', but a route matches a path (and Envoy, as configured here, merges slashes). An
// operation whose method the path has already is skipped; each is a warning.
func (p *parser) pathKeys(tree map[string]any) {
	paths := obj(tree["paths"])
	for _, k := range sortedKeys(paths) {
		base, what := pathOf(k)
		if what == "" {
			continue
		}
		at := "$.paths" + member(k)
		src := obj(paths[k])
		delete(paths, k)
		if base == "" || src == nil {
			p.warn(at, "path key with %s and no path; skipped", what)
			continue
		}
		dst := obj(paths[base])
		if dst == nil {
			paths[base] = src
			p.warn(at, "path key with %s; served as %q (routes match the path, not %s)", what, base, what)
			continue
		}
		for _, m := range sortedKeys(src) {
			switch {
			case !isMethod(m):
			case dst[m] != nil:
				p.warn(at+"."+m, "path key with %s; %s %s is defined already, so this operation is not served", what, strings.ToUpper(m), base)
			default:
				dst[m] = src[m]
				p.warn(at+"."+m, "path key with %s; served as %s %s (routes match the path, not %s)", what, strings.ToUpper(m), base, what)
			}
		}
	}
}

// pathOf is the path a path key is served at, and what was taken off it ("" when nothing).
func pathOf(k string) (string, string) {
	if strings.HasPrefix(k, "x-") {
		return k, ""
	}
	base, what := k, ""
	if i := strings.IndexAny(k, "#?"); i >= 0 {
		base, what = k[:i], "a fragment"
		if k[i] == '?' {
			what = "a query"
		}
	}
	if strings.Contains(base, "//") {
		for strings.Contains(base, "//") {
			base = strings.ReplaceAll(base, "//", "/")
		}
		if what == "" {
			what = "empty segments"
		}
		if len(base) > 1 {
			base = strings.TrimSuffix(base, "/")
		}
	}
	return base, what
}

// scan warns, once each, about what the gateway cannot honour but that changes neither
// routing nor security: a local $ref that points at nothing, and a schema pattern that
// Go's RE2 engine cannot compile (ECMA-262 backreferences and lookarounds).
func (p *parser) scan(v any, at string, s site) {
	switch x := v.(type) {
	case map[string]any:
		if s == siteData {
			return
		}
		if ref, ok := x["$ref"].(string); ok && strings.HasPrefix(ref, "#") {
			if _, ok := pointer(p.tree, fragment(ref)); !ok {
				p.warn(at, "$ref %q points at nothing in the document; read as empty (nothing the gateway enforces is there)", ref)
			}
			return
		}
		if pat, ok := x["pattern"].(string); ok && s == siteSchema {
			if _, err := regexp.Compile(pat); err != nil {
				p.warn(at+".pattern", "pattern %q is not supported by the RE2 engine Go uses (%s); it is valid ECMA-262, and nothing checks it", pat, reOp(err))
			}
		}
		for _, k := range sortedKeys(x) {
			p.scan(x[k], at+member(k), childSite(s, k))
		}
	case []any:
		for i, e := range x {
			p.scan(e, fmt.Sprintf("%s[%d]", at, i), elemSite(s))
		}
	}
}

// reOp is what a regexp error says about the expression, without the expression again.
func reOp(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": `"); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimPrefix(msg, "error parsing regexp: ")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fix is a repair made to a document while loading it, reported as a warning.
type fix struct{ path, reason string }

// fixSecurity rewrites security requirements the way WSO2's gateways read them: a
// requirement written as a string ("petstore_auth:[]", "petstore_auth") becomes
// {petstore_auth: []}, and scopes written as one string ({default: "admin"}) a list.
func fixSecurity(doc map[string]any) []fix {
	var fixes []fix
	fixList := func(at string, v any) {
		list, ok := v.([]any)
		if !ok {
			return
		}
		for i, r := range list {
			here := fmt.Sprintf("%s.security[%d]", at, i)
			switch req := r.(type) {
			case string:
				name, scopes := parseLooseRequirement(req)
				list[i] = map[string]any{name: scopes}
				fixes = append(fixes, fix{here, fmt.Sprintf("requirement written as the string %q; read as {%s: %v}, as WSO2 does", req, name, scopes)})
			case map[string]any:
				for _, name := range sortedKeys(req) {
					switch v := req[name].(type) {
					case string:
						req[name] = []any{v}
						fixes = append(fixes, fix{here + "." + name, fmt.Sprintf("scopes written as the string %q; read as [%s], as WSO2 does", v, v)})
					case nil:
						req[name] = []any{}
					}
				}
			}
		}
	}
	fixList("$", doc["security"])
	paths, _ := doc["paths"].(map[string]any)
	for _, path := range sortedKeys(paths) {
		ops, _ := paths[path].(map[string]any)
		for _, method := range sortedKeys(ops) {
			if o, ok := ops[method].(map[string]any); ok && isMethod(method) {
				fixList(apimodel.OpPath(path, method), o["security"])
			}
		}
	}
	return fixes
}

// parseLooseRequirement reads "name", "name:[]" or "name:[a, b]".
func parseLooseRequirement(s string) (string, []any) {
	name, rest, _ := strings.Cut(s, ":")
	scopes := []any{}
	rest = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(rest), "["), "]"))
	for _, sc := range strings.Split(rest, ",") {
		if sc = strings.Trim(strings.TrimSpace(sc), `"'`); sc != "" {
			scopes = append(scopes, sc)
		}
	}
	return strings.TrimSpace(name), scopes
}
