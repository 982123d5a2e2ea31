package build

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/xds/validate"
)

func examples(t *testing.T) []*apimodel.API {
	t.Helper()
	var out []*apimodel.API
	for _, n := range []string{"coffeebar", "petstore", "online-store"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", n, n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		res, err := openapi.Parse(n, data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.API)
	}
	return out
}

// parseFile reads one definition from the file the path's parts name.
func parseFile(t *testing.T, parts ...string) *apimodel.API {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	res, err := openapi.Parse(parts[len(parts)-1], data)
	if err != nil {
		t.Fatal(err)
	}
	return res.API
}

func msgs(rs []types.Resource) []proto.Message {
	out := make([]proto.Message, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out
}

var opt = Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080}

func TestExamplesBuildValidConfig(t *testing.T) {
	c, errs := Build(examples(t), nil, opt)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	eds, errs := Endpoints(c.Sets, map[string]string{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), msgs(c.Secrets)); err != nil {
		t.Fatal(err)
	}
	rc := c.Routes[0].(*routev3.RouteConfiguration)
	routes := map[string]*routev3.Route{}
	for _, r := range rc.VirtualHosts[0].Routes {
		routes[r.Name] = r
	}
	// coffeebar: 5 operations, each with a sandbox route, and a 405 route for each of its 4
	// paths; petstore 3 (+3 sandbox, +2 CORS preflights and 2 405 routes, one per path);
	// store 2 (+2 405 routes); and each API's 404 for the rest of its base path.
	if len(routes) != 5*2+4+3*2+2+2+2+2+3 {
		t.Errorf("%d routes", len(routes))
	}
	r := routes["coffeebar/v1 GET /order/{orderId}"]
	if r == nil {
		t.Fatal("no route for GET /order/{orderId}")
	}
	re := regexp.MustCompile(r.Match.GetSafeRegex().Regex)
	for path, want := range map[string]bool{"/coffeebar/v1/order/42": true, "/coffeebar/v1/order/42/": true, "/coffeebar/v1/order": false, "/coffeebar/v1/order/4/2": false} {
		if re.MatchString(path) != want {
			t.Errorf("%s matches %s: %v", re, path, !want)
		}
	}
	var per extauthzv3.ExtAuthzPerRoute
	if err := r.TypedPerFilterConfig[extAuthzFilter].UnmarshalTo(&per); err != nil {
		t.Fatal(err)
	}
	ext := per.GetCheckSettings().GetContextExtensions()
	if ext[apimodel.RouteKeyAPI] != "coffeebar/v1" || ext[apimodel.RouteKeyOperation] != "GET /order/{orderId}" {
		t.Errorf("context extensions %v", ext)
	}
	if rw := r.GetRoute().GetRegexRewrite(); rw.Pattern.Regex != "^/coffeebar/v1/?" || rw.Substitution != "/coffeebar/" {
		t.Errorf("rewrite %v", rw)
	}
	// The sandbox route comes first and needs the environment header.
	sb := routes["coffeebar/v1 GET /order/{orderId}/sandbox"]
	if sb == nil || sb.GetRoute().GetCluster() == r.GetRoute().GetCluster() || len(sb.Match.Headers) != 2 {
		t.Errorf("sandbox route %v", sb)
	}
}

func TestDiscoveryKeysDriveEndpoints(t *testing.T) {
	c, _ := Build(examples(t), nil, opt)
	find := func(eds []types.Resource) *endpointv3.ClusterLoadAssignment {
		for _, r := range eds {
			if cla := r.(*endpointv3.ClusterLoadAssignment); strings.Contains(cla.ClusterName, "searchItem_etcd_key") {
				return cla
			}
		}
		t.Fatal("no cluster for the discovery key")
		return nil
	}
	addr := func(cla *endpointv3.ClusterLoadAssignment, i int) (string, uint32) {
		sa := cla.Endpoints[0].LbEndpoints[i].GetEndpoint().Address.GetSocketAddress()
		return sa.Address, sa.GetPortValue()
	}
	eds, _ := Endpoints(c.Sets, nil)
	if h, p := addr(find(eds), 0); h != "127.0.0.1" || p != 8087 {
		t.Errorf("default endpoint %s:%d", h, p)
	}
	eds, errs := Endpoints(c.Sets, map[string]string{"searchItem_etcd_key": `[{"url":"http://10.0.0.5:9000","weight":3},"http://10.0.0.6:9000"]`})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	cla := find(eds)
	if h, _ := addr(cla, 0); h != "10.0.0.5" || cla.Endpoints[0].LbEndpoints[0].LoadBalancingWeight.Value != 3 || len(cla.Endpoints[0].LbEndpoints) != 2 {
		t.Errorf("discovered endpoints %v", cla)
	}
	if cla.Endpoints[0].LoadBalancingWeight.GetValue() == 0 {
		t.Error("locality weight must be > 0 for gRPC clients")
	}
	eds, errs = Endpoints(c.Sets, map[string]string{"searchItem_etcd_key": "not a url"})
	if len(errs) != 1 {
		t.Errorf("bad value: errs %v", errs)
	}
	if h, p := addr(find(eds), 0); h != "127.0.0.1" || p != 8087 {
		t.Errorf("a bad value must fall back to the default, got %s:%d", h, p)
	}
}

