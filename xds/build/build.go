// Package build turns the API model into Envoy resources with pure functions: model in,
// protos out. Config builds listeners, routes, clusters and secrets from the APIs; Endpoints
// builds the ClusterLoadAssignments from the endpoint sets Config found and the discovery
// values read from etcd, so that an endpoint change rebuilds only EDS.
package build

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/defaults"
	"github.com/tollgate-gw/tollgate/internal/edge"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// Options are the gateway-wide settings of generated resources.
type Options struct {
	// AuthzCluster names the cluster of the enforcer; AuthzAddress is its host:port.
	AuthzCluster string
	AuthzAddress string
	AuthzTimeout time.Duration
	// AuthzTLS, when its CAFile is set, makes Envoy speak TLS to the enforcer: files on the
	// Envoy's host, and the name the enforcer's certificate must carry.
	AuthzTLS FileTLS
	// HTTPPort is the plain HTTP listener's port (0: none). HTTPSPort is the TLS listener's
	// (0: none); it needs a server certificate (Secrets).
	HTTPPort  uint32
	HTTPSPort uint32
	// ClientCertificates is "" (none), "optional" (ask; the enforcer decides) or "require"
	// (the handshake fails without a certificate signed by the client CA).
	ClientCertificates string
	// RouteTimeout bounds one upstream request (default 15s).
	RouteTimeout time.Duration
	// ConnectTimeout bounds a connection to a backend (default 5s).
	ConnectTimeout time.Duration
	// UpstreamCAFile is the trust store, on the Envoy host, that verifies https backends
	// without a CA of their own (default /etc/ssl/certs/ca-certificates.crt).
	UpstreamCAFile string
	// Edge is how the gateway's listeners face clients (edge.go).
	Edge edge.Settings
	// Discovery holds the stored endpoints/<key> values: a set found by a key follows the
	// scheme and path of the stored URLs (its route rewrites to that path), not its
	// default URL's.
	Discovery map[string]string
	// FaultFormat of the bodies Envoy answers itself (405): "wso2" (default) or "problem",
	// as the enforcer's authz.faultFormat.
	FaultFormat string
	// Faults is the gateway's error format (config.FaultTemplate): Envoy's own local
	// replies (no route, no healthy upstream, an upstream timeout, a body too large, the
	// enforcer unreachable) are written in it; nil: as FaultFormat says.
	Faults *errfmt.Template
	// Tracing, when set, turns on Envoy's OpenTelemetry tracer in the gateway's listeners,
	// exporting to the collector at Tracing.Collector (a cluster of its own).
	Tracing *Tracing
	// Analytics, when set, has Envoy send every finished request's access log entry to the
	// enforcer's access log service (internal/analytics) every FlushInterval.
	Analytics *Analytics
	// RouteScopes splits the route table by the first path segment of the base paths,
	// behind Envoy's scoped routes (scopes.go), when every API of the group allows it.
	RouteScopes bool
}

// Tracing is Envoy's OpenTelemetry tracer: the collector's OTLP/gRPC host:port (TLS with
// CAFile, a file on the Envoy's host, when set), the service name, and the percent of
// requests Envoy starts a trace for (a request arriving with a sampled trace context is
// traced whatever it is).
type Tracing struct {
	Collector   string
	CAFile      string
	ServiceName string
	Sampling    float64
}

// OTLPCluster names the collector's cluster.
const OTLPCluster = "tollgate_otlp"

// Analytics is how Envoy sends its access logs to the enforcer.
type Analytics struct{ FlushInterval time.Duration }

// FileTLS is TLS to one of Tollgate's ports from files on the Envoy's host: the CA that
// signed the port's certificate, Envoy's client certificate and key (mutual TLS), and the
// name the port's certificate must carry (sent as SNI, checked as a DNS SAN).
type FileTLS struct {
	CAFile, CertFile, KeyFile, ServerName string
}

// Names of fixed resources.
const (
	RouteConfigName  = "tollgate_routes"
	ListenerHTTP     = "tollgate_http"
	ListenerHTTPS    = "tollgate_https"
	ServerCertSecret = "tollgate_server_cert"
	ClientCASecret   = "tollgate_client_ca"
)

