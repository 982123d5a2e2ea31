package apimodel

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Template is a compiled OpenAPI path template such as "/pets/{petId}",
// "/files/{name}.json" or "/compare/{base}...{head}": literal segments, and segments holding
// parameters between literal text.
type Template struct {
	segs []segment
	// wild: the template ends in "/*" (WSO2's wildcard resource), matching any rest of
	// the path, none included.
	wild bool
}

type segment struct {
	literal string   // the whole segment, when it has no parameter
	params  []string // the parameters, in order
	lits    []string // the literal text around them: len(params)+1 pieces, any empty
}

// ParseTemplate compiles a path template, refusing what the gateway cannot route on.
func ParseTemplate(path string) (Template, error) {
	if path == "" || path[0] != '/' {
		return Template{}, fmt.Errorf("path template %q must start with '/'", path)
	}
	if strings.ContainsAny(path, "?#") {
		return Template{}, fmt.Errorf("path template %q must not hold a query or fragment", path)
	}
	var t Template
	names := map[string]bool{}
	parts := strings.Split(path[1:], "/")
	if parts[len(parts)-1] == "*" {
		t.wild = true
		parts = parts[:len(parts)-1]
		if len(parts) == 1 && parts[0] == "" {
			parts = nil // "/*": every path
		}
	}
	for i, p := range parts {
		if strings.Contains(p, "*") {
			return Template{}, fmt.Errorf("path template %q: '*' may only be the whole last segment (\"/*\": any rest of the path)", path)
		}
		if p == "" && i != len(parts)-1 {
			return Template{}, fmt.Errorf("path template %q has an empty segment", path)
		}
		if !strings.ContainsAny(p, "{}") {
			t.segs = append(t.segs, segment{literal: p})
			continue
		}
		seg, err := parseSegment(p)
		if err != nil {
			return Template{}, fmt.Errorf("path template %q: segment %q %v", path, p, err)
		}
		for _, name := range seg.params {
			if names[name] {
				return Template{}, fmt.Errorf("path template %q: parameter %q appears twice", path, name)
			}
			names[name] = true
		}
		t.segs = append(t.segs, seg)
	}
	return t, nil
}

// parseSegment reads a segment holding parameters: "{id}", "{name}.json",
// "{base}...{head}".
func parseSegment(p string) (segment, error) {
	var seg segment
	rest := p
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return segment{}, errors.New("must hold well-formed {parameters}")
			}
			seg.lits = append(seg.lits, rest)
			return seg, nil
		}
		close := strings.IndexByte(rest, '}')
		if close < open || strings.IndexByte(rest[:open], '}') >= 0 {
			return segment{}, errors.New("must hold well-formed {parameters}")
		}
		name := rest[open+1 : close]
		if name == "" || strings.ContainsAny(name, " /*{") {
			return segment{}, fmt.Errorf("has a parameter name %q that is empty or invalid", name)
		}
		seg.lits = append(seg.lits, rest[:open])
		seg.params = append(seg.params, name)
		rest = rest[close+1:]
	}
}

// match reports whether one path segment matches: the literal text in order, each
// parameter at least one character. Taking each literal's first occurrence leaves the most
// room for what follows, so it finds a match whenever there is one.
func (s segment) match(seg string) bool {
	if !strings.HasPrefix(seg, s.lits[0]) {
		return false
	}
	rest := seg[len(s.lits[0]):]
	last := len(s.lits) - 1
	for i := 1; i < last; i++ {
		if len(rest) < 1 {
			return false
		}
		j := strings.Index(rest[1:], s.lits[i])
		if j < 0 {
			return false
		}
		rest = rest[1+j+len(s.lits[i]):]
	}
	return len(rest) > len(s.lits[last]) && strings.HasSuffix(rest, s.lits[last])
}

// Shape is the template with parameter names erased: two templates of the same shape match
// the same requests.
func (t Template) Shape() string {
	var b strings.Builder
	for _, s := range t.segs {
		b.WriteByte('/')
		if s.params == nil {
			b.WriteString(s.literal)
		} else {
			b.WriteString(strings.Join(s.lits, "{}"))
		}
	}
	if t.wild {
		b.WriteString("/*")
	}
	return b.String()
}

// Specificity orders overlapping templates: more literal segments first, and of two with
// as many, the one that is not a wildcard.
func (t Template) Specificity() int {
	n := 2 * t.Literals()
	if !t.wild {
		n++
	}
	return n
}

// Literals counts literal segments; a match with more literals is more specific.
func (t Template) Literals() int {
	n := 0
	for _, s := range t.segs {
		if s.params == nil {
			n++
		}
	}
	return n
}

// Match reports whether a request path (relative to the base path, without the query)
// matches the template. It does not allocate.
func (t Template) Match(path string) bool {
	if path == "" {
		path = "/"
	}
	if path[0] != '/' {
		return false
	}
	rest := path[1:]
	ended := false
	for _, s := range t.segs {
		if ended {
			return false // the path ended before the template
		}
		var seg string
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
		} else {
			seg, rest, ended = rest, "", true
		}
		if s.params == nil {
			if seg != s.literal {
				return false
			}
			continue
		}
		if !s.match(seg) {
			return false
		}
	}
	return rest == "" || t.wild
}

// CheckURL accepts an absolute http or https URL with a host.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("endpoint %q is not a URL: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("endpoint %q must be an http or https URL", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("endpoint %q has no host", raw)
	}
	return nil
}

// Params calls f with each path parameter's value (as sent, percent-encoding included) of
// a path the template matches; path is relative to the base path, without the query.
func (t Template) Params(path string, f func(name, value string)) {
	rest := strings.TrimPrefix(path, "/")
	for _, s := range t.segs {
		seg := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
		} else {
			rest = ""
		}
		if s.params != nil {
			s.values(seg, f)
		}
	}
}

// values splits a matching segment into its parameters' values the way match reads it:
// each literal at its first occurrence after at least one character.
func (s segment) values(seg string, f func(name, value string)) {
	rest := seg[min(len(s.lits[0]), len(seg)):]
	last := len(s.lits) - 1
	for i, name := range s.params {
		if i+1 == last {
			f(name, rest[:max(0, len(rest)-len(s.lits[last]))])
			return
		}
		j := -1
		if len(rest) > 0 {
			j = strings.Index(rest[1:], s.lits[i+1])
		}
		if j < 0 {
			return
		}
		f(name, rest[:1+j])
		rest = rest[1+j+len(s.lits[i+1]):]
	}
}

// RelativePath is a request path (without the query) relative to the API's base path.
func (a *API) RelativePath(path string) (string, bool) { return trimBase(path, a.BasePath) }