func TestFailoverUsesPriorities(t *testing.T) {
	a := &apimodel.API{Name: "f", Version: "v1", BasePath: "/f", Production: apimodel.Endpoints{Type: "failover",
		URLs: []apimodel.Endpoint{{URL: "https://10.0.0.1:8443/x"}, {URL: "https://10.0.0.2:8443/x"}}},
		Operations: []apimodel.Operation{{Method: "GET", Path: "/a"}}}
	if ps := a.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	c, errs := Build([]*apimodel.API{a}, nil, opt)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	eds, _ := Endpoints(c.Sets, nil)
	cla := eds[0].(*endpointv3.ClusterLoadAssignment)
	if len(cla.Endpoints) != 2 || cla.Endpoints[1].Priority != 1 {
		t.Errorf("failover localities %v", cla.Endpoints)
	}
	cl := c.Clusters[0].(*clusterv3.Cluster)
	if cl.TransportSocket == nil {
		t.Error("https backend without TLS")
	}
}

func TestHostsGetTheirOwnAndTheCatchAllRoutes(t *testing.T) {
	mk := func(name string, hosts ...string) *apimodel.API {
		a := &apimodel.API{Name: name, Version: "v1", BasePath: "/" + name, Hosts: hosts,
			Production: apimodel.Endpoints{URLs: []apimodel.Endpoint{{URL: "http://10.0.0.1"}}},
			Operations: []apimodel.Operation{{Method: "GET", Path: "/a"}}}
		a.Validate()
		return a
	}
	c, _ := Build([]*apimodel.API{mk("a", "x.test", "y.test"), mk("b", "x.test"), mk("c")}, nil, opt)
	eds, _ := Endpoints(c.Sets, nil)
	if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), nil); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, vh := range c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts {
		for _, r := range vh.Routes {
			if r.GetRoute() != nil {
				got[vh.Domains[0]] = append(got[vh.Domains[0]], strings.Fields(r.Name)[0])
			}
		}
	}
	want := map[string]string{"x.test": "a/v1 b/v1 c/v1", "y.test": "a/v1 c/v1", "*": "c/v1"}
	for d, w := range want {
		if strings.Join(got[d], " ") != w {
			t.Errorf("virtual host %s routes %v, want %s", d, got[d], w)
		}
	}
}

func TestDuplicateDomainsAreCaught(t *testing.T) {
	rc := &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{
		{Name: "one", Domains: []string{"x.test"}}, {Name: "two", Domains: []string{"x.test"}}}}
	err := validate.Set(nil, []proto.Message{rc}, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `domain "x.test"`) {
		t.Errorf("want a duplicate domain error, got %v", err)
	}
}

func TestEndpointPolicyReachesTheCluster(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: Pol, version: v1}
x-wso2-production-endpoints:
  urls: ["https://10.0.0.1:8443/api", "https://10.0.0.2:8443/api"]
  lbPolicy: least_request
  timeout: 3s
  retries: {count: 2, statusCodes: [503]}
  circuitBreaker: {maxConnections: 100, maxRequests: 200}
  healthCheck: {path: /healthz, interval: 5s}
  protocol: h2
  tls: {ca: backend-ca, clientCertificate: gateway-client, sni: api.internal}
x-wso2-sandbox-endpoints:
  urls: ["http://10.0.0.9:80"]
  advanceEndpointConfig:
    timeoutInMillis: 7000
    retryConfig: {count: 1, statusCodes: [504]}
