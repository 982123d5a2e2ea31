package extauthz

import (
	"path"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// route finds the API and operation: from the route's context extensions (the generated
// configuration), else by host, method and path. It refuses first what no operation could
// take: no HTTP attributes, state not loaded yet, bytes that are not UTF-8, two
// credentials. (An open operation goes on: peer settles it, and it is still throttled.)
func (e *Enforcer) route(d *decision) bool {
	h := d.h
	if h == nil {
		d.deny(&FaultNoAPI, "no HTTP attributes in the CheckRequest")
		return false
	}
	if e.cfg.Loaded != nil && !e.cfg.Loaded() {
		d.deny(&FaultNotReady, "APIs or revocations not loaded yet")
		return false
	}
	if hadInvalidUTF8(d.attrs) {
		d.deny(&FaultBadBytes, "bytes that are not UTF-8 in a string field")
		return false
	}
	if f, why := checkRawHeaders(h); f != nil {
		d.deny(f, why)
		return false
	}
	cat := e.apis.Load()
	ext := d.attrs.GetContextExtensions()
	if id := ext[apimodel.RouteKeyAPI]; id != "" {
		d.api, d.op = cat.Operation(id, ext[apimodel.RouteKeyOperation])
	} else {
		d.api, d.op = cat.Match(h.GetHost(), h.GetMethod(), requestPath(h))
	}
	if d.op == nil {
		switch {
		case d.api == nil:
			d.deny(&FaultNoAPI, "no API matches")
		case ext[apimodel.RouteKeyAPI] == "":
			if allow := cat.Methods(d.api, requestPath(h)); len(allow) > 0 {
				d.allow = allow
				d.deny(&FaultMethodNotAllowed, "the path takes "+strings.Join(allow, ", "))
				return false
			}
			fallthrough
		default:
			d.deny(&FaultNoResource, "no operation matches")
		}
		return false
	}
	if twoCredentials(h, d.api) {
		d.deny(&FaultTwoCredentials, "more than one credential in the authorization header")
		return false
	}
	if d.ctx.Err() != nil {
		d.deny(&FaultInternal, "request cancelled")
		return false
	}
	return true
}

// header reads a request header. Envoy sends header names in lower case; a header given
// in another case (e.g. from a hand-made CheckRequest) is found too.
func header(h *authv3.AttributeContext_HttpRequest, name string) (string, bool) {
	hs := h.GetHeaders()
	if v, ok := hs[name]; ok {
		return v, true
	}
	if v, ok := hs[lower(name)]; ok {
		return v, true
	}
	for k, v := range hs {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if strings.EqualFold(hv.GetKey(), name) {
			return rawValue(hv), true
		}
	}
	return "", false
}

// headerValues is a header's value and how many times the request has it.
func headerValues(h *authv3.AttributeContext_HttpRequest, name string) (string, int) {
	if hm := h.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		var first string
		n := 0
		for _, hv := range hm {
			if strings.EqualFold(hv.GetKey(), name) {
				if n == 0 {
					first = rawValue(hv)
				}
				n++
			}
		}
		return first, n
	}
	v, ok := header(h, name)
	if !ok {
		return "", 0
	}
	return v, 1
}

// lower is strings.ToLower without an allocation for the common already-lower names.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// requestPath is the request's path without the query string, normalized the way the
// generated Envoy configuration normalizes it before routing (normalize_path: dot segments
// removed; merge_slashes; %2F and %5C unescaped), so that matching by path — for an Envoy
// configured by hand — decides the resource Envoy would route to.
func requestPath(h *authv3.AttributeContext_HttpRequest) string {
	p := h.GetPath()
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return normalizePath(p)
}

func normalizePath(p string) string {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") && !strings.Contains(p, "%") && !strings.Contains(p, "\\") {
		return p // the common case: nothing to do, no allocation
	}
	for _, esc := range []string{"%2F", "%2f", "%5C", "%5c"} {
		p = strings.ReplaceAll(p, esc, "/")
	}
	p = strings.ReplaceAll(p, "\\", "/")
	trailing := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
	p = path.Clean("/" + p) // dot segments and repeated slashes; never above the root
	if trailing && p != "/" {
		p += "/"
	}
	return p
}
