package openapi

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
)

// Each Tollgate extension "x-tollgate-<name>" and the WSO2 API Microgateway extension it
// stands for. Definitions written for WSO2 import unchanged.
var wso2Alias = map[string]string{
	"basePath":             "x-wso2-basePath",
	"production-endpoints": "x-wso2-production-endpoints",
	"sandbox-endpoints":    "x-wso2-sandbox-endpoints",
	"throttling":           "x-wso2-throttling-tier",
	"disable-security":     "x-wso2-disable-security",
	"auth-header":          "x-wso2-auth-header",
	"endpoints":            "x-wso2-endpoints",
	"mutual-tls":           "x-wso2-mutual-ssl",
	"cors":                 "x-wso2-cors",
}

var (
	apiExtensions       = []string{"name", "basePath", "hosts", "gateways", "grpc", "mutual-tls", "certificate-bound", "dpop", "cors", "production-endpoints", "sandbox-endpoints", "throttling", "disable-security", "auth-header", "endpoints", "scopes", "validation", "faults"}
	operationExtensions = []string{"production-endpoints", "sandbox-endpoints", "throttling", "disable-security", "scopes", "validation"}
)

const prefix = "x-tollgate-"

// extensions reads the vendor extensions of one object (the document or an operation).
type extensions struct {
	p    *parser
	path string
	m    map[string]any
}

// checkKnown refuses x-tollgate-* keys Tollgate does not know (a typo would silently do
// nothing) and x-tollgate-* keys that have no meaning at this level.
func (e extensions) checkKnown(allowed []string) {
	keys := make([]string, 0, len(e.m))
	for k := range e.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		name := strings.TrimPrefix(k, prefix)
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			e.p.fail(e.path+"."+k, "unknown extension here (known: %s)", strings.Join(prefixed(allowed), ", "))
		}
	}
}

func prefixed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// Further WSO2 spellings, found in definitions exported from WSO2 API Manager.
var wso2Alias2 = map[string]string{
	"throttling": "x-throttling-tier",
}

// get returns the value of x-tollgate-<name>, or of its WSO2 alias, and the key it was under.
func (e extensions) get(name string) (any, string, bool) {
	key := prefix + name
	v, ok := e.m[key]
	alias := wso2Alias[name]
	if _, has := e.m[alias]; !has {
		if a2, has2 := e.m[wso2Alias2[name]]; has2 && wso2Alias2[name] != "" && !ok {
			return a2, wso2Alias2[name], true
		}
	}
	if av, aok := e.m[alias]; aok && alias != "" {
		if ok {
			e.p.warn(e.path+"."+alias, "ignored: %s is set too and takes precedence", key)
		} else {
			return av, alias, true
		}
	}
	return v, key, ok
}

func (e extensions) str(name string) (string, bool) {
	v, key, ok := e.get(name)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		e.p.fail(e.path+"."+key, "must be a string, got %s", kind(v))
		return "", false
	}
	return s, true
}

func (e extensions) strings(name string) []string {
	v, key, ok := e.get(name)
	if !ok {
		return nil
	}
	list, isList := v.([]any)
	if !isList {
		e.p.fail(e.path+"."+key, "must be a list of strings, got %s", kind(v))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		s, isStr := item.(string)
		if !isStr {
			e.p.fail(fmt.Sprintf("%s.%s[%d]", e.path, key, i), "must be a string, got %s", kind(item))
			continue
		}
		out = append(out, s)
	}
	return out
}