paths: {/a: {get: {security: [{}], responses: {"200": {description: ok}}}}}
`
	res, err := openapi.Parse("pol.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	secrets := []store.Secret{{Name: "backend-ca", CA: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")},
		{Name: "gateway-client", CertPEM: []byte("c"), KeyPEM: []byte("k")}, {Name: "unused", CA: []byte("x")}}
	c, errs := Build([]*apimodel.API{res.API}, secrets, opt)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	eds, _ := Endpoints(c.Sets, nil)
	if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), msgs(c.Secrets)); err != nil {
		t.Fatal(err)
	}
	if len(c.Secrets) != 2 {
		t.Errorf("served %d secrets; only the 2 referenced ones belong in the snapshot", len(c.Secrets))
	}
	var prod *clusterv3.Cluster
	for _, r := range c.Clusters {
		if cl := r.(*clusterv3.Cluster); cl.TransportSocket != nil {
			prod = cl
		}
	}
	if prod == nil || prod.LbPolicy != clusterv3.Cluster_LEAST_REQUEST || prod.CircuitBreakers.Thresholds[0].MaxConnections.Value != 100 ||
		prod.HealthChecks[0].GetHttpHealthCheck().Path != "/healthz" || prod.TypedExtensionProtocolOptions[httpOptionsKey] == nil {
		t.Fatalf("production cluster %v", prod)
	}
	var up tlsv3.UpstreamTlsContext
	prod.TransportSocket.GetTypedConfig().UnmarshalTo(&up)
	if up.Sni != "api.internal" || up.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].Name != "gateway-client" ||
		up.CommonTlsContext.GetCombinedValidationContext().ValidationContextSdsSecretConfig.Name != "backend-ca" {
		t.Errorf("upstream TLS %v", &up)
	}
	routes := c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts[0].Routes
	for _, r := range routes {
		ra := r.GetRoute()
		if ra == nil {
			continue // a 405 answered by Envoy
		}
		sandbox := strings.HasSuffix(r.Name, "/sandbox")
		if sandbox && (ra.Timeout.AsDuration().Seconds() != 7 || ra.RetryPolicy.NumRetries.Value != 1 || ra.RetryPolicy.RetriableStatusCodes[0] != 504) {
			t.Errorf("sandbox route (WSO2 advanceEndpointConfig) %v", ra)
		}
		if !sandbox && (ra.Timeout.AsDuration().Seconds() != 3 || ra.RetryPolicy.NumRetries.Value != 2) {
			t.Errorf("production route %v", ra)
		}
	}
	// An API whose secret is missing is left out, with the reason.
	_, errs = Build([]*apimodel.API{res.API}, secrets[1:], opt)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `secret "backend-ca"`) {
		t.Errorf("missing secret: %v", errs)
	}
}

func TestHTTPSBackendIsVerifiedByDefault(t *testing.T) {
	a := &apimodel.API{Name: "s", Version: "v1", BasePath: "/s", Production: apimodel.Endpoints{URLs: []apimodel.Endpoint{{URL: "https://10.0.0.1/x"}}},
		Operations: []apimodel.Operation{{Method: "GET", Path: "/a"}}}
	a.Validate()
	c, _ := Build([]*apimodel.API{a}, nil, opt)
	var up tlsv3.UpstreamTlsContext
	c.Clusters[0].(*clusterv3.Cluster).TransportSocket.GetTypedConfig().UnmarshalTo(&up)
	if f := up.CommonTlsContext.GetValidationContext().GetTrustedCa().GetFilename(); f == "" {
		t.Errorf("an https backend without a CA must be verified against the trust store: %v", &up)
	}
}

// The HTTPS listener asks for client certificates when mutual TLS is on: "require" makes
// the handshake fail without a trusted one, "optional" leaves the decision to the enforcer.
func TestListenerClientCertificates(t *testing.T) {
	secrets := []store.Secret{{Name: ServerCertSecret, CertPEM: []byte("c"), KeyPEM: []byte("k")}, {Name: ClientCASecret, CA: []byte("ca")}}
	for mode, require := range map[string]bool{"require": true, "optional": false} {
		o := opt
		o.HTTPSPort, o.ClientCertificates = 8443, mode
		c, errs := Build(examples(t), secrets, o)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		eds, _ := Endpoints(c.Sets, nil)
		if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), msgs(c.Secrets)); err != nil {
			t.Fatal(err)
		}
		var down tlsv3.DownstreamTlsContext
		for _, l := range c.Listeners {
			if l := l.(*listenerv3.Listener); l.Name == ListenerHTTPS {
				l.FilterChains[0].TransportSocket.GetTypedConfig().UnmarshalTo(&down)
			}
		}
		if down.GetRequireClientCertificate().GetValue() != require ||
			down.CommonTlsContext.GetValidationContextSdsSecretConfig().GetName() != ClientCASecret ||
			strings.Join(down.CommonTlsContext.AlpnProtocols, ",") != "h2,http/1.1" {
			t.Errorf("%s: downstream TLS %v", mode, &down)
		}
	}
}

// A WSO2 CORS policy: preflights are answered by Envoy's CORS filter on their own routes,
// with the enforcer off there; every route of the API carries the policy.
func TestCORS(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: Web, version: v1}
x-tollgate-production-endpoints: ["http://10.0.0.1:80"]
x-wso2-cors:
  corsConfigurationEnabled: true
  accessControlAllowOrigins: ["https://app.example.com"]
  accessControlAllowCredentials: true
  accessControlAllowHeaders: [authorization, content-type]
  accessControlAllowMethods: [GET, POST, OPTIONS]
paths:
  /items: {get: {responses: {"200": {description: ok}}}, post: {responses: {"201": {description: ok}}}}
  /items/{id}: {get: {responses: {"200": {description: ok}}}}
`
	c := buildDoc(t, doc).cfg
	routes := c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts[0].Routes
	preflights := 0
	for _, r := range routes {
		var pol corsv3.CorsPolicy
		if err := r.TypedPerFilterConfig[corsFilter].UnmarshalTo(&pol); err != nil {
			t.Fatalf("%s has no CORS policy", r.Name)
		}
		if pol.AllowOriginStringMatch[0].GetExact() != "https://app.example.com" || !pol.AllowCredentials.GetValue() || pol.AllowMethods != "GET,POST,OPTIONS" {
			t.Errorf("policy %v", &pol)
		}
		if strings.Contains(r.Name, "preflight") {
			preflights++
			var per extauthzv3.ExtAuthzPerRoute
			r.TypedPerFilterConfig[extAuthzFilter].UnmarshalTo(&per)
			if !per.GetDisabled() {
				t.Errorf("the enforcer must be off for preflights: %s", r.Name)
			}
		}
	}
	if preflights != 2 || !strings.Contains(routes[0].Name, "preflight") {
		t.Errorf("%d preflight routes (want one per path, first)", preflights)
	}
	// CORS filter sits before ext_authz.
	var hcm hcmv3.HttpConnectionManager
	c.Listeners[0].(*listenerv3.Listener).FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&hcm)
	if hcm.HttpFilters[0].Name != corsFilter || hcm.HttpFilters[1].Name != extAuthzFilter {
		t.Errorf("filter order %v", hcm.HttpFilters)
	}
}

