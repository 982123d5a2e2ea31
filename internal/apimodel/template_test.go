package apimodel

import (
	"strings"
	"testing"
)

func TestTemplateMatch(t *testing.T) {
	cases := []struct {
		tmpl, path string
		want       bool
	}{
		{"/menu", "/menu", true},
		{"/menu", "/menu/", true},
		{"/menu", "/menus", false},
		{"/menu", "/menu/x", false},
		{"/order/{id}", "/order/42", true},
		{"/order/{id}", "/order/", false},
		{"/order/{id}", "/order", false},
		{"/order/{id}", "/order/42/items", false},
		{"/files/{name}.json", "/files/a.json", true},
		{"/files/{name}.json", "/files/.json", false},
		{"/files/{name}.json", "/files/a.xml", false},
		{"/compare/{base}...{head}", "/compare/main...topic", true},
		{"/compare/{base}...{head}", "/compare/a...b...c", true},
		{"/compare/{base}...{head}", "/compare/...topic", false},
		{"/compare/{base}...{head}", "/compare/main...", false},
		{"/compare/{base}...{head}", "/compare/main..topic", false},
		{"/v{major}.{minor}/x", "/v1.2/x", true},
		{"/v{major}.{minor}/x", "/v1/x", false},
		{"/a/{x}{y}", "/a/xy", true},
		{"/a/{x}{y}", "/a/x", false},
		{"/", "/", true},
		{"/", "/a", false},
	}
	for _, c := range cases {
		tm, err := ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if got := tm.Match(c.path); got != c.want {
			t.Errorf("%s matches %s = %v, want %v", c.tmpl, c.path, got, c.want)
		}
	}
}

func TestTemplateRejects(t *testing.T) {
	for _, bad := range []string{"menu", "/a//b", "/a/{", "/a/}", "/a/{}", "/a/{x}}", "/a/}{x}", "/a/{x{y}}", "/a/{x}/{x}", "/a/{x}.{x}", "/a?b"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCatalogMatchPrefersLiteralsAndLongestBase(t *testing.T) {
	mk := func(name, base string, paths ...string) *API {
		a := &API{Name: name, Version: "v1", BasePath: base, Production: Endpoints{URLs: []Endpoint{{URL: "http://b"}}}}
		for _, p := range paths {
			a.Operations = append(a.Operations, Operation{Method: "GET", Path: p})
		}
		if ps := a.Validate(); len(ps) > 0 {
			t.Fatal(ps)
		}
		return a
	}
	c := NewCatalog([]*API{mk("a", "/shop", "/{id}", "/special"), mk("b", "/shop/v2", "/x")})
	if a, op := c.Match("", "GET", "/shop/special"); a.Name != "a" || op.Path != "/special" {
		t.Errorf("got %v %v", a.Name, op)
	}
	if a, op := c.Match("", "GET", "/shop/v2/x"); a.Name != "b" || op.Path != "/x" {
		t.Errorf("longest base path: got %v %v", a.Name, op)
	}
	if a, op := c.Match("", "POST", "/shop/special"); a == nil || op != nil {
		t.Errorf("wrong method: want API without operation, got %v %v", a, op)
	}
	if a, _ := c.Match("", "GET", "/shopping"); a != nil {
		t.Errorf("/shopping must not match base /shop")
	}
}

func TestCatalogMatchHosts(t *testing.T) {
	a := &API{Name: "a", Version: "v1", BasePath: "/x", Hosts: []string{"api.example.com"}, Production: Endpoints{URLs: []Endpoint{{URL: "http://b"}}},
		Operations: []Operation{{Method: "GET", Path: "/y"}}}
	if ps := a.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	c := NewCatalog([]*API{a})
	for host, want := range map[string]bool{"api.example.com": true, "API.example.com:8443": true, "other.example.com": false, "": false} {
		if _, op := c.Match(host, "GET", "/x/y"); (op != nil) != want {
			t.Errorf("host %q: matched %v, want %v", host, op != nil, want)
		}
	}
}

func TestTemplateParams(t *testing.T) {
	for tmpl, c := range map[string]struct{ path, want string }{
		"/pets/{petId}":                   {"/pets/42", "petId=42"},
		"/files/{name}.json":              {"/files/a.b.json", "name=a.b"},
		"/compare/{base}...{head}":        {"/compare/v1...v2", "base=v1 head=v2"},
		"/a/{x}/b/{y}":                    {"/a/%20/b/y", "x=%20 y=y"},
		"/{org}/repos/{repo}/x{n}y{m}z/*": {"/o/repos/r/x1y22z/more/rest", "org=o repo=r n=1 m=22"},
	} {
		tp, err := ParseTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if !tp.Match(c.path) {
			t.Fatalf("%s does not match %s", tmpl, c.path)
		}
		var got []string
		tp.Params(c.path, func(n, v string) { got = append(got, n+"="+v) })
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s on %s: %v, want %s", tmpl, c.path, got, c.want)
		}
	}
}