// cors reads a CORS policy: Tollgate's keys (allowOrigins, allowMethods, allowHeaders,
// exposeHeaders, allowCredentials, maxAge) or WSO2's (corsConfigurationEnabled,
// accessControlAllowOrigins, ...).
func (e extensions) cors() *apimodel.CORS {
	m, at, ok := e.object("cors", "")
	if !ok {
		return nil
	}
	c := &apimodel.CORS{}
	list := func(names ...string) []string {
		for _, n := range names {
			if raw, ok := m[n]; ok {
				items, isList := raw.([]any)
				if !isList {
					e.p.fail(at+"."+n, "must be a list of strings, got %s", kind(raw))
					return nil
				}
				var out []string
				for _, it := range items {
					if s, ok := it.(string); ok {
						out = append(out, s)
					}
				}
				return out
			}
		}
		return nil
	}
	known := map[string]bool{"allowOrigins": true, "allowMethods": true, "allowHeaders": true, "exposeHeaders": true, "allowCredentials": true, "maxAge": true, "enabled": true,
		"corsConfigurationEnabled": true, "accessControlAllowOrigins": true, "accessControlAllowMethods": true, "accessControlAllowHeaders": true,
		"accessControlExposeHeaders": true, "accessControlAllowCredentials": true}
	for k := range m {
		if !known[k] {
			e.p.fail(at+"."+k, "unknown CORS field")
		}
	}
	for _, n := range []string{"enabled", "corsConfigurationEnabled"} {
		if on, ok := m[n].(bool); ok && !on {
			return nil
		}
	}
	c.AllowOrigins = list("allowOrigins", "accessControlAllowOrigins")
	c.AllowMethods = list("allowMethods", "accessControlAllowMethods")
	c.AllowHeaders = list("allowHeaders", "accessControlAllowHeaders")
	c.ExposeHeaders = list("exposeHeaders", "accessControlExposeHeaders")
	for _, n := range []string{"allowCredentials", "accessControlAllowCredentials"} {
		if b, ok := m[n].(bool); ok {
			c.AllowCredentials = b
		}
	}
	if s, ok := m["maxAge"].(string); ok {
		c.MaxAge = e.duration(at+".maxAge", s)
	}
	if len(c.AllowOrigins) == 0 {
		e.p.fail(at, "a CORS policy needs allowOrigins (\"*\" for any)")
		return nil
	}
	return c
}

// object reads an extension whose value is an object, and the JSON path it is at; one of
// another kind is a problem ("must be an object<like>"). ok is false when it is absent or
// not an object.
func (e extensions) object(name, like string) (map[string]any, string, bool) {
	v, key, ok := e.get(name)
	if !ok {
		return nil, "", false
	}
	at := e.path + "." + key
	m, isMap := v.(map[string]any)
	if !isMap {
		e.p.fail(at, "must be an object%s, got %s", like, kind(v))
		return nil, at, false
	}
	return m, at, true
}

func (e extensions) boolean(name string) (bool, bool) {
	v, key, ok := e.get(name)
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	if !isBool {
		e.p.fail(e.path+"."+key, "must be true or false, got %s", kind(v))
		return false, false
	}
	return b, true
}

// endpoints reads an endpoint extension in any of the shapes WSO2 and Tollgate accept:
//
//	{urls: [URL, ...], type: load_balance|failover}
//	[URL, ...]
//	URL
//	"#/x-wso2-endpoints/NAME"   (a named set from the document's endpoints list)
//
// where a URL may also be "etcd(KEY, DEFAULT_URL)" or {discovery: KEY, default: URL}.
func (e extensions) endpoints(name string) apimodel.Endpoints {
	v, key, ok := e.get(name)
	if !ok {
		return apimodel.Endpoints{}
	}
	return e.endpointValue(e.path+"."+key, v, true)
}

func (e extensions) endpointValue(at string, v any, allowRef bool) apimodel.Endpoints {
	var out apimodel.Endpoints
	before := len(e.p.problems)
	switch t := v.(type) {
	case string:
		if strings.HasPrefix(t, "#/") && allowRef {
			return e.endpointRef(at, t)
		}
		if ep, ok := e.endpoint(at, t); ok {
			out.URLs = append(out.URLs, ep)
		}
	case []any:
		out.URLs = e.endpointList(at, t)
	case map[string]any:
		out.Policy = e.policy(at, t)
		if typ, ok := t["type"]; ok {
			s, isStr := typ.(string)
			switch strings.ToLower(s) {
			case "", "load_balance", "loadbalance", "http", "https":
				out.Type = apimodel.LoadBalance // WSO2 writes loadbalance (and older tools http)
			case "failover":
				out.Type = apimodel.Failover
			default:
				if !isStr {
					e.p.fail(at+".type", "must be a string, got %s", kind(typ))
				} else {
					e.p.fail(at+".type", "endpoint type %q must be load_balance (loadbalance) or failover", s)
				}
			}
		}
		urls, ok := t["urls"].([]any)
		if !ok {
			e.p.fail(at+".urls", "must be a list of endpoint URLs, got %s", kind(t["urls"]))
			return out
		}
		out.URLs = e.endpointList(at+".urls", urls)
	default:
		e.p.fail(at, "must be an endpoint object {urls: [...]}, a list of URLs or a URL, got %s", kind(v))
	}
	if len(out.URLs) == 0 && len(e.p.problems) == before {
		e.p.fail(at, "no endpoint URL given")
	}
	return out
}

