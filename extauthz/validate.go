package extauthz

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/jsonbody"
)

// The faults of request validation: MGW 3.x's 400 for a request its definition refuses,
// and the statuses HTTP has for a body of the wrong type or size.
var (
	FaultBadRequest       = Fault{400, 400, "Bad Request", "The request does not match the API's definition", ""}
	FaultUnsupportedMedia = Fault{415, 415, "Unsupported Media Type", "The request body's content type is not one the operation takes", ""}
	FaultTooLarge         = Fault{413, 413, "Payload Too Large", "The request body is larger than the operation takes", ""}
)

// violation is one way a request breaks its operation's definition: where (the body, with
// a JSON pointer into it, or a parameter by place and name) and why. It holds no value
// the client sent.
type violation struct {
	in     string // "body", "path", "query", "header", "cookie"
	name   string // the parameter's name, or the JSON pointer into the body
	reason string
}

func (v violation) String() string {
	switch {
	case v.in == "body" || v.in == "status":
		if v.name == "" {
			return v.in + ": " + v.reason
		}
		return v.in + " " + v.name + ": " + v.reason
	case v.name == "":
		return v.in + ": " + v.reason
	}
	return v.in + " parameter " + v.name + ": " + v.reason
}

// validate checks the request against its operation's rules: parameters, content type
// and body. It runs after throttling: a caller that is refused or throttled never costs a
// validation.
func (e *Enforcer) validate(d *decision) bool {
	if d.op == nil || d.op.Validation == nil || !d.op.Validation.Request {
		return true
	}
	v := d.op.Validation
	if len(v.Params) > 0 {
		d.params(v)
	}
	if v.Body != nil && d.fault == nil {
		d.body(v)
	}
	if len(d.violations) > 0 && d.fault == nil {
		d.deny(&FaultBadRequest, "the request does not match the definition: "+d.violations[0].String())
	}
	if d.fault != nil {
		e.m.invalid.Inc()
		return false
	}
	e.m.valid.Inc()
	return true
}

func (d *decision) violate(in, name, reason string) {
	d.violations = addViolation(d.violations, violation{in, name, reason})
}

// addViolation adds v unless vs holds jsonbody.MaxViolations already.
func addViolation(vs []violation, v violation) []violation {
	if len(vs) < jsonbody.MaxViolations {
		vs = append(vs, v)
	}
	return vs
}

// body checks the request body: its size, its content type against the declared ones, and
// a JSON body against its schema.
func (d *decision) body(v *apimodel.Validation) {
	h := d.h
	body := h.GetRawBody()
	if len(body) == 0 && h.GetBody() != "" {
		body = []byte(h.GetBody())
	}
	if partial, _ := header(h, "x-envoy-auth-partial-body"); partial == "true" || int64(len(body)) > v.MaxBody || h.GetSize() > v.MaxBody {
		d.deny(&FaultTooLarge, "body larger than "+strconv.FormatInt(v.MaxBody, 10)+" bytes")
		return
	}
	if len(body) == 0 {
		if v.Body.Required {
			d.violate("body", "", "a request body is required")
		}
		return
	}
	ct, _ := header(h, "content-type")
	m := v.Body.Find(ct)
	if m == nil {
		d.deny(&FaultUnsupportedMedia, "content type "+strconv.Quote(apimodel.MediaType(ct))+" is not declared")
		return
	}
	if m.Schema == nil {
		return
	}
	if m.Schema.Valid(body) {
		return
	}
	for _, vi := range m.Schema.Validate(body) {
		d.violate("body", vi.Pointer, vi.Reason)
	}
}

// params checks each declared parameter: present when required, and its text, read as
// the JSON value its style and schema say, valid against the schema.
func (d *decision) params(v *apimodel.Validation) {
	h := d.h
	raw := h.GetPath()
	query := ""
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		query = raw[i+1:]
	}
	for i := range v.Params {
		p := &v.Params[i]
		d.scratch = d.scratch[:0]
		found := false
		switch p.In {
		case apimodel.InQuery:
			found = d.queryParam(p, query)
		case apimodel.InHeader:
			if s, ok := header(h, p.Name); ok {
				found = true
				d.scratch = paramJSON(d.scratch, p, s, true)
			}
		case apimodel.InCookie:
			if s, ok := cookie(h, p.Name); ok {
				found = true
				d.scratch = paramJSON(d.scratch, p, s, false)
			}
		case apimodel.InPath:
			found = d.pathParam(p)
		}
		if !found {
			if p.Required {
				d.violate(string(p.In), p.Name, "required, and missing")
			}
			continue
		}
		if p.Schema.Valid(d.scratch) {
			continue
		}
		for _, vi := range p.Schema.Validate(d.scratch) {
			reason := vi.Reason
			if vi.Pointer != "" && vi.Pointer != "/" {
				reason = "item " + strings.TrimPrefix(vi.Pointer, "/") + ": " + reason
			}
			d.violate(string(p.In), p.Name, reason)
		}
	}
}

