package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
)

const (
	extAuthzFilter = "envoy.filters.http.ext_authz"
	extProcFilter  = "envoy.filters.http.ext_proc"
)

// apiRoutes are one API's routes, with the cluster its gRPC API listener uses.
type apiRoutes struct {
	api         *apimodel.API
	routes      []*routev3.Route
	grpcCluster string
}

// routesFor makes a route per operation (a sandbox route before it when the operation has
// sandbox endpoints) and records the endpoint sets it uses.
func routesFor(a *apimodel.API, c *Config, secrets map[string]bool, opt Options) (apiRoutes, error) {
	out := apiRoutes{api: a}
	ops := byPrecedence(a)
	u := &clusterUse{opt: opt, secrets: secrets, sets: map[string]EndpointSet{}, fronts: map[string]EndpointSet{}}
	for _, op := range ops {
		rs, err := opRoutes(a, op, u.use, opt)
		if err != nil {
			return out, err
		}
		out.routes = append(out.routes, rs...)
	}
	out.routes = append(out.routes, methodNotAllowed(a, ops, opt)...)
	out.routes = append(out.routes, noResource(a, opt))
	if a.CORS != nil {
		out.routes = append(preflights(a, ops, u.use), out.routes...)
		policy := mustAny(corsPolicy(a.CORS))
		for _, r := range out.routes {
			r.TypedPerFilterConfig[corsFilter] = policy
		}
	}
	if a.GRPC && !a.Production.Empty() {
		name, s, err := u.use(a.Production)
		if err != nil {
			return out, err
		}
		if len(s.Parts) > 0 {
			// Proxyless clients cannot reach Envoy's internal listeners; a gRPC request's
			// path is the method, so the first part serves them.
			name = clusterName(s.Parts[0])
		}
		out.grpcCluster = name
	}
	// Only an API built whole contributes its clusters.
	maps.Copy(c.Sets, u.sets)
	maps.Copy(c.fronts, u.fronts)
	return out, nil
}

// byPrecedence is an API's operations in the order their routes go: of overlapping
// templates, the one with more literal segments first, a wildcard after the templates with
// as many.
func byPrecedence(a *apimodel.API) []*apimodel.Operation {
	ops := make([]*apimodel.Operation, len(a.Operations))
	for i := range a.Operations {
		ops[i] = &a.Operations[i]
	}
	sort.SliceStable(ops, func(i, j int) bool {
		li, lj := ops[i].Template().Specificity(), ops[j].Template().Specificity()
		if li != lj {
			return li > lj
		}
		return ops[i].Key() < ops[j].Key()
	})
	return ops
}

// clusterUse is the endpoint sets an API's routes use, as clusters.
type clusterUse struct {
	opt          Options
	secrets      map[string]bool
	sets, fronts map[string]EndpointSet
}

// use is the cluster that serves endpoints e (a front of internal listeners when e is
// split by path), noting the sets it needs; the TLS secrets it names must be served.
func (u *clusterUse) use(e apimodel.Endpoints) (string, EndpointSet, error) {
	s, err := endpointSet(e, u.opt.Discovery)
	if err != nil {
		return "", s, err
	}
	for _, name := range []string{s.Policy.TLS.CA, s.Policy.TLS.ClientCert} {
		if name != "" && !u.secrets[name] {
			return "", s, fmt.Errorf("secret %q is not in etcd (secrets/%s)", name, name)
		}
	}
	name := clusterName(s)
	if len(s.Parts) == 0 {
		u.sets[name] = s
		return name, s, nil
	}
	u.fronts[name] = s
	for _, p := range s.Parts {
		u.sets[clusterName(p)] = p
	}
	return name, s, nil
}

// opRoutes is an operation's routes: to its sandbox endpoints for sandbox requests, when
// it has some, then to its production endpoints (the API's where the operation names
// none).
func opRoutes(a *apimodel.API, op *apimodel.Operation, use func(apimodel.Endpoints) (string, EndpointSet, error), opt Options) ([]*routev3.Route, error) {
	var out []*routev3.Route
	prod, sand := op.Production, op.Sandbox
	if prod.Empty() {
		prod = a.Production
	}
	if sand.Empty() {
		sand = a.Sandbox
	}
	if !sand.Empty() {
		name, s, err := use(sand)
		if err != nil {
			return nil, err
		}
		r := route(a, op, name, s, opt)
		r.Name += "/sandbox"
		r.Match.Headers = append(r.Match.Headers, exactHeader(apimodel.EnvironmentHeader, "sandbox"))
		out = append(out, r)
	}
	if !prod.Empty() {
		name, s, err := use(prod)
		if err != nil {
			return nil, err
		}
		out = append(out, route(a, op, name, s, opt))
	}
	return out, nil
}

