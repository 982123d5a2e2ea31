package decisiontest

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// Via is how a case's request reaches the enforcer.
type Via string

// The ways a request reaches the enforcer.
const (
	// ViaMatch: no route metadata; the enforcer finds the API and operation by host,
	// method and path (a hand-written Envoy configuration). The default.
	ViaMatch Via = "match"
	// ViaEnvoy: through the routes the control plane generates for the definitions, as an
	// Envoy served by Tollgate picks them — the route's metadata goes with the Check, and
	// a route Envoy answers itself (a 405) never reaches the enforcer.
	ViaEnvoy Via = "envoy"
	// ViaIstio: as Istio's sidecar sends it to an ext_authz provider of an
	// AuthorizationPolicy with action CUSTOM: no route metadata, the mesh's
	// x-forwarded-client-cert and the workloads' SPIFFE identities.
	ViaIstio Via = "istio"
)

// Valid reports whether v is one of the ways ("" is ViaMatch).
func (v Via) Valid() bool { return v == "" || v == ViaMatch || v == ViaEnvoy || v == ViaIstio }

// routes is the generated route table, for ViaEnvoy, with the format Envoy's own replies
// are written in.
type routes struct {
	vhosts []*routev3.VirtualHost
	faults *errfmt.Template
	regex  map[*routev3.Route]*regexp.Regexp // each route's path pattern, compiled once
}

func newRoutes(apis []*apimodel.API, faults *errfmt.Template) (*routes, error) {
	c, errs := build.Build(apis, nil, build.Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080, FaultFormat: faults.Name, Faults: faults})
	if len(errs) > 0 {
		return nil, fmt.Errorf("the control plane cannot build routes for the definitions: %v", errs[0])
	}
	r := &routes{faults: faults, regex: map[*routev3.Route]*regexp.Regexp{}}
	for _, rc := range c.Routes {
		for _, vh := range rc.(*routev3.RouteConfiguration).VirtualHosts {
			r.vhosts = append(r.vhosts, vh)
			for _, rt := range vh.Routes {
				if re := rt.GetMatch().GetSafeRegex(); re != nil {
					compiled, err := regexp.Compile(re.GetRegex())
					if err != nil {
						return nil, err
					}
					r.regex[rt] = compiled
				}
			}
		}
	}
	return r, nil
}

// pick is the route Envoy takes for a request: the virtual host of its host (else the
// catch-all), then the first route whose path and headers match.
func (r *routes) pick(req extauthz.Request) *routev3.Route {
	host := strings.ToLower(req.Host)
	if h, _, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		host = h
	}
	path, _, _ := strings.Cut(req.Path, "?")
	if u, err := url.PathUnescape(path); err == nil && !strings.Contains(path, "%2F") {
		path = u
	}
	vh := r.vhost(host)
	if vh == nil {
		return nil
	}
	for _, rt := range vh.Routes {
		if r.pathMatches(rt, path) && headersMatch(rt.GetMatch().GetHeaders(), req) {
			return rt
		}
	}
	return nil
}

// vhost is the virtual host whose domains name host, else the catch-all.
func (r *routes) vhost(host string) *routev3.VirtualHost {
	var vh *routev3.VirtualHost
	for _, v := range r.vhosts {
		if slices.Contains(v.Domains, host) {
			return v
		}
		if slices.Contains(v.Domains, "*") && vh == nil {
			vh = v
		}
	}
	return vh
}

// pathMatches says whether a route's path match (regex, prefix or exact) takes path.
func (r *routes) pathMatches(rt *routev3.Route, path string) bool {
	m := rt.GetMatch()
	switch {
	case m.GetSafeRegex() != nil:
		return r.regex[rt].MatchString(path)
	case m.GetPrefix() != "":
		return strings.HasPrefix(path, m.GetPrefix())
	case m.GetPath() != "":
		return path == m.GetPath()
	}
	return true
}

// headersMatch says whether the request has the headers a route asks for (exact values or
// presence; :method is the request's method).
func headersMatch(hs []*routev3.HeaderMatcher, req extauthz.Request) bool {
	for _, h := range hs {
		got := req.Headers[h.Name]
		if h.Name == ":method" {
			got = req.Method
		}
		if want := h.GetStringMatch().GetExact(); want != "" && got != want {
			return false
		}
		if h.GetPresentMatch() && got == "" {
			return false
		}
	}
	return true
}

// viaEnvoy decides how the request reaches the enforcer through the generated routes:
// with the route's metadata, or not at all when Envoy answers itself (a direct response,
// or no route).
func (r *routes) viaEnvoy(req *extauthz.Request) *authv3.CheckResponse {
	rt := r.pick(*req)
	if rt == nil {
		// Envoy's no-route reply, in the gateway's format (local_reply_config).
		body, _ := r.faults.Render(build.NoRoute)
		return localReply(build.NoRoute.Status, string(body))
	}
	if d := rt.GetDirectResponse(); d != nil {
		return localReply(int(d.GetStatus()), d.GetBody().GetInlineString())
	}
	var per extauthzv3.ExtAuthzPerRoute
	if cfg := rt.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]; cfg != nil && cfg.UnmarshalTo(&per) == nil {
		if per.GetDisabled() {
			return &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}
		}
		req.ContextExtensions = per.GetCheckSettings().GetContextExtensions()
	}
	return nil
}

// localReply is an answer Envoy makes itself, shaped as a deny.
func localReply(status int, body string) *authv3.CheckResponse {
	return &authv3.CheckResponse{HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(status)}, Body: body,
	}}}
}

// Istio's identities for the request's workloads.
const (
	istioClient  = "spiffe://cluster.local/ns/shop/sa/frontend"
	istioGateway = "spiffe://cluster.local/ns/shop/sa/api"
)

// asIstio shapes a CheckRequest as Istio's sidecar sends it to a CUSTOM provider: the
// workloads' SPIFFE identities as the source and destination principals, and the mesh's
// x-forwarded-client-cert (By, Hash, URI; no certificate) and peer metadata headers.
func asIstio(req *authv3.CheckRequest) {
	a := req.GetAttributes()
	a.Source.Principal, a.Destination.Principal = istioClient, istioGateway
	h := a.GetRequest().GetHttp()
	h.Headers["x-forwarded-client-cert"] = `By=` + istioGateway + `;Hash=8d2a2ad5f3e3bb8e5d1b0f4b1d5b2a3c4e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b;Subject="";URI=` + istioClient
	h.Headers["x-envoy-peer-metadata-id"] = "sidecar~10.0.0.7~frontend-7d9f8.shop~shop.svc.cluster.local"
	h.Headers["x-envoy-attempt-count"] = "1"
	a.Destination.Address = &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: "10.0.0.9", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 8080}}}}
}