// queryParam writes the parameter's value from the query string into d.scratch.
func (d *decision) queryParam(p *apimodel.Param, query string) bool {
	found := false
	if p.Array && p.Explode {
		d.scratch = append(d.scratch, '[')
	}
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		k, val, _ := strings.Cut(pair, "=")
		if k != p.Name {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			if uk, err := url.QueryUnescape(k); err != nil || uk != p.Name {
				continue
			}
		}
		if strings.ContainsAny(val, "%+") {
			if u, err := url.QueryUnescape(val); err == nil {
				val = u
			}
		}
		if p.Array && p.Explode {
			if found {
				d.scratch = append(d.scratch, ',')
			}
			d.scratch = scalarJSON(d.scratch, p.Types, val)
			found = true
			continue
		}
		if found {
			// A scalar sent twice: the first counts, as in most frameworks.
			continue
		}
		found = true
		d.scratch = paramJSON(d.scratch, p, val, false)
	}
	if p.Array && p.Explode {
		d.scratch = append(d.scratch, ']')
	}
	return found
}

// pathParam writes the path parameter's value into d.scratch.
func (d *decision) pathParam(p *apimodel.Param) bool {
	rel, ok := d.api.RelativePath(requestPath(d.h))
	if !ok {
		return false
	}
	found := false
	d.op.Template().Params(rel, func(name, val string) {
		if name != p.Name || found {
			return
		}
		if strings.IndexByte(val, '%') >= 0 {
			if u, err := url.PathUnescape(val); err == nil {
				val = u
			}
		}
		found = true
		d.scratch = paramJSON(d.scratch, p, val, false)
	})
	return found
}

// cookie reads a cookie's value from the Cookie header (name=value pairs separated by ";").
func cookie(h *authv3.AttributeContext_HttpRequest, name string) (string, bool) {
	all, _ := header(h, "cookie")
	for all != "" {
		var c string
		c, all, _ = strings.Cut(all, ";")
		if k, v, ok := strings.Cut(strings.TrimSpace(c), "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// paramJSON appends a parameter's text as the JSON value its schema reads: an array of
// its items split at the style's separator, or one scalar. A header's list may have
// spaces after the commas.
func paramJSON(b []byte, p *apimodel.Param, s string, trim bool) []byte {
	if !p.Array {
		return scalarJSON(b, p.Types, s)
	}
	b = append(b, '[')
	for i := 0; s != "" || i == 0; i++ {
		item, rest, more := strings.Cut(s, string(p.Sep))
		if trim {
			item = strings.TrimSpace(item)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = scalarJSON(b, p.Types, item)
		if !more {
			break
		}
		s = rest
	}
	return append(b, ']')
}

// scalarJSON appends text as the scalar JSON value it stands for under the types the
// schema takes: a number or a boolean when it reads as one the schema takes, else a string
// (which the schema then refuses when it takes no string).
func scalarJSON(b []byte, t apimodel.ParamTypes, s string) []byte {
	switch {
	case t&(apimodel.ParamNumber|apimodel.ParamInteger) != 0 && jsonbody.IsNumber([]byte(s)):
		return append(b, s...)
	case t&apimodel.ParamBoolean != 0 && (s == "true" || s == "false"):
		return append(b, s...)
	case t&apimodel.ParamNull != 0 && s == "null":
		return append(b, s...)
	}
	return appendQuoted(b, s)
}

// appendQuoted appends s as a JSON string.
func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// problemError is one violation in an RFC 9457 body's errors list (the extension member
// RFC 9457 §3 shows): a JSON pointer into the body, or a parameter.
type problemError struct {
	In        string `json:"in"`
	Pointer   string `json:"pointer,omitempty"`
	Parameter string `json:"parameter,omitempty"`
	Detail    string `json:"detail"`
}

// violationBody renders a validation fault: in the wso2 format MGW 3.x's 400 with what is
// wrong as the description; as problem details, every violation in errors.
func violationBody(f Fault, format Format, vs []violation) ([]byte, string) {
	if format == FormatProblem {
		p := struct {
			problemBody
			Errors []problemError `json:"errors"`
		}{problemBody: problemFor(f)}
		for _, v := range vs {
			pe := problemError{In: v.in, Detail: v.reason}
			switch v.in {
			case "body":
				pe.Pointer = v.name
			case "path", "query", "header", "cookie":
				pe.Parameter = v.name
			case "status":
				pe.Detail = v.name + ": " + v.reason
			}
			p.Errors = append(p.Errors, pe)
		}
		b, _ := json.Marshal(p)
		return b, "application/problem+json"
	}
	f.Description = describe(vs)
	return f.body(format)
}

// describe is violations as one description.
func describe(vs []violation) string {
	texts := make([]string, len(vs))
	for i, v := range vs {
		texts[i] = v.String()
	}
	return strings.Join(texts, "; ")
}
