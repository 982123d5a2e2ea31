package openapi

import (
	"fmt"
	"strings"
)

// checkShape refuses, with its JSON path, a member of the gateway's view whose type is
// not the one OpenAPI gives it (a server written as a string, scopes as a number): the
// library's own message would name neither the place nor the fix.
func (p *parser) checkShape(view map[string]any) {
	p.str("$.info.title", lookup(view, []string{"info", "title"}))
	p.str("$.info.version", lookup(view, []string{"info", "version"}))
	p.servers("$.servers", view["servers"])
	p.security("$.security", view["security"])
	for _, k := range []string{"host", "basePath"} {
		p.str("$."+k, view[k])
	}
	if v, ok := view["schemes"]; ok {
		p.list("$.schemes", v, "a list of schemes", func(at string, e any) { p.str(at, e) })
	}
	schemes, at := lookup(view, []string{"components", "securitySchemes"}), "$.components.securitySchemes"
	if swagger2(view) {
		schemes, at = view["securityDefinitions"], "$.securityDefinitions"
	}
	p.object(at, schemes, "an object of security schemes by name", func(at, _ string, s any) {
		p.object(at, s, "a security scheme object", func(at, k string, v any) {
			if k == "type" || k == "scheme" || k == "in" || k == "name" {
				p.str(at, v)
			}
		})
	})
	p.object("$.paths", view["paths"], "an object of path items", func(at, _ string, item any) {
		p.object(at, item, "a path item object", func(at, k string, v any) {
			if k == "servers" {
				p.servers(at, v)
				return
			}
			p.object(at, v, "an operation object", func(at, k string, v any) {
				switch k {
				case "operationId":
					p.str(at, v)
				case "security":
					p.security(at, v)
				case "servers":
					p.servers(at, v)
				}
			})
		})
	})
}

func (p *parser) str(at string, v any) {
	if _, ok := v.(string); !ok && v != nil {
		p.fail(at, "must be a string, not %s", kind(v))
	}
}

// object calls each for every member of v but its extensions, with the member's JSON path
// and key; v is an object (nil is allowed: absent).
func (p *parser) object(at string, v any, what string, each func(at, key string, v any)) {
	if v == nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.fail(at, "must be %s, not %s", what, kind(v))
		return
	}
	for _, k := range sortedKeys(m) {
		if !strings.HasPrefix(k, "x-") {
			each(at+member(k), k, m[k])
		}
	}
}

func (p *parser) list(at string, v any, what string, each func(at string, v any)) {
	if v == nil {
		return
	}
	l, ok := v.([]any)
	if !ok {
		p.fail(at, "must be %s, not %s", what, kind(v))
		return
	}
	for i, e := range l {
		each(fmt.Sprintf("%s[%d]", at, i), e)
	}
}

func (p *parser) servers(at string, v any) {
	p.list(at, v, `a list of servers ([{url: "https://..."}])`, func(at string, s any) {
		m, ok := s.(map[string]any)
		if !ok {
			p.fail(at, `must be a server object ({url: "https://..."}), not %s`, kind(s))
			return
		}
		if m["url"] == nil {
			p.fail(at, "a server needs a url")
		}
		p.str(at+".url", m["url"])
		p.str(at+".description", m["description"])
		p.object(at+".variables", m["variables"], "an object of server variables", func(at, _ string, v any) {
			if vm, ok := v.(map[string]any); ok {
				p.str(at+".default", vm["default"])
				return
			}
			p.fail(at, "must be a server variable object ({default: ...}), not %s", kind(v))
		})
	})
}

func (p *parser) security(at string, v any) {
	p.list(at, v, "a list of security requirements ([{scheme: [scopes]}])", func(at string, r any) {
		p.object(at, r, "a security requirement object ({scheme: [scopes]})", func(at, _ string, scopes any) {
			p.list(at, scopes, "a list of scopes", func(at string, s any) { p.str(at, s) })
		})
	})
}