func route(a *apimodel.API, op *apimodel.Operation, cluster string, s EndpointSet, opt Options) *routev3.Route {
	perRoute := &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: map[string]string{
			apimodel.RouteKeyAPI:       a.ID(),
			apimodel.RouteKeyOperation: op.Key(),
		}},
	}}
	var bufferLimit *wrapperspb.UInt64Value
	if v := op.Validation; v != nil && v.Request {
		// A validated operation's body goes to the enforcer with the Check, raw, up to its
		// limit: larger is Envoy's 413, answered without buffering past the limit (the
		// route's buffer limit is the same, so the connection's cannot cut it short).
		perRoute.GetCheckSettings().WithRequestBody = &extauthzv3.BufferSettings{MaxRequestBytes: uint32(v.MaxBody), PackAsBytes: true}
		bufferLimit = wrapperspb.UInt64(uint64(v.MaxBody))
	}
	var action *routev3.RouteAction
	var remove []string
	if len(s.Parts) > 0 {
		action = frontAction(a.BasePath, s, cluster, opt)
		remove = []string{UnreachableHeader}
	} else {
		action = &routev3.RouteAction{
			ClusterSpecifier:     &routev3.RouteAction_Cluster{Cluster: cluster},
			Timeout:              durationpb.New(s.Policy.Timeout),
			RegexRewrite:         baseRewrite(a.BasePath, s.Path),
			HostRewriteSpecifier: &routev3.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)},
			RetryPolicy:          retryPolicy(s.Policy),
		}
	}
	filters := map[string]*anypb.Any{extAuthzFilter: mustAny(perRoute)}
	if v := op.Validation; v != nil && v.Response.On() {
		filters[extProcFilter] = responseProcessing(a, op)
	}
	return &routev3.Route{
		Name: a.ID() + " " + op.Key(),
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: PathRegex(a.BasePath, op.Path)}},
			Headers:       []*routev3.HeaderMatcher{exactHeader(":method", op.Method)},
		},
		Action:                  &routev3.Route_Route{Route: action},
		ResponseHeadersToRemove: remove,
		TypedPerFilterConfig:    filters,
		RequestBodyBufferLimit:  bufferLimit,
	}
}

// retryPolicy is a set's retries (nil: none).
func retryPolicy(p apimodel.Policy) *routev3.RetryPolicy {
	if p.Retries <= 0 {
		return nil
	}
	rp := &routev3.RetryPolicy{RetryOn: "5xx,connect-failure,reset", NumRetries: wrapperspb.UInt32(uint32(p.Retries))}
	if len(p.RetryOn) > 0 {
		rp.RetryOn = "retriable-status-codes,connect-failure,reset"
		for _, c := range p.RetryOn {
			rp.RetriableStatusCodes = append(rp.RetriableStatusCodes, uint32(c))
		}
	}
	if p.RetryInterval > 0 {
		rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(p.RetryInterval), MaxInterval: durationpb.New(10 * p.RetryInterval)}
	}
	return rp
}

// baseRewrite rewrites the base path (and a slash after it) to path and a slash:
// /shop/v1/items → /api/items, and /shop/v1 → /api/ rather than an empty path.
func baseRewrite(base, path string) *matcherv3.RegexMatchAndSubstitute {
	return &matcherv3.RegexMatchAndSubstitute{
		Pattern:      &matcherv3.RegexMatcher{Regex: "^" + regexp.QuoteMeta(basePrefix(base)) + "/?"},
		Substitution: path + "/",
	}
}

func basePrefix(base string) string {
	if base == "/" {
		return ""
	}
	return base
}

