package openapi

import (
	"encoding/json"
	"strings"
)

// gatewayView is the part of a (normalized) document the gateway reads: the document's
// identity, servers, security and extensions, and for each path and operation its
// servers, security, operationId and extensions. Schemas, parameters, bodies, responses
// and examples — most of a large description's bytes — are left out: they change neither
// routing nor security, a defect in them cannot refuse an API, and nothing is spent on
// them. The JSON paths of what is kept are those of the document.
func gatewayView(tree map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range tree {
		switch {
		case k == "openapi", k == "swagger", k == "servers", k == "security",
			k == "host", k == "basePath", k == "schemes", k == "securityDefinitions", strings.HasPrefix(k, "x-"):
			out[k] = v
		case k == "info":
			info := map[string]any{}
			for _, f := range []string{"title", "version"} {
				switch s := obj(v)[f].(type) {
				case json.Number: // version: 1.0, unquoted: read as written
					info[f] = s.String()
				case nil:
				default:
					info[f] = s
				}
			}
			out[k] = info
		case k == "components":
			if s, ok := obj(v)["securitySchemes"]; ok {
				out[k] = map[string]any{"securitySchemes": s}
			}
		}
	}
	paths := map[string]any{}
	for key, item := range obj(tree["paths"]) {
		if strings.HasPrefix(key, "x-") {
			paths[key] = item
			continue
		}
		paths[key] = pathView(obj(item), swagger2(tree))
	}
	out["paths"] = paths
	forServers(out, stringDefaults)
	return out
}

// pathView is the gateway's view of a path item: its servers and extensions, and each
// operation's operationId, security, servers (schemes) and extensions.
func pathView(item map[string]any, swagger bool) map[string]any {
	it := map[string]any{}
	for k, v := range item {
		switch {
		case k == "servers" || strings.HasPrefix(k, "x-"):
			it[k] = v
		case isMethod(k):
			op := map[string]any{}
			for f, fv := range obj(v) {
				if f == "operationId" || f == "security" || f == "servers" || f == "schemes" || strings.HasPrefix(f, "x-") {
					op[f] = fv
				}
			}
			if swagger {
				op["responses"] = map[string]any{"default": map[string]any{"description": ""}}
			}
			it[k] = op
		}
	}
	return it
}

// forServers calls f with every servers list of a view: the document's, each path's and
// each operation's.
func forServers(view map[string]any, f func(any)) {
	f(view["servers"])
	for _, item := range obj(view["paths"]) {
		f(obj(item)["servers"])
		for k, op := range obj(item) {
			if isMethod(k) {
				f(obj(op)["servers"])
			}
		}
	}
}

// stringDefaults writes a server variable's numeric default (port: {default: 8443}, as
// YAML writers put it) as the string OpenAPI says it is.
func stringDefaults(servers any) {
	for _, s := range list(servers) {
		for _, v := range obj(obj(s)["variables"]) {
			if n, ok := obj(v)["default"].(json.Number); ok {
				obj(v)["default"] = n.String()
			}
		}
	}
}
