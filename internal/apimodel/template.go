package apimodel

import (
	"fmt"
	"net/url"
	"strings"
)

// Template is a compiled OpenAPI path template such as "/pets/{petId}" or
// "/files/{name}.json": literal segments, and segments holding one parameter with an
// optional literal prefix and suffix.
type Template struct {
	segs []segment
	// wild: the template ends in "/*" (WSO2's wildcard resource), matching any rest of
	// the path, none included.
	wild bool
}

type segment struct {
	literal string // whole segment when param == ""
	param   string
	prefix  string
	suffix  string
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
		open := strings.IndexByte(p, '{')
		close := strings.IndexByte(p, '}')
		if open < 0 && close < 0 {
			t.segs = append(t.segs, segment{literal: p})
			continue
		}
		if open < 0 || close < open || strings.Count(p, "{") != 1 || strings.Count(p, "}") != 1 {
			return Template{}, fmt.Errorf("path template %q: segment %q must hold exactly one well-formed {parameter}", path, p)
		}
		name := p[open+1 : close]
		if name == "" || strings.ContainsAny(name, " /*") {
			return Template{}, fmt.Errorf("path template %q: parameter name %q is empty or invalid", path, name)
		}
		if names[name] {
			return Template{}, fmt.Errorf("path template %q: parameter %q appears twice", path, name)
		}
		names[name] = true
		t.segs = append(t.segs, segment{param: name, prefix: p[:open], suffix: p[close+1:]})
	}
	return t, nil
}

// Shape is the template with parameter names erased: two templates of the same shape match
// the same requests.
func (t Template) Shape() string {
	var b strings.Builder
	for _, s := range t.segs {
		b.WriteByte('/')
		if s.param == "" {
			b.WriteString(s.literal)
		} else {
			b.WriteString(s.prefix + "{}" + s.suffix)
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
		if s.param == "" {
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
		if s.param == "" {
			if seg != s.literal {
				return false
			}
			continue
		}
		if len(seg) <= len(s.prefix)+len(s.suffix) || !strings.HasPrefix(seg, s.prefix) || !strings.HasSuffix(seg, s.suffix) {
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
