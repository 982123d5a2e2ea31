package build

import (
	"regexp"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/xds/validate"
)

// WSO2's "/*" resource matches every sub-path, in Envoy's route (RE2) and in the
// enforcer's own matching alike; "x-wso2-basePath: /*" is an API at the root; a wildcard
// route never hides a more specific one, of its API or of another.
func TestWildcardResources(t *testing.T) {
	for _, c := range []struct {
		base, tmpl  string
		match, miss []string
	}{
		{"/shop", "/*", []string{"/shop", "/shop/", "/shop/a", "/shop/a/b/c"}, []string{"/shopping", "/other"}},
		{"/shop", "/items/*", []string{"/shop/items", "/shop/items/1", "/shop/items/1/x"}, []string{"/shop/itemsX", "/shop/other"}},
		{"/", "/*", []string{"/", "/anything/at/all"}, nil},
		{"/shop", "/{id}/*", []string{"/shop/7", "/shop/7/a/b"}, []string{"/shop"}},
		// Several parameters in one segment: the route and the enforcer agree.
		{"/gh", "/compare/{base}...{head}", []string{"/gh/compare/main...topic", "/gh/compare/a...b...c"}, []string{"/gh/compare/main..topic", "/gh/compare/...x", "/gh/compare/a/...b"}},
	} {
		re := regexp.MustCompile(PathRegex(c.base, c.tmpl))
		tmpl, err := apimodel.ParseTemplate(c.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		rel := func(p string) string {
			if c.base == "/" {
				return p
			}
			return p[len(c.base):]
		}
		for _, p := range c.match {
			if !re.MatchString(p) || !tmpl.Match(rel(p)) {
				t.Errorf("%s%s should match %s (route %v, enforcer %v)", c.base, c.tmpl, p, re.MatchString(p), tmpl.Match(rel(p)))
			}
		}
		for _, p := range c.miss {
			if re.MatchString(p) || tmpl.Match(rel(p)) {
				t.Errorf("%s%s should not match %s (route %v, enforcer %v)", c.base, c.tmpl, p, re.MatchString(p), tmpl.Match(rel(p)))
			}
		}
	}
	if _, err := apimodel.ParseTemplate("/a/*/b"); err == nil {
		t.Error("a '*' before the last segment was accepted")
	}

	parse := func(doc string) *apimodel.API {
		res, err := openapi.Parse("w.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return res.API
	}
	root := parse(`openapi: 3.0.3
info: {title: Root, version: v1}
x-wso2-basePath: /*
x-wso2-production-endpoints: {urls: [http://10.0.0.1:80]}
paths:
  /*: {get: {responses: {"200": {description: ok}}}, post: {responses: {"200": {description: ok}}}}
`)
	if root.BasePath != "/" {
		t.Errorf("base path %q, want /", root.BasePath)
	}
	shop := parse(`openapi: 3.0.3
info: {title: Shop, version: v1}
x-wso2-basePath: /shop
x-wso2-production-endpoints: {urls: [http://10.0.0.2:80]}
paths:
  /*: {get: {responses: {"200": {description: ok}}}}
  /items/{id}: {get: {responses: {"200": {description: ok}}}}
`)
	c, errs := Build([]*apimodel.API{root, shop}, nil, Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var names []string
	for _, vh := range c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts {
		for _, r := range vh.Routes {
			names = append(names, r.Name)
		}
	}
	// Each API's 404 for the rest of its base path comes after its wildcard, and the
	// longer base path's before the root API's routes.
	want := []string{"shop/v1 GET /items/{id}", "shop/v1 /items/{id} (405)", "shop/v1 GET /*", "shop/v1 /* (405)", "shop/v1 (404)", "root/v1 GET /*", "root/v1 POST /*", "root/v1 /* (405)", "root/v1 (404)"}
	if len(names) != len(want) {
		t.Fatalf("routes %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("routes in order %q, want %q", names, want)
		}
	}
	cat := apimodel.NewCatalog([]*apimodel.API{root, shop})
	for path, want := range map[string]string{"/shop/items/3": "GET /items/{id}", "/shop/x/y": "GET /*", "/elsewhere": "GET /*"} {
		_, op := cat.Match("gw", "GET", path)
		if op == nil || op.Key() != want {
			t.Errorf("enforcer: %s → %v, want %s", path, op, want)
		}
	}
}

// A known path with another method gets 405 with an Allow header and MGW 3.x's body, from
// Envoy itself, after every method route of the API.
func TestWrongMethodOnAKnownPathIs405(t *testing.T) {
	res, err := openapi.Parse("m.yaml", []byte(`openapi: 3.0.3
info: {title: M, version: v1}
x-tollgate-production-endpoints: [http://10.0.0.1:80]
paths:
  /pets: {get: {responses: {"200": {description: ok}}}, post: {responses: {"200": {description: ok}}}}
  /pets/{id}: {get: {responses: {"200": {description: ok}}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, errs := Build([]*apimodel.API{res.API}, nil, Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	routes := c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts[0].Routes
	var names []string
	for _, r := range routes {
		names = append(names, r.Name)
		if err := validate.Message(r); err != nil {
			t.Fatal(err)
		}
	}
	last := routes[len(routes)-3:]
	if len(routes) != 6 || last[0].Name != "m/v1 /pets (405)" || last[1].Name != "m/v1 /pets/{id} (405)" || last[2].Name != "m/v1 (404)" {
		t.Fatalf("routes %q", names)
	}
	// A path of the API that no operation has: Envoy answers MGW 3.x's 404, as the enforcer
	// would, for /m/v1 itself and below it.
	nf := last[2]
	re := regexp.MustCompile(nf.GetMatch().GetSafeRegex().GetRegex())
	if !re.MatchString("/m/v1") || !re.MatchString("/m/v1/other/x") || re.MatchString("/m/v10") || nf.GetDirectResponse().GetStatus() != 404 ||
		nf.GetDirectResponse().GetBody().GetInlineString() != `{"code":404, "type":"Status report", "message":"Runtime Error", "description":"No matching resource found for given API Request"}` {
		t.Errorf("404 route %v", nf)
	}
	d := last[0].GetDirectResponse()
	if d.GetStatus() != 405 || d.GetBody().GetInlineString() != `{"code":405, "type":"Status report", "message":"Runtime Error", "description":"Method not allowed for given API resource"}` {
		t.Errorf("405 response %v", d)
	}
	if h := last[0].ResponseHeadersToAdd[0].GetHeader(); h.Key != "allow" || h.Value != "GET, POST" {
		t.Errorf("allow header %v", h)
	}
	if re := regexp.MustCompile(last[1].GetMatch().GetSafeRegex().GetRegex()); !re.MatchString("/m/v1/pets/7") || last[1].GetMatch().GetHeaders() != nil {
		t.Errorf("405 route match %v", last[1].GetMatch())
	}
}
