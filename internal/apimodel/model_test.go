package apimodel

import (
	"strings"
	"testing"
)

func api(edit func(*API)) *API {
	a := &API{Name: "shop", Version: "v1", BasePath: "/shop",
		Production: Endpoints{URLs: []Endpoint{{URL: "http://127.0.0.1:8081"}}},
		Operations: []Operation{{Method: "GET", Path: "/items"}}}
	if edit != nil {
		edit(a)
	}
	return a
}

// Validate names the JSON path of each problem: the modes (endpoint type, the API's mutual
// TLS), names, base path, endpoint sets that cannot be served, unknown schemes.
func TestValidateNamesWhereAndWhy(t *testing.T) {
	if ps := api(nil).Validate(); len(ps) != 0 {
		t.Fatalf("a valid API: %v", ps)
	}
	for name, c := range map[string]struct {
		edit       func(*API)
		path, want string
	}{
		"endpoint type": {func(a *API) { a.Production.Type = "random" }, "$.x-tollgate-production-endpoints.type", "load_balance or failover"},
		"mutual TLS":    {func(a *API) { a.MutualTLS = "sometimes" }, "$.x-tollgate-mutual-tls", "optional or required"},
		"name":          {func(a *API) { a.Name = "a b" }, "$.info.title", "API name"},
		"base path":     {func(a *API) { a.BasePath = "/shop/" }, "$.x-tollgate-basePath", "not end with '/'"},
		"names and keys in one set": {func(a *API) {
			a.Production.URLs = []Endpoint{{URL: "http://backend.internal:80"}, {URL: "http://127.0.0.1:1", Discovery: "shop"}}
		}, "$.x-tollgate-production-endpoints.urls", "cannot share a set"},
		"TLS on http": {func(a *API) { a.Production.Policy.TLS.CA = "ca" }, "$.x-tollgate-production-endpoints.urls", "plain http endpoint"},
		"unknown scheme": {func(a *API) {
			a.Operations[0].Security = []Requirement{{{Scheme: "oauth2"}}}
		}, "$.paths['/items'].get.security[0]", `unknown security scheme "oauth2"`},
	} {
		ps := api(c.edit).Validate()
		found := false
		for _, p := range ps {
			if p.Path == c.path && strings.Contains(p.Reason, c.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: problems %v, want %s: …%s…", name, ps, c.path, c.want)
		}
	}
	for _, m := range []MutualTLSMode{"", MutualTLSOptional, MutualTLSRequired} {
		if ps := api(func(a *API) { a.MutualTLS = m }).Validate(); len(ps) != 0 {
			t.Errorf("mutual TLS %q: %v", m, ps)
		}
	}
}

func TestKeyLocations(t *testing.T) {
	for l, want := range map[KeyLocation]bool{KeyInHeader: true, KeyInQuery: true, KeyInCookie: true, "body": false, "": false} {
		if l.Valid() != want {
			t.Errorf("%q valid = %v", l, !want)
		}
	}
}
