package build

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/xds/validate"
)

// built is one Config with its resources by name.
type built struct {
	cfg       *Config
	clusters  map[string]*clusterv3.Cluster
	listeners map[string]*listenerv3.Listener
	routes    map[string]*routev3.Route
	eds       map[string]*endpointv3.ClusterLoadAssignment
}

func buildDoc(t *testing.T, doc string) built {
	t.Helper()
	res, err := openapi.Parse("doc.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c, errs := Build([]*apimodel.API{res.API}, nil, opt)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	eds, errs := Endpoints(c.Sets, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), msgs(c.Secrets)); err != nil {
		t.Fatal(err)
	}
	b := built{cfg: c, clusters: map[string]*clusterv3.Cluster{}, listeners: map[string]*listenerv3.Listener{}, routes: map[string]*routev3.Route{}, eds: map[string]*endpointv3.ClusterLoadAssignment{}}
	for _, r := range c.Clusters {
		b.clusters[r.(*clusterv3.Cluster).Name] = r.(*clusterv3.Cluster)
	}
	for _, r := range c.Listeners {
		b.listeners[r.(*listenerv3.Listener).Name] = r.(*listenerv3.Listener)
	}
	for _, r := range c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts[0].Routes {
		b.routes[r.Name] = r
	}
	for _, r := range eds {
		b.eds[r.(*endpointv3.ClusterLoadAssignment).ClusterName] = r.(*endpointv3.ClusterLoadAssignment)
	}
	return b
}

