package xds_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/tollgate-gw/tollgate/xds/build"
)

// scopesOf is the scopes of an SRDS response by key, with their route tables.
func scopesOf(t testing.TB, r *discoverygrpc.DiscoveryResponse) map[string]string {
	out := map[string]string{}
	for _, a := range r.Resources {
		sc := &routev3.ScopedRouteConfiguration{}
		if err := a.UnmarshalTo(sc); err != nil {
			t.Fatal(err)
		}
		out[sc.GetKey().GetFragments()[0].GetStringKey()] = sc.RouteConfigurationName
	}
	return out
}

// With route scopes, an Envoy's listener picks a route table per first path segment, and
// changing one API sends that API's table and nothing else; a new API sends the scopes and
// its own table, not the others'.
func TestScopedRoutesAnAPIChangeSendsItsTableOnly(t *testing.T) {
	p := startPlaneWith(t, build.Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080, RouteScopes: true})
	p.applyData(t, groupAPI("Alpha", "edge", 1))
	p.applyData(t, groupAPI("Beta", "edge", 1))
	c := newADS(t, p.addr, "envoy-scoped", "edge")
	c.clusters(2, true)
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.ListenerType})
	// The first listener may come from before the APIs were read (no API: one table).
	for {
		lds := c.recv(resourcev3.ListenerType)
		c.ack(lds)
		l := &listenerv3.Listener{}
		hcm := &hcmv3.HttpConnectionManager{}
		if lds.Resources[0].UnmarshalTo(l) != nil || l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm) != nil {
			t.Fatal("no HTTP connection manager in the listener")
		}
		if hcm.GetScopedRoutes() != nil {
			break
		}
	}
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.ScopedRouteType})
	srds := c.recv(resourcev3.ScopedRouteType)
	for len(scopesOf(t, srds)) < 2 {
		c.ack(srds)
		srds = c.recv(resourcev3.ScopedRouteType)
	}
	scopes := scopesOf(t, srds)
	if scopes["alpha"] != build.ScopeRouteName("alpha") || scopes["beta"] != build.ScopeRouteName("beta") {
		t.Fatalf("scopes %v", scopes)
	}
	c.ack(srds)
	tables := []string{scopes["alpha"], scopes["beta"]}
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: tables})
	rds := c.recv(resourcev3.RouteType)
	if len(rds.Resources) != 2 {
		t.Fatalf("%d route tables for 2 scopes", len(rds.Resources))
	}
	c.ack(rds, tables...)
	c.settle(300 * time.Millisecond)

	// One API changes: its table comes, alone.
	p.applyData(t, groupAPI("Alpha", "edge", 3))
	rds = c.recv(resourcev3.RouteType)
	if len(rds.Resources) != 1 {
		t.Fatalf("an API change sent %d route tables", len(rds.Resources))
	}
	rc := &routev3.RouteConfiguration{}
	rds.Resources[0].UnmarshalTo(rc)
	if rc.Name != scopes["alpha"] || !strings.Contains(rds.String(), "/alpha/v1/p2") {
		t.Fatalf("the change sent %s", rc.Name)
	}
	c.ack(rds, tables...)
	c.quiet(300*time.Millisecond, "an API change must send its route table only")

	// A new API: the scopes (all of them, as SRDS is state of the world), then its table.
	p.applyData(t, groupAPI("Gamma", "edge", 1))
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(got, resourcev3.RouteType) && time.Now().Before(deadline) {
		select {
		case r := <-c.in:
			got = append(got, r.TypeUrl)
			switch r.TypeUrl {
			case resourcev3.ScopedRouteType:
				scopes = scopesOf(t, r)
				c.ack(r)
				tables = append(tables, scopes["gamma"])
				c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: tables, VersionInfo: rds.VersionInfo, ResponseNonce: rds.Nonce})
			case resourcev3.RouteType:
				rds = r
				if len(r.Resources) != 1 || !strings.Contains(r.String(), "/gamma/v1/p0") {
					t.Errorf("the new API's subscription sent %d tables", len(r.Resources))
				}
			default:
				c.ack(r)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(scopes) != 3 {
		t.Errorf("scopes after a new API: %v", scopes)
	}
	if slices.Contains(got, resourcev3.ListenerType) {
		t.Errorf("a new API resent the listeners: %v", got)
	}
}

// A type the control plane does not serve ends the stream with an error naming it,
// instead of a cache made for whatever type URL a client sends.
func TestUnservedTypeEndsTheStream(t *testing.T) {
	p := startPlane(t)
	c := newADS(t, p.addr, "envoy-odd", "edge")
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: "type.googleapis.com/example.NotAType"})
	select {
	case r, ok := <-c.in:
		if ok && r != nil {
			t.Fatalf("an unserved type was answered: %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream of an unserved type stayed open")
	}
	if _, err := c.stream.Recv(); err == nil || !strings.Contains(err.Error(), "not served") {
		t.Errorf("stream error %v", err)
	}
}