func (o *Options) defaults() {
	o.Edge.Fill()
	if o.AuthzCluster == "" {
		o.AuthzCluster = "tollgate_authz"
	}
	if o.AuthzTimeout == 0 {
		o.AuthzTimeout = 500 * time.Millisecond
	}
	if o.RouteTimeout == 0 {
		o.RouteTimeout = defaults.RouteTimeout
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = defaults.ConnectTimeout
	}
	if o.UpstreamCAFile == "" {
		o.UpstreamCAFile = defaults.UpstreamCAFile
	}
	if o.Faults == nil {
		o.Faults = errfmt.Builtin(o.FaultFormat)
	}
	if o.Faults == nil {
		o.Faults = errfmt.Builtin(defaults.FaultFormat)
	}
}

// Config is everything but endpoints, for one gateway group. Envoys get Listeners, Routes
// and Clusters; proxyless gRPC clients get GRPCListeners (an API listener per gRPC API),
// GRPCRoutes and GRPCClusters (the clusters without the fronts, which send to Envoy's
// internal listeners). Both get the endpoints.
type Config struct {
	Listeners []types.Resource
	Routes    []types.Resource
	// Scopes are the scoped route configurations that pick a route table by path (SRDS),
	// when the routes are scoped; Envoys get them with Routes.
	Scopes []types.Resource
	// Unscoped, when RouteScopes was asked for and the routes are one table, is the API
	// that kept them so.
	Unscoped      string
	GRPCListeners []types.Resource
	GRPCRoutes    []types.Resource
	Clusters      []types.Resource
	GRPCClusters  []types.Resource
	Secrets       []types.Resource
	// Sets are the endpoint sets behind the EDS clusters, by cluster name.
	Sets map[string]EndpointSet
	// fronts are the sets whose URLs differ in scheme or path, by cluster name; their
	// parts are in Sets.
	fronts map[string]EndpointSet
}

// EndpointSet is a distinct set of backends with how to reach them; it becomes one cluster.
type EndpointSet struct {
	Type      apimodel.EndpointsType
	Endpoints []apimodel.Endpoint
	Policy    apimodel.Policy
	TLS       bool // https backends
	// DNS: the set names hosts by name, so Envoy resolves them (a STRICT_DNS cluster)
	// instead of getting addresses over EDS.
	DNS  bool
	SNI  string // host for TLS and the Host header
	Path string // backend path prefix that replaces the base path
	// Parts, when the URLs differ in scheme or path: the set is then a front (a cluster
	// over Envoy internal listeners, one per part) and each part a cluster of its own.
	Parts []EndpointSet
}

// key identifies the set's content; equal sets share a cluster.
func (s EndpointSet) key() string {
	parts := make([]string, len(s.Endpoints))
	for i, e := range s.Endpoints {
		parts[i] = e.String()
	}
	return string(s.Type) + "|" + strings.Join(parts, ",") + "|" + fmt.Sprintf("%+v", s.Policy)
}

// ForGroup says whether an API is served to a gateway group.
func ForGroup(a *apimodel.API, group string) bool {
	if len(a.Gateways) == 0 {
		return true
	}
	for _, g := range a.Gateways {
		if g == group {
			return true
		}
	}
	return false
}