// hop follows a request from the front's route through one part: the outer rewrite, the
// internal listener named by the front's endpoint, its rewrite, and the cluster it sends
// to. It returns the path the backend gets and the part's cluster.
func (b built) hop(t *testing.T, r *routev3.Route, lb *endpointv3.LbEndpoint, path string) (string, string) {
	t.Helper()
	outer := r.GetRoute().GetRegexRewrite()
	path = regexp.MustCompile(outer.GetPattern().GetRegex()).ReplaceAllLiteralString(path, outer.GetSubstitution())
	name := lb.GetEndpoint().GetAddress().GetEnvoyInternalAddress().GetServerListenerName()
	l := b.listeners[name]
	if l == nil || l.GetInternalListener() == nil {
		t.Fatalf("front endpoint names %q, not an internal listener", name)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	inner := hcm.GetRouteConfig().VirtualHosts[0].Routes[0].GetRoute()
	if rw := inner.GetRegexRewrite(); rw != nil {
		path = regexp.MustCompile(rw.GetPattern().GetRegex()).ReplaceAllLiteralString(path, rw.GetSubstitution())
	}
	if len(hcm.GetLocalReplyConfig().GetMappers()) != 1 || hcm.LocalReplyConfig.Mappers[0].HeadersToAdd[0].Header.Key != UnreachableHeader {
		t.Errorf("internal listener %s does not mark unreachable parts", name)
	}
	return path, inner.GetCluster()
}

const frontsDoc = `openapi: 3.0.3
info: {title: Pets, version: v3}
x-wso2-basePath: /petstore/v3
x-wso2-production-endpoints:
  urls: [https://10.0.0.1:2380/v1, https://10.0.0.2:2380/v2, https://10.0.0.3:2380/v1]
  type: %s
paths:
  /pet/findByStatus: {get: {responses: {"200": {description: ok}}}}
`

// A load-balanced set whose URLs differ in path (WSO2's load_balance.yaml) is a front
// over one part per path: each request goes to one part, weighted by its URLs, rewritten
// to that part's path; an unreachable part's answer is retried on another part.
func TestLoadBalanceAcrossPaths(t *testing.T) {
	b := buildDoc(t, fmt.Sprintf(frontsDoc, "load_balance"))
	r := b.routes["pets/v3 GET /pet/findByStatus"]
	front := b.clusters[r.GetRoute().GetCluster()]
	if front == nil || front.GetType() != clusterv3.Cluster_STATIC {
		t.Fatalf("route goes to %q, not a front", r.GetRoute().GetCluster())
	}
	locs := front.LoadAssignment.Endpoints
	if len(locs) != 1 || len(locs[0].LbEndpoints) != 2 {
		t.Fatalf("front localities %v", locs)
	}
	want := []struct {
		path   string
		weight uint32
		hosts  int
	}{{"/v1/pet/findByStatus", 2, 2}, {"/v2/pet/findByStatus", 1, 1}}
	for i, lb := range locs[0].LbEndpoints {
		path, part := b.hop(t, r, lb, "/petstore/v3/pet/findByStatus")
		if path != want[i].path || lb.LoadBalancingWeight.GetValue() != want[i].weight {
			t.Errorf("part %d: backend path %q weight %d, want %q weight %d", i, path, lb.LoadBalancingWeight.GetValue(), want[i].path, want[i].weight)
		}
		if cl := b.clusters[part]; cl == nil || cl.TransportSocket == nil {
			t.Errorf("part %d: cluster %q missing or without TLS", i, part)
		}
		if n := len(b.eds[part].GetEndpoints()[0].GetLbEndpoints()); n != want[i].hosts {
			t.Errorf("part %d: %d hosts, want %d", i, n, want[i].hosts)
		}
	}
	rp := r.GetRoute().GetRetryPolicy()
	if rp.GetRetryOn() != "retriable-headers" || rp.GetNumRetries().GetValue() != 1 || rp.GetRetriableHeaders()[0].GetName() != UnreachableHeader || len(rp.GetRetryHostPredicate()) != 1 || rp.GetRetryPriority() != nil {
		t.Errorf("front retry policy %v", rp)
	}
	if len(r.ResponseHeadersToRemove) != 1 || r.ResponseHeadersToRemove[0] != UnreachableHeader {
		t.Errorf("the marker reaches clients: %v", r.ResponseHeadersToRemove)
	}
	// The base path alone becomes the part's path and a slash.
	if path, _ := b.hop(t, r, locs[0].LbEndpoints[1], "/petstore/v3"); path != "/v2/" {
		t.Errorf("base path alone → %q", path)
	}
}

// A failover set whose URLs differ in path (WSO2's fail_over.yaml) tries its parts in the
// order of the URLs: one priority each, a run of one path kept together, and the retry on
// an unreachable part goes to the next priority.
func TestFailoverAcrossPaths(t *testing.T) {
	b := buildDoc(t, fmt.Sprintf(frontsDoc, "failover"))
	r := b.routes["pets/v3 GET /pet/findByStatus"]
	front := b.clusters[r.GetRoute().GetCluster()]
	locs := front.GetLoadAssignment().GetEndpoints()
	if len(locs) != 3 {
		t.Fatalf("want a priority per run of one path (v1, v2, v1), got %v", locs)
	}
	for i, want := range []string{"/v1/pet/findByStatus", "/v2/pet/findByStatus", "/v1/pet/findByStatus"} {
		if locs[i].Priority != uint32(i) {
			t.Errorf("part %d has priority %d", i, locs[i].Priority)
		}
		if path, _ := b.hop(t, r, locs[i].LbEndpoints[0], "/petstore/v3/pet/findByStatus"); path != want {
			t.Errorf("part %d: backend path %q, want %q", i, path, want)
		}
	}
	rp := r.GetRoute().GetRetryPolicy()
	if rp.GetNumRetries().GetValue() != 2 || rp.GetRetryPriority().GetName() != "envoy.retry_priorities.previous_priorities" {
		t.Errorf("failover retry policy %v", rp)
	}
	// Each attempt has the set's timeout; the route allows one per part.
	if got := r.GetRoute().GetTimeout().AsDuration(); got != 3*15*time.Second {
		t.Errorf("route timeout %v, want 3 × the default 15s", got)
	}
}

// Host names and discovery keys cannot share a set, and backend TLS settings need https:
// Validate refuses them with the same check the build makes.
func TestEndpointConflictsAreRefusedByValidate(t *testing.T) {
	for name, e := range map[string]apimodel.Endpoints{
		"host name and discovery key": {URLs: []apimodel.Endpoint{{URL: "http://svc.example:80/a"}, {URL: "http://10.0.0.1/b", Discovery: "k"}}},
		"TLS settings on http":        {URLs: []apimodel.Endpoint{{URL: "https://10.0.0.1/a"}, {URL: "http://10.0.0.2/a"}}, Policy: apimodel.Policy{TLS: apimodel.BackendTLS{CA: "ca"}}},
	} {
		a := &apimodel.API{Name: "m", Version: "v1", BasePath: "/m", Production: e, Operations: []apimodel.Operation{{Method: "GET", Path: "/a"}}}
		if ps := a.Validate(); len(ps) != 1 {
			t.Errorf("%s: Validate says %v", name, ps)
		}
		if _, errs := Build([]*apimodel.API{a}, []store.Secret{{Name: "ca", CA: []byte("x")}}, opt); len(errs) != 1 {
			t.Errorf("%s: Build says %v", name, errs)
		}
	}
}

// Validate and the build agree on every mix of endpoints: what Validate accepts, the
// build serves (nothing accepted is dropped), and what the build cannot serve, Validate
// refuses.
func TestValidateAndBuildAgreeOnEndpoints(t *testing.T) {
	pool := []apimodel.Endpoint{
		{URL: "http://10.0.0.1:80/a"}, {URL: "https://10.0.0.2:443/a"}, {URL: "http://10.0.0.3/b"},
		{URL: "https://svc.example/a"}, {URL: "http://svc.example/c"},
		{URL: "http://10.0.0.4/a", Discovery: "k1"}, {URL: "https://10.0.0.5/d", Discovery: "k2"},
	}
	tried := 0
	for mask := 1; mask < 1<<len(pool); mask++ {
		var urls []apimodel.Endpoint
		for i, e := range pool {
			if mask&(1<<i) != 0 {
				urls = append(urls, e)
			}
		}
		for _, typ := range []apimodel.EndpointsType{apimodel.LoadBalance, apimodel.Failover} {
			for _, ca := range []string{"", "ca"} {
				a := &apimodel.API{Name: "m", Version: "v1", BasePath: "/m", Operations: []apimodel.Operation{{Method: "GET", Path: "/x"}},
					Production: apimodel.Endpoints{Type: typ, URLs: urls, Policy: apimodel.Policy{TLS: apimodel.BackendTLS{CA: ca}}}}
				ps := a.Validate()
				c, errs := Build([]*apimodel.API{a}, []store.Secret{{Name: "ca", CA: []byte("x")}}, opt)
				tried++
				if (len(ps) == 0) != (len(errs) == 0) {
					t.Fatalf("%v %s ca=%q: Validate says %v, Build says %v", urls, typ, ca, ps, errs)
				}
				if len(errs) > 0 {
					continue
				}
				eds, _ := Endpoints(c.Sets, nil)
				if err := validate.Set(msgs(c.Listeners), msgs(c.Routes), msgs(c.Clusters), msgs(eds), msgs(c.Secrets)); err != nil {
					t.Fatalf("%v %s ca=%q: %v", urls, typ, ca, err)
				}
			}
		}
	}
	t.Logf("%d endpoint sets tried", tried)
}