// Real definitions name their backends by host name: Envoy resolves those itself (a
// STRICT_DNS cluster), and they never go over EDS.
func TestHostNameBackendsAreResolvedByEnvoy(t *testing.T) {
	c, errs := Build([]*apimodel.API{parseFile(t, "..", "..", "internal", "apimodel", "openapi", "testdata", "wso2-swagger2.yaml")}, nil, opt)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	eds, errs := Endpoints(c.Sets, nil)
	if len(errs) > 0 || len(eds) != 0 {
		t.Fatalf("EDS %v errs %v", eds, errs)
	}
	if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), nil); err != nil {
		t.Fatal(err)
	}
	var backend *clusterv3.Cluster
	for _, r := range c.Clusters {
		if cl := r.(*clusterv3.Cluster); cl.Name != "tollgate_authz" {
			backend = cl
		}
	}
	sa := backend.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	if backend.GetType() != clusterv3.Cluster_STRICT_DNS || sa.GetAddress() != "petstore.swagger.io" || sa.GetPortValue() != 443 || backend.TransportSocket == nil {
		t.Errorf("backend cluster %v", backend)
	}
	// A set may not mix host names and discovery keys.
	a := &apimodel.API{Name: "m", Version: "v1", BasePath: "/m", Production: apimodel.Endpoints{URLs: []apimodel.Endpoint{{URL: "http://svc.internal"}, {Discovery: "k", URL: "http://10.0.0.1"}}},
		Operations: []apimodel.Operation{{Method: "GET", Path: "/a"}}}
	a.Validate()
	if _, errs := Build([]*apimodel.API{a}, nil, opt); len(errs) != 1 {
		t.Errorf("mixed set: %v", errs)
	}
}