// PathRegex is the RE2 pattern of base path + template: a parameter matches one non-empty
// segment (or its part between literal text); a trailing slash is allowed.
func PathRegex(base, template string) string {
	var b strings.Builder
	b.WriteString("^")
	b.WriteString(regexp.QuoteMeta(basePrefix(base)))
	if rest, wild := strings.CutSuffix(template, "/*"); wild {
		// WSO2's wildcard resource: the segments before it, then any rest of the path.
		if rest != "" {
			b.WriteString(strings.TrimSuffix(strings.TrimPrefix(PathRegex("/", rest), "^"), "/?$"))
		}
		b.WriteString(wildSuffix)
		return b.String()
	}
	for _, seg := range strings.Split(strings.TrimPrefix(template, "/"), "/") {
		b.WriteString("/")
		for {
			open := strings.IndexByte(seg, '{')
			close := strings.IndexByte(seg, '}')
			if open < 0 || close < open {
				b.WriteString(regexp.QuoteMeta(seg))
				break
			}
			b.WriteString(regexp.QuoteMeta(seg[:open]))
			b.WriteString("[^/]+")
			seg = seg[close+1:]
		}
	}
	if !strings.HasSuffix(b.String(), "/") {
		b.WriteString("/?")
	}
	b.WriteString("$")
	return b.String()
}

func exactHeader(name, value string) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
		StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: value}},
	}}
}

// routeConfigs makes the gateway's route table and one route table per gRPC API listener.
// The gateway table has a virtual host per named host and a catch-all "*". Envoy picks the
// most specific domain, so the routes of APIs without hosts are also placed, after the
// host's own, in every named host — as the enforcer's matching serves them on any host.
func routeConfigs(apis []apiRoutes, opt Options) (gateway, grpc []types.Resource) {
	for _, ar := range apis {
		for _, r := range ar.routes {
			if ra := r.GetRoute(); ra != nil && ra.GetTimeout().AsDuration() == 0 {
				ra.Timeout = durationpb.New(opt.RouteTimeout)
			}
		}
		if ar.grpcCluster != "" {
			grpc = append(grpc, &routev3.RouteConfiguration{
				Name: GRPCRouteName(ar.api.Name),
				VirtualHosts: []*routev3.VirtualHost{{
					Name: "grpc_" + ar.api.Name, Domains: []string{"*"},
					Routes: []*routev3.Route{{
						Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
						Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: ar.grpcCluster}}},
					}},
				}},
			})
		}
	}
	return []types.Resource{routeTable(RouteConfigName, apis)}, grpc
}

// routeTable is one route table of the gateway over apis: a virtual host per named host
// and a catch-all "*".
func routeTable(name string, apis []apiRoutes) *routev3.RouteConfiguration {
	byHost := map[string][]*routev3.Route{}
	var any []*routev3.Route
	for _, ar := range apis {
		if len(ar.api.Hosts) == 0 {
			any = append(any, ar.routes...)
		}
		for _, h := range ar.api.Hosts {
			h = strings.ToLower(h)
			byHost[h] = append(byHost[h], ar.routes...)
		}
	}
	hosts := make([]string, 0, len(byHost))
	for h := range byHost {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	rc := &routev3.RouteConfiguration{Name: name}
	for _, h := range hosts {
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
			Name: "host_" + h, Domains: []string{h, h + ":*"}, Routes: wildcardsLast(append(byHost[h], any...)),
		})
	}
	rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: "any_host", Domains: []string{"*"}, Routes: wildcardsLast(any)})
	return rc
}

// wildcardsLast moves the routes of wildcard resources ("/*", which match any rest of the
// path) after every other route of the virtual host, the longest prefix first, so that a
// wildcard never hides an API's or another API's more specific resources.
func wildcardsLast(routes []*routev3.Route) []*routev3.Route {
	prefixLen := func(r *routev3.Route) int {
		re := r.GetMatch().GetSafeRegex().GetRegex()
		if p, ok := strings.CutSuffix(re, wildSuffix); ok {
			return len(p)
		}
		return -1
	}
	out := make([]*routev3.Route, 0, len(routes))
	var wild []*routev3.Route
	for _, r := range routes {
		if prefixLen(r) >= 0 {
			wild = append(wild, r)
		} else {
			out = append(out, r)
		}
	}
	sort.SliceStable(wild, func(i, j int) bool { return prefixLen(wild[i]) > prefixLen(wild[j]) })
	return append(out, wild...)
}

