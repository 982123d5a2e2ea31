package test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// A WSO2-style definition (failover across paths, path-item endpoints, a /* resource,
// security disabled for the API and enabled again on one operation, two scopes of which
// either will do, a requirement written as a string) served by `tollgate run`: an ADS
// client reads the routes as Envoy would, picks the route for each request the way Envoy
// does (first match of path regex and method), and `tollgate check` decides with that
// route's context extensions.
func TestWSO2RoutesDecideWithTheirContextExtensions(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	def := write(t, dir, "depot.yaml", `openapi: 3.0.1
info: {title: Depot, version: "1.0"}
x-wso2-basePath: /depot/1.0
x-wso2-disable-security: true
x-wso2-production-endpoints:
  type: failover
  urls: [http://127.0.0.1:9001/primary, http://127.0.0.1:9002/standby]
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: https://idp.test/token, scopes: {}}}}
paths:
  /parcels/{id}:
    x-wso2-production-endpoints: {urls: [http://127.0.0.1:9003/parcels-svc]}
    get:
      x-wso2-disable-security: false
      security: [{oauth: [write:parcels, read:parcels]}]
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: a parcel}}
    delete:
      x-wso2-disable-security: false
      security: ['oauth:[]']
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses: {"204": {description: gone}}
  /status:
    get: {responses: {"200": {description: up}}}
  /*:
    get: {responses: {"200": {description: anything}}}
`)
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", def)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := connectEnvoy(t, ctx, p.xds, "wso2-routes")
	got := e.waitFor("the depot's routes", 20*time.Second, func(c config) bool {
		return strings.Contains(strings.Join(c.Routes, "\n"), "depot/1.0 GET /parcels/{id}")
	})
	var internal int
	for _, l := range got.Listeners {
		if strings.HasPrefix(l, "internal_") {
			internal++
		}
	}
	if internal != 2 {
		t.Errorf("failover across two paths needs two internal listeners, the Envoy holds %v", got.Listeners)
	}
	table := e.tableFor("/depot/1.0/status")
	var routes []*routev3.Route
	for _, vh := range table.GetVirtualHosts() {
		if slices.Contains(vh.Domains, "*") {
			routes = vh.Routes
		}
	}
	// pick is Envoy's choice for a request without the sandbox header.
	pick := func(method, path string) *routev3.Route {
	next:
		for _, r := range routes {
			if !regexp.MustCompile(r.GetMatch().GetSafeRegex().GetRegex()).MatchString(path) {
				continue
			}
			for _, h := range r.GetMatch().GetHeaders() {
				if h.Name == ":method" && h.GetStringMatch().GetExact() != method || h.Name == apimodel.EnvironmentHeader {
					continue next
				}
			}
			return r
		}
		return nil
	}
	reader := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "read:parcels").stdout)
	other := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "other").stdout)
	for _, c := range []struct {
		method, path, token string
		route, want         string
	}{
		{"GET", "/depot/1.0/status", "", "depot/1.0 GET /status", "ALLOWED 200"},
		{"GET", "/depot/1.0/parcels/7", "", "depot/1.0 GET /parcels/{id}", "DENIED 401"},
		{"GET", "/depot/1.0/parcels/7", reader, "depot/1.0 GET /parcels/{id}", "ALLOWED 200"},
		{"GET", "/depot/1.0/parcels/7", other, "depot/1.0 GET /parcels/{id}", "DENIED 403"},
		{"DELETE", "/depot/1.0/parcels/7", "", "depot/1.0 DELETE /parcels/{id}", "DENIED 401"},
		{"DELETE", "/depot/1.0/parcels/7", other, "depot/1.0 DELETE /parcels/{id}", "ALLOWED 200"},
		{"GET", "/depot/1.0/any/thing/below", "", "depot/1.0 GET /*", "ALLOWED 200"},
	} {
		r := pick(c.method, c.path)
		if r == nil || r.Name != c.route {
			t.Errorf("%s %s: Envoy would take route %v, want %q", c.method, c.path, r.GetName(), c.route)
			continue
		}
		var per extauthzv3.ExtAuthzPerRoute
		if err := r.TypedPerFilterConfig["envoy.filters.http.ext_authz"].UnmarshalTo(&per); err != nil {
			t.Fatal(err)
		}
		ext := per.GetCheckSettings().GetContextExtensions()
		args := []string{"check", "--config", cfg, "--method", c.method, "--path", c.path,
			"--api", ext[apimodel.RouteKeyAPI], "--operation", ext[apimodel.RouteKeyOperation]}
		if c.token != "" {
			args = append(args, "-H", "Authorization: Bearer "+c.token)
		}
		if o := tollgate(t, args...).stdout; !strings.Contains(o, c.want) {
			t.Errorf("%s %s (route %s, %v): %s", c.method, c.path, r.Name, ext, o)
		}
	}
	// The parcels' own endpoint serves both methods of the path item; the rest fail over
	// from /primary to /standby.
	if r := pick("GET", "/depot/1.0/parcels/7"); !strings.HasPrefix(r.GetRoute().GetCluster(), "ep_127.0.0.1_9003_") {
		t.Errorf("GET /parcels/{id} goes to %q, not the path item's endpoint", r.GetRoute().GetCluster())
	}
	if r := pick("GET", "/depot/1.0/status"); !strings.HasPrefix(r.GetRoute().GetCluster(), "front_") ||
		r.GetRoute().GetRetryPolicy().GetRetryPriority() == nil {
		t.Errorf("GET /status goes to %q with retries %v, not a failover front", r.GetRoute().GetCluster(), r.GetRoute().GetRetryPolicy())
	}
	// A wrong method on a known path: Envoy answers MGW 3.x's 405 itself.
	if r := pick("PUT", "/depot/1.0/status"); r.GetDirectResponse().GetStatus() != 405 ||
		r.GetDirectResponse().GetBody().GetInlineString() != `{"code":405, "type":"Status report", "message":"Runtime Error", "description":"Method not allowed for given API resource"}` {
		t.Errorf("PUT /status: %v", r)
	}
}