// Build makes the Config for a gateway group from the APIs it serves. Problems with one API
// (endpoints that cannot be routed) are returned; those APIs are left out and the rest built.
func Build(apis []*apimodel.API, secrets []store.Secret, opt Options) (*Config, []error) {
	opt.defaults()
	sort.Slice(apis, func(i, j int) bool { return apis[i].ID() < apis[j].ID() })
	c := &Config{Sets: map[string]EndpointSet{}, fronts: map[string]EndpointSet{}}
	var errs []error
	var routed []apiRoutes
	have := map[string]bool{}
	for _, sec := range secrets {
		have[sec.Name] = true
	}
	for _, a := range apis {
		ar, err := routesFor(a, c, have, opt)
		if err != nil {
			errs = append(errs, fmt.Errorf("API %s: %w", a.ID(), err))
			continue
		}
		routed = append(routed, ar)
	}
	c.Routes, c.GRPCRoutes = routeConfigs(routed, opt)
	scoped := false
	if opt.RouteScopes {
		var byKey map[string][]apiRoutes
		if byKey, scoped = scopedTables(routed); scoped {
			c.Routes, c.Scopes = scopes(byKey)
		}
		for _, ar := range routed {
			if !scoped && scopeKey(ar.api) == "" {
				c.Unscoped = ar.api.ID()
				break
			}
		}
	}
	c.Clusters = clusters(c.Sets, c.fronts, opt)
	c.GRPCClusters = c.Clusters
	if len(c.fronts) > 0 {
		c.GRPCClusters = clusters(c.Sets, nil, opt)
	}
	c.Listeners, c.GRPCListeners = listeners(routed, scoped, opt)
	c.Listeners = append(c.Listeners, internalListeners(c.fronts, opt)...)
	// Serve only the secrets something refers to: Envoy asks for exactly those.
	used := map[string]bool{}
	if opt.HTTPSPort != 0 {
		used[ServerCertSecret] = true
		if opt.ClientCertificates != "" {
			used[ClientCASecret] = true
		}
	}
	for _, set := range c.Sets {
		used[set.Policy.TLS.CA] = true
		used[set.Policy.TLS.ClientCert] = true
	}
	var served []store.Secret
	for _, sec := range secrets {
		if used[sec.Name] {
			served = append(served, sec)
		}
	}
	c.Secrets = secretResources(served)
	return c, errs
}

// endpointSet makes the set for endpoints. URLs that differ in scheme or path cannot share
// one cluster (Envoy rewrites the path per route, not per backend): such a set becomes a
// front over parts, one per scheme and path (fronts.go).
func endpointSet(e apimodel.Endpoints, discovery map[string]string) (EndpointSet, error) {
	s := EndpointSet{Type: e.Type, Endpoints: e.URLs, Policy: e.Policy}
	if s.Type == "" {
		s.Type = apimodel.LoadBalance
	}
	if err := e.Conflicts(); err != nil {
		return s, err
	}
	shapes := make([]EndpointSet, len(e.URLs))
	for i, ep := range e.URLs {
		u, err := url.Parse(ep.URL)
		if err != nil {
			return s, err
		}
		sh := EndpointSet{Path: strings.TrimRight(u.Path, "/"), SNI: u.Hostname()}
		scheme := u.Scheme
		if raw, ok := discovery[ep.Discovery]; ok && ep.Discovery != "" {
			// The service moved: its stored URLs say where, path included.
			if sc, p, ok := DiscoveryShape(raw); ok {
				scheme, sh.Path = sc, p
			}
		}
		sh.TLS = scheme == "https"
		sh.DNS = ep.Discovery == "" && u.Hostname() != "localhost" && net.ParseIP(u.Hostname()) == nil
		if e.Policy.TLS.SNI != "" {
			sh.SNI = e.Policy.TLS.SNI
		}
		shapes[i] = sh
	}
	if parts := partsOf(s, shapes); len(parts) > 1 {
		s.Parts = parts
		return s, nil
	}
	if len(shapes) > 0 {
		s.TLS, s.Path, s.SNI = shapes[0].TLS, shapes[0].Path, shapes[0].SNI
	}
	for _, sh := range shapes {
		s.DNS = s.DNS || sh.DNS
	}
	return s, nil
}

// clusterName names a set by its content, readably: the first backend's host and a hash.
func clusterName(s EndpointSet) string {
	host := "backend"
	if len(s.Endpoints) > 0 {
		if s.Endpoints[0].Discovery != "" {
			host = s.Endpoints[0].Discovery
		} else if u, err := url.Parse(s.Endpoints[0].URL); err == nil {
			host = u.Host
		}
	}
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, host)
	if len(s.Parts) > 0 {
		return "front_" + clean + "_" + shortHash(s.key())
	}
	return "ep_" + clean + "_" + shortHash(s.key()+fmt.Sprint(s.TLS))
}