func (e extensions) endpointList(at string, list []any) []apimodel.Endpoint {
	var out []apimodel.Endpoint
	for i, item := range list {
		here := fmt.Sprintf("%s[%d]", at, i)
		switch t := item.(type) {
		case string:
			if ep, ok := e.endpoint(here, t); ok {
				out = append(out, ep)
			}
		case map[string]any:
			key, _ := t["discovery"].(string)
			def, _ := t["default"].(string)
			if key == "" || len(t) > 2 {
				e.p.fail(here, "an endpoint object must be {discovery: KEY, default: URL}")
				continue
			}
			out = append(out, apimodel.Endpoint{Discovery: key, URL: def})
		default:
			e.p.fail(here, "must be a URL or {discovery: KEY, default: URL}, got %s", kind(item))
		}
	}
	return out
}

var etcdCall = regexp.MustCompile(`^etcd\(\s*([^,\s)]+)\s*,\s*([^\s)]+)\s*\)$`)

func (e extensions) endpoint(at, s string) (apimodel.Endpoint, bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "etcd(") {
		m := etcdCall.FindStringSubmatch(s)
		if m == nil {
			e.p.fail(at, "%q: want etcd(KEY, DEFAULT_URL)", s)
			return apimodel.Endpoint{}, false
		}
		return apimodel.Endpoint{Discovery: m[1], URL: m[2]}, true
	}
	if strings.HasPrefix(s, apimodel.KubeScheme) {
		k, err := apimodel.ParseKubeKey(s)
		if err != nil {
			e.p.fail(at, "%v", err)
			return apimodel.Endpoint{}, false
		}
		return apimodel.Endpoint{Discovery: k.String(), URL: k.URL()}, true
	}
	return apimodel.Endpoint{URL: s}, true
}

// endpointRef resolves "#/x-wso2-endpoints/NAME" (or "#/x-tollgate-endpoints/NAME") against
// the document's list of named endpoint sets: [{NAME: {urls: [...]}}, ...].
func (e extensions) endpointRef(at, ref string) apimodel.Endpoints {
	parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
	if len(parts) != 2 || (parts[0] != prefix+"endpoints" && parts[0] != wso2Alias["endpoints"]) {
		e.p.fail(at, "%q: want #/x-tollgate-endpoints/NAME or #/x-wso2-endpoints/NAME", ref)
		return apimodel.Endpoints{}
	}
	list, ok := e.p.doc.Extensions[parts[0]].([]any)
	if !ok {
		e.p.fail(at, "%q: the document has no %s list", ref, parts[0])
		return apimodel.Endpoints{}
	}
	for i, item := range list {
		if m, ok := item.(map[string]any); ok {
			if v, ok := m[parts[1]]; ok {
				return e.endpointValue(fmt.Sprintf("$.%s[%d].%s", parts[0], i, parts[1]), v, false)
			}
		}
	}
	e.p.fail(at, "%q: no endpoint named %q in %s", ref, parts[1], parts[0])
	return apimodel.Endpoints{}
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64, int, int64, json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// faults reads x-tollgate-faults: the API's own error format, {template: TEXT,
// contentType: TYPE} or {format: wso2|problem}.
func (e extensions) faults() *errfmt.Template {
	m, at, ok := e.object("faults", " like {format: problem} or {template: ..., contentType: ...}")
	if !ok {
		return nil
	}
	for k := range m {
		if k != "format" && k != "template" && k != "contentType" {
			e.p.fail(at+"."+k, "unknown field (known: format, template, contentType)")
			return nil
		}
	}
	format, _ := m["format"].(string)
	text, _ := m["template"].(string)
	ctype, _ := m["contentType"].(string)
	switch {
	case format != "" && text != "":
		e.p.fail(at, "format and template: give one")
	case format != "":
		if t := errfmt.Builtin(format); t != nil {
			return t
		}
		e.p.fail(at+".format", "%q must be wso2 or problem", format)
	default:
		t, err := errfmt.Parse(text, ctype)
		if err != nil {
			e.p.fail(at+".template", "%v", err)
			return nil
		}
		return t
	}
	return nil
}
