package validate

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Set checks a whole set of resources about to be served together: each one with Message,
// and their references — every route's cluster exists (routes inlined in a listener too),
// every EDS cluster has endpoints, every RDS name and SDS secret a listener names is
// served, every route table a scope names is served and no two scopes have one key, every
// internal address a cluster names is an internal listener, and no domain is claimed by
// two virtual hosts of one route table (Envoy refuses all of these). routes holds the
// route tables and the scoped route configurations that pick them.
func Set(listeners, routes, clusters, endpoints, secrets []proto.Message) error {
	var errs []error
	var scopes []*routev3.ScopedRouteConfiguration
	tablesOnly := routes[:0:0]
	for _, m := range routes {
		if sc, ok := m.(*routev3.ScopedRouteConfiguration); ok {
			scopes = append(scopes, sc)
		} else {
			tablesOnly = append(tablesOnly, m)
		}
	}
	routes = tablesOnly
	for _, group := range [][]proto.Message{listeners, routes, clusters, endpoints, secrets} {
		for _, m := range group {
			if err := Message(m); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, sc := range scopes {
		if err := Message(sc); err != nil {
			errs = append(errs, err)
		}
	}
	clusterNames, edsNames, routeNames, secretNames := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	internal := map[string]bool{}
	for _, m := range listeners {
		if l := m.(*listenerv3.Listener); l.GetInternalListener() != nil {
			internal[l.GetName()] = true
		}
	}
	for _, m := range clusters {
		c := m.(*clusterv3.Cluster)
		clusterNames[c.GetName()] = true
		if c.GetType() == clusterv3.Cluster_EDS {
			edsNames[c.GetName()] = true
		}
		for _, l := range c.GetLoadAssignment().GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				if n := e.GetEndpoint().GetAddress().GetEnvoyInternalAddress().GetServerListenerName(); n != "" && !internal[n] {
					errs = append(errs, fmt.Errorf("cluster %q sends to internal listener %q, which does not exist", c.GetName(), n))
				}
			}
		}
	}
	for _, m := range endpoints {
		cla := m.(*endpointv3.ClusterLoadAssignment)
		if !edsNames[cla.GetClusterName()] {
			errs = append(errs, fmt.Errorf("endpoints for %q, which is not an EDS cluster", cla.GetClusterName()))
		}
		delete(edsNames, cla.GetClusterName())
	}
	for n := range edsNames {
		errs = append(errs, fmt.Errorf("EDS cluster %q has no endpoints", n))
	}
	for _, m := range secrets {
		secretNames[m.(*tlsv3.Secret).GetName()] = true
	}
	named := make([]listenerRefs, len(listeners))
	tables := routes
	for i, m := range listeners {
		named[i] = refs(m.(*listenerv3.Listener))
		for _, rc := range named[i].inline {
			tables = append(tables, rc)
		}
	}
	for i, m := range tables {
		rc := m.(*routev3.RouteConfiguration)
		if i < len(routes) {
			routeNames[rc.GetName()] = true
		}
		domains := map[string]string{}
		for _, vh := range rc.GetVirtualHosts() {
			for _, d := range vh.GetDomains() {
				if prev, dup := domains[d]; dup {
					errs = append(errs, fmt.Errorf("route table %q: domain %q is in virtual hosts %q and %q", rc.GetName(), d, prev, vh.GetName()))
				}
				domains[d] = vh.GetName()
			}
			for _, r := range vh.GetRoutes() {
				if c := r.GetRoute().GetCluster(); c != "" && !clusterNames[c] {
					errs = append(errs, fmt.Errorf("route %q names cluster %q, which does not exist", r.GetName(), c))
				}
			}
		}
	}
	scopeNames, scopeKeys := map[string]bool{}, map[string]string{}
	for _, sc := range scopes {
		if scopeNames[sc.GetName()] {
			errs = append(errs, fmt.Errorf("two scopes are named %q", sc.GetName()))
		}
		scopeNames[sc.GetName()] = true
		key := fmt.Sprint(sc.GetKey().GetFragments())
		if prev, dup := scopeKeys[key]; dup {
			errs = append(errs, fmt.Errorf("scopes %q and %q have the same key", prev, sc.GetName()))
		}
		scopeKeys[key] = sc.GetName()
		if !routeNames[sc.GetRouteConfigurationName()] {
			errs = append(errs, fmt.Errorf("scope %q uses route table %q, which does not exist", sc.GetName(), sc.GetRouteConfigurationName()))
		}
	}
	for i, m := range listeners {
		l := m.(*listenerv3.Listener)
		if named[i].scoped && len(scopes) == 0 {
			errs = append(errs, fmt.Errorf("listener %q uses scoped routes, but no scope is served", l.GetName()))
		}
		for _, rds := range named[i].rds {
			if !routeNames[rds] {
				errs = append(errs, fmt.Errorf("listener %q uses route table %q, which does not exist", l.GetName(), rds))
			}
		}
		for _, sds := range named[i].sds {
			if !secretNames[sds] {
				errs = append(errs, fmt.Errorf("listener %q uses secret %q, which does not exist", l.GetName(), sds))
			}
		}
	}
	return errors.Join(errs...)
}

// listenerRefs is what a listener refers to: RDS route tables and SDS secrets by name, and
// the route tables it holds inline.
type listenerRefs struct {
	rds, sds []string
	scoped   bool // it picks route tables by scope (SRDS)
	inline   []*routev3.RouteConfiguration
}

// refs finds a listener's references, inside its Anys, in one walk.
func refs(l *listenerv3.Listener) listenerRefs {
	var out listenerRefs
	var visit func(m protoreflect.Message)
	visit = func(m protoreflect.Message) {
		if !m.IsValid() {
			return
		}
		switch t := m.Interface().(type) {
		case *anypb.Any:
			if inner, err := t.UnmarshalNew(); err == nil {
				visit(inner.ProtoReflect())
			}
			return
		case *hcmv3.Rds:
			out.rds = append(out.rds, t.GetRouteConfigName())
		case *hcmv3.ScopedRoutes:
			out.scoped = true
		case *tlsv3.SdsSecretConfig:
			out.sds = append(out.sds, t.GetName())
		case *routev3.RouteConfiguration:
			out.inline = append(out.inline, t)
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
				for i := 0; i < v.List().Len(); i++ {
					visit(v.List().Get(i).Message())
				}
			case fd.IsMap():
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool { visit(mv.Message()); return true })
				}
			case fd.Kind() == protoreflect.MessageKind:
				visit(v.Message())
			}
			return true
		})
	}
	visit(l.ProtoReflect())
	return out
}