// xds.authzTLS: Envoy's cluster of the enforcer speaks (mutual) TLS, verifying the
// enforcer's certificate against the CA file and its DNS SAN against the name it sends.
func TestAuthzClusterTLS(t *testing.T) {
	o := opt
	o.AuthzTLS = FileTLS{CAFile: "/etc/envoy/tollgate-ca.pem", CertFile: "/etc/envoy/envoy.pem", KeyFile: "/etc/envoy/envoy-key.pem", ServerName: "authz.internal"}
	c, errs := Build(examples(t), nil, o)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	eds, _ := Endpoints(c.Sets, nil)
	if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), nil); err != nil {
		t.Fatal(err)
	}
	var authz *clusterv3.Cluster
	for _, r := range c.Clusters {
		if cl := r.(*clusterv3.Cluster); cl.Name == "tollgate_authz" {
			authz = cl
		}
	}
	var up tlsv3.UpstreamTlsContext
	if authz == nil || authz.GetTransportSocket().GetTypedConfig().UnmarshalTo(&up) != nil {
		t.Fatalf("the enforcer's cluster has no TLS: %v", authz)
	}
	vc := up.GetCommonTlsContext().GetValidationContext()
	if up.Sni != "authz.internal" || vc.GetTrustedCa().GetFilename() != "/etc/envoy/tollgate-ca.pem" || vc.GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact() != "authz.internal" ||
		up.GetCommonTlsContext().GetTlsCertificates()[0].GetCertificateChain().GetFilename() != "/etc/envoy/envoy.pem" {
		t.Errorf("the enforcer's TLS %v", &up)
	}
	plain, _ := Build(examples(t), nil, opt)
	for _, r := range plain.Clusters {
		if cl := r.(*clusterv3.Cluster); cl.Name == "tollgate_authz" && cl.TransportSocket != nil {
			t.Errorf("without authzTLS the enforcer's cluster has TLS")
		}
	}
}

// Only validated operations' routes buffer the body for the Check, up to their limit, and
// the route's buffer limit is the same.
func TestValidatedRoutesSendTheirBody(t *testing.T) {
	a := &apimodel.API{Name: "v", Version: "v1", BasePath: "/v",
		Production: apimodel.Endpoints{URLs: []apimodel.Endpoint{{URL: "http://10.0.0.1"}}},
		Sandbox:    apimodel.Endpoints{URLs: []apimodel.Endpoint{{URL: "http://10.0.0.2"}}},
		Operations: []apimodel.Operation{{Method: "POST", Path: "/a", Validation: &apimodel.Validation{Request: true, MaxBody: 65536}}, {Method: "GET", Path: "/a"}}}
	if ps := a.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	c, _ := Build([]*apimodel.API{a}, nil, opt)
	eds, _ := Endpoints(c.Sets, nil)
	if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), nil); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts[0].Routes {
		if r.GetRoute() == nil {
			continue
		}
		var per extauthzv3.ExtAuthzPerRoute
		if err := r.TypedPerFilterConfig[extAuthzFilter].UnmarshalTo(&per); err != nil {
			t.Fatal(err)
		}
		body := per.GetCheckSettings().GetWithRequestBody()
		if strings.HasPrefix(r.Name, "v/v1 POST /a") {
			seen++
			if body.GetMaxRequestBytes() != 65536 || !body.GetPackAsBytes() || body.GetAllowPartialMessage() || r.GetRequestBodyBufferLimit().GetValue() != 65536 {
				t.Errorf("%s: body %v, buffer limit %v", r.Name, body, r.GetRequestBodyBufferLimit())
			}
		} else if body != nil || r.GetRequestBodyBufferLimit() != nil {
			t.Errorf("%s buffers the body though it does not validate", r.Name)
		}
	}
	if seen != 2 {
		t.Errorf("%d validated routes, want production and sandbox", seen)
	}
}