const wildSuffix = "(/.*)?$"

// GRPCRouteName is the route table of a gRPC API listener.
func GRPCRouteName(api string) string { return "grpc_" + api }

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:5])
}

// mustAny packs m deterministically: a map inside (the access log's JSON format, a
// route's context extensions) must give the same bytes every build, or the resource's
// content-hash version changes and Envoys get it again for nothing.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(err) // only for messages of registered types, which marshal
	}
	return a
}

const corsFilter = "envoy.filters.http.cors"

// methodNotAllowed makes, for each path of the API, a route after the API's method routes
// that answers any other method 405 with an Allow header, as WSO2's gateways do (Envoy
// would answer 404 with no body). Envoy answers it itself: the enforcer is off there.
func methodNotAllowed(a *apimodel.API, ops []*apimodel.Operation, opt Options) []*routev3.Route {
	methods := map[string][]string{}
	var paths []string
	for _, op := range ops {
		shape := op.Template().Shape()
		if _, ok := methods[shape]; !ok {
			paths = append(paths, op.Path)
		}
		methods[shape] = append(methods[shape], op.Method)
	}
	body, ctype := envoyAnswer(a, opt, errfmt.Data{Code: 405, Status: 405, Message: "Method Not Allowed", Description: "Method not allowed for given API resource"},
		`{"code":405, "type":"Status report", "message":"Runtime Error", "description":"Method not allowed for given API resource"}`,
		`{"type":"https://tollgate.dev/faults/405","title":"Method Not Allowed","status":405,"detail":"Method not allowed for given API resource","code":405}`)
	off := mustAny(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})
	out := make([]*routev3.Route, 0, len(paths))
	for _, p := range paths {
		t, _ := apimodel.ParseTemplate(p)
		allow := append([]string(nil), methods[t.Shape()]...)
		sort.Strings(allow)
		out = append(out, &routev3.Route{
			Name:  a.ID() + " " + p + " (405)",
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: PathRegex(a.BasePath, p)}}},
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
				Status: 405, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
			}},
			ResponseHeadersToAdd: []*corev3.HeaderValueOption{
				{Header: &corev3.HeaderValue{Key: "allow", Value: strings.Join(allow, ", ")}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
				{Header: &corev3.HeaderValue{Key: "content-type", Value: ctype}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
			},
			TypedPerFilterConfig: map[string]*anypb.Any{extAuthzFilter: off},
		})
	}
	return out
}

// envoyAnswer is the body and content type of an answer Envoy makes itself on an API's
// routes: MGW 3.x's bytes (wso2) or problem details (problem) as the enforcer writes the
// same event, or the API's own template, or the gateway's when it is not a shipped one.
func envoyAnswer(a *apimodel.API, opt Options, d errfmt.Data, wso2, problem string) (string, string) {
	body, ctype := wso2, "application/json"
	if opt.FaultFormat == "problem" {
		body, ctype = problem, "application/problem+json"
	}
	if t := a.Faults; t != nil || (opt.Faults != nil && opt.Faults.Name == "custom") {
		if t == nil {
			t = opt.Faults
		}
		d.API = a.ID()
		if b, err := t.Render(d); err == nil {
			body, ctype = string(b), t.ContentType
		}
	}
	return body, ctype
}

// noResource is the API's last route: a path under its base path that none of its
// operations has is answered 404 by Envoy itself, as the enforcer would (MGW 3.x's "No
// matching resource found for given API Request"), rather than with the no-route reply of
// a path no API serves. wildcardsLast puts it after every route of the virtual host with a
// longer prefix, so that it never hides another API's.
func noResource(a *apimodel.API, opt Options) *routev3.Route {
	body, ctype := envoyAnswer(a, opt, errfmt.Data{Code: 900906, Status: 404, Message: "Runtime Error", Description: "No matching resource found for given API Request"},
		`{"code":404, "type":"Status report", "message":"Runtime Error", "description":"No matching resource found for given API Request"}`,
		`{"type":"https://tollgate.dev/faults/900906","title":"Runtime Error","status":404,"detail":"No matching resource found for given API Request","code":900906}`)
	return &routev3.Route{
		Name:  a.ID() + " (404)",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "^" + regexp.QuoteMeta(basePrefix(a.BasePath)) + wildSuffix}}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 404, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
		}},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{
			{Header: &corev3.HeaderValue{Key: "content-type", Value: ctype}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
		},
		TypedPerFilterConfig: map[string]*anypb.Any{extAuthzFilter: mustAny(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})},
	}
}