// Only operations with response validation enable the (disabled) ext_proc filter, with the
// processing they need and the operation in the stream's metadata.
func TestResponseValidationRoutes(t *testing.T) {
	c, _ := Build([]*apimodel.API{parseFile(t, "..", "..", "examples", "bookshelf", "bookshelf.yaml")}, nil, opt)
	eds, _ := Endpoints(c.Sets, nil)
	if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), nil); err != nil {
		t.Fatal(err)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := c.Listeners[0].(*listenerv3.Listener).FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range hcm.HttpFilters {
		names = append(names, f.Name)
		if f.Name == extProcFilter && !f.Disabled {
			t.Error("the ext_proc filter is enabled for every route")
		}
	}
	if strings.Join(names, " ") != "envoy.filters.http.cors envoy.filters.http.ext_authz envoy.filters.http.ext_proc envoy.filters.http.router" {
		t.Errorf("filters %v", names)
	}
	enabled := 0
	for _, r := range c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts[0].Routes {
		cfg, ok := r.TypedPerFilterConfig[extProcFilter]
		if !ok {
			continue
		}
		enabled++
		if !strings.HasPrefix(r.Name, "bookshelf/v1 GET /books/{isbn}") {
			t.Errorf("%s enables ext_proc", r.Name)
		}
		var fc routev3.FilterConfig
		var per extprocv3.ExtProcPerRoute
		if err := cfg.UnmarshalTo(&fc); err != nil || fc.Disabled || fc.GetConfig().UnmarshalTo(&per) != nil {
			t.Fatalf("%s: %v %v", r.Name, err, &fc)
		}
		o := per.GetOverrides()
		m := o.GetProcessingMode()
		if m.GetResponseHeaderMode() != extprocv3.ProcessingMode_SEND || m.GetResponseBodyMode() != extprocv3.ProcessingMode_BUFFERED_PARTIAL ||
			m.GetRequestHeaderMode() != extprocv3.ProcessingMode_SKIP || m.GetRequestBodyMode() != extprocv3.ProcessingMode_NONE {
			t.Errorf("%s processing %v", r.Name, m)
		}
		md := map[string]string{}
		for _, h := range o.GetGrpcInitialMetadata() {
			md[h.Key] = h.Value
		}
		if md[apimodel.ProcessAPIKey] != "bookshelf/v1" || md[apimodel.ProcessOperationKey] != "GET /books/{isbn}" ||
			len(o.GetResponseAttributes()) != 2 || o.GetFailureModeAllow().GetValue() {
			t.Errorf("%s overrides %v", r.Name, o)
		}
	}
	if enabled != 1 {
		t.Errorf("%d routes enable ext_proc, want GET /books/{isbn}'s", enabled)
	}
}

// Envoy's own answers are written in the gateway's error format: a custom template reaches
// every local reply kind, with the request's values as Envoy's command operators, and the
// 405s.
func TestLocalRepliesInTheErrorFormat(t *testing.T) {
	tmpl, err := errfmt.Parse(`{"error":{"code":{{.Code}},"status":{{.Status}},"message":{{json .Message}},"request":{{json .RequestID}},"api":{{json .API}}}}`, "application/vnd.acme.error+json")
	if err != nil {
		t.Fatal(err)
	}
	o := opt
	o.Faults = tmpl
	c, _ := Build(examples(t), nil, o)
	eds, _ := Endpoints(c.Sets, nil)
	if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), nil); err != nil {
		t.Fatal(err)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := c.Listeners[0].(*listenerv3.Listener).FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	mappers := hcm.GetLocalReplyConfig().GetMappers()
	if len(mappers) != len(localReplies) {
		t.Fatalf("%d mappers", len(mappers))
	}
	byStatus := map[uint32]string{}
	for _, m := range mappers {
		f := m.GetBodyFormatOverride()
		if f.GetContentType() != "application/vnd.acme.error+json" {
			t.Errorf("content type %q", f.GetContentType())
		}
		byStatus[m.GetStatusCode().GetValue()] = f.GetTextFormatSource().GetInlineString()
	}
	for status, want := range map[uint32]string{
		404: `{"error":{"code":900906,"status":404,"message":"No matching resource found in the API for the given request","request":"%REQ(X-REQUEST-ID)%","api":""}}`,
		504: `{"error":{"code":101504,"status":504,"message":"Runtime Error","request":"%REQ(X-REQUEST-ID)%","api":"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:api)%"}}`,
		413: `{"error":{"code":413,"status":413,"message":"Payload Too Large","request":"%REQ(X-REQUEST-ID)%","api":""}}`,
		503: `{"error":{"code":900952,"status":503,"message":"Service Unavailable","request":"%REQ(X-REQUEST-ID)%","api":""}}`,
	} {
		if byStatus[status] != want {
			t.Errorf("%d: %s\nwant %s", status, byStatus[status], want)
		}
	}
	for _, r := range c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts[0].Routes {
		if d := r.GetDirectResponse(); d != nil && d.GetStatus() == 405 {
			if got := d.GetBody().GetInlineString(); !strings.HasPrefix(got, `{"error":{"code":405,"status":405,"message":"Method Not Allowed"`) {
				t.Errorf("%s: %s", r.Name, got)
			}
			return
		}
	}
	t.Error("no 405 route")
}