// preflights makes, for an API with a CORS policy, one OPTIONS route per path template:
// the CORS filter answers a browser's preflight there before ext_authz would refuse it
// (preflights carry no credentials), so the enforcer is off on these routes.
func preflights(a *apimodel.API, ops []*apimodel.Operation, use func(apimodel.Endpoints) (string, EndpointSet, error)) []*routev3.Route {
	seen := map[string]bool{}
	var out []*routev3.Route
	off := mustAny(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_Disabled{Disabled: true}})
	for _, op := range ops {
		if seen[op.Path] {
			continue
		}
		seen[op.Path] = true
		prod := op.Production
		if prod.Empty() {
			prod = a.Production
		}
		if prod.Empty() {
			continue
		}
		cluster, _, err := use(prod)
		if err != nil {
			continue // the operation's own route reports it
		}
		out = append(out, &routev3.Route{
			Name: a.ID() + " OPTIONS " + op.Path + " (CORS preflight)",
			Match: &routev3.RouteMatch{
				PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: PathRegex(a.BasePath, op.Path)}},
				Headers: []*routev3.HeaderMatcher{exactHeader(":method", "OPTIONS"),
					{Name: "access-control-request-method", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}}},
			},
			Action:               &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
			TypedPerFilterConfig: map[string]*anypb.Any{extAuthzFilter: off},
		})
	}
	return out
}

func corsPolicy(c *apimodel.CORS) *corsv3.CorsPolicy {
	p := &corsv3.CorsPolicy{
		AllowMethods: strings.Join(c.AllowMethods, ","), AllowHeaders: strings.Join(c.AllowHeaders, ","),
		ExposeHeaders: strings.Join(c.ExposeHeaders, ","), AllowCredentials: wrapperspb.Bool(c.AllowCredentials),
	}
	if c.MaxAge > 0 {
		p.MaxAge = fmt.Sprint(int64(c.MaxAge.Seconds()))
	}
	for _, o := range c.AllowOrigins {
		m := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: o}}
		if o == "*" {
			m = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".*"}}}
		}
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, m)
	}
	return p
}

// responseProcessing enables the ext_proc filter on an operation's route with what its
// response validation needs: the response headers (with response.code_details, so that a
// reply the gateway made itself is told apart), and the buffered body when a declared
// response has a JSON schema — as much of it as Envoy buffers (the listener's
// bufferLimitBytes; a longer body goes on unchecked rather than failing); the operation
// rides in the stream's metadata. In report mode the response goes on if the enforcer
// cannot be asked.
func responseProcessing(a *apimodel.API, op *apimodel.Operation) *anypb.Any {
	body := extprocv3.ProcessingMode_NONE
	for _, r := range op.Validation.Responses {
		for _, m := range r.Media {
			if m.Schema != nil {
				body = extprocv3.ProcessingMode_BUFFERED_PARTIAL
			}
		}
	}
	per := &extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{Overrides: &extprocv3.ExtProcOverrides{
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode: extprocv3.ProcessingMode_SKIP, ResponseHeaderMode: extprocv3.ProcessingMode_SEND,
			ResponseBodyMode:   body,
			RequestTrailerMode: extprocv3.ProcessingMode_SKIP, ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		ResponseAttributes: []string{apimodel.CodeDetailsAttribute, apimodel.RequestIDAttribute},
		GrpcInitialMetadata: []*corev3.HeaderValue{
			{Key: apimodel.ProcessAPIKey, Value: a.ID()},
			{Key: apimodel.ProcessOperationKey, Value: op.Key()},
		},
		FailureModeAllow: wrapperspb.Bool(op.Validation.Response == apimodel.ResponseReport),
	}}}
	return mustAny(&routev3.FilterConfig{Config: mustAny(per)})
}
