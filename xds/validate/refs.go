package validate

import (
	"errors"
	"fmt"
	"maps"
	"slices"

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
	var k setCheck
	tables, scopes := splitScopes(routes)
	k.messages(listeners, tables, clusters, endpoints, secrets)
	for _, sc := range scopes {
		k.add(Message(sc))
	}
	internal := map[string]bool{}
	for _, m := range listeners {
		if l := m.(*listenerv3.Listener); l.GetInternalListener() != nil {
			internal[l.GetName()] = true
		}
	}
	clusterNames, eds := k.clusters(clusters, internal)
	k.endpoints(endpoints, eds)
	named := make([]listenerRefs, len(listeners))
	inline := []proto.Message{}
	for i, m := range listeners {
		named[i] = refs(m.(*listenerv3.Listener))
		for _, rc := range named[i].inline {
			inline = append(inline, rc)
		}
	}
	routeNames := k.routeTables(tables, clusterNames)
	k.routeTables(inline, clusterNames)
	k.scopes(scopes, routeNames)
	secretNames := map[string]bool{}
	for _, m := range secrets {
		secretNames[m.(*tlsv3.Secret).GetName()] = true
	}
	k.listeners(listeners, named, len(scopes) > 0, routeNames, secretNames)
	return errors.Join(k.errs...)
}

// setCheck gathers what Set finds, step by step.
type setCheck struct{ errs []error }

func (k *setCheck) add(err error) {
	if err != nil {
		k.errs = append(k.errs, err)
	}
}

func (k *setCheck) addf(format string, args ...any) { k.add(fmt.Errorf(format, args...)) }

// splitScopes tells the scoped route configurations from the route tables.
func splitScopes(routes []proto.Message) (tables []proto.Message, scopes []*routev3.ScopedRouteConfiguration) {
	for _, m := range routes {
		if sc, ok := m.(*routev3.ScopedRouteConfiguration); ok {
			scopes = append(scopes, sc)
		} else {
			tables = append(tables, m)
		}
	}
	return tables, scopes
}

// messages checks each resource on its own.
func (k *setCheck) messages(groups ...[]proto.Message) {
	for _, group := range groups {
		for _, m := range group {
			k.add(Message(m))
		}
	}
}

// clusters checks that every internal address a cluster sends to is an internal listener;
// it returns the cluster names and the EDS ones.
func (k *setCheck) clusters(clusters []proto.Message, internal map[string]bool) (names, eds map[string]bool) {
	names, eds = map[string]bool{}, map[string]bool{}
	for _, m := range clusters {
		c := m.(*clusterv3.Cluster)
		names[c.GetName()] = true
		if c.GetType() == clusterv3.Cluster_EDS {
			eds[c.GetName()] = true
		}
		for _, l := range c.GetLoadAssignment().GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				if n := e.GetEndpoint().GetAddress().GetEnvoyInternalAddress().GetServerListenerName(); n != "" && !internal[n] {
					k.addf("cluster %q sends to internal listener %q, which does not exist", c.GetName(), n)
				}
			}
		}
	}
	return names, eds
}

// endpoints checks that the assignments and the EDS clusters match one to one.
func (k *setCheck) endpoints(endpoints []proto.Message, eds map[string]bool) {
	want := maps.Clone(eds)
	for _, m := range endpoints {
		cla := m.(*endpointv3.ClusterLoadAssignment)
		if !eds[cla.GetClusterName()] {
			k.addf("endpoints for %q, which is not an EDS cluster", cla.GetClusterName())
		}
		delete(want, cla.GetClusterName())
	}
	for _, n := range slices.Sorted(maps.Keys(want)) {
		k.addf("EDS cluster %q has no endpoints", n)
	}
}

// routeTables checks that no domain is in two virtual hosts of a table and every route's
// cluster exists; it returns the tables' names.
func (k *setCheck) routeTables(tables []proto.Message, clusters map[string]bool) map[string]bool {
	names := map[string]bool{}
	for _, m := range tables {
		rc := m.(*routev3.RouteConfiguration)
		names[rc.GetName()] = true
		domains := map[string]string{}
		for _, vh := range rc.GetVirtualHosts() {
			for _, d := range vh.GetDomains() {
				if prev, dup := domains[d]; dup {
					k.addf("route table %q: domain %q is in virtual hosts %q and %q", rc.GetName(), d, prev, vh.GetName())
				}
				domains[d] = vh.GetName()
			}
			for _, r := range vh.GetRoutes() {
				if c := r.GetRoute().GetCluster(); c != "" && !clusters[c] {
					k.addf("route %q names cluster %q, which does not exist", r.GetName(), c)
				}
			}
		}
	}
	return names
}

// scopes checks that scopes have distinct names and keys and name served route tables.
func (k *setCheck) scopes(scopes []*routev3.ScopedRouteConfiguration, tables map[string]bool) {
	names, keys := map[string]bool{}, map[string]string{}
	for _, sc := range scopes {
		if names[sc.GetName()] {
			k.addf("two scopes are named %q", sc.GetName())
		}
		names[sc.GetName()] = true
		key := fmt.Sprint(sc.GetKey().GetFragments())
		if prev, dup := keys[key]; dup {
			k.addf("scopes %q and %q have the same key", prev, sc.GetName())
		}
		keys[key] = sc.GetName()
		if !tables[sc.GetRouteConfigurationName()] {
			k.addf("scope %q uses route table %q, which does not exist", sc.GetName(), sc.GetRouteConfigurationName())
		}
	}
}

// listeners checks that what each listener names is served.
func (k *setCheck) listeners(listeners []proto.Message, named []listenerRefs, scoped bool, tables, secrets map[string]bool) {
	for i, m := range listeners {
		l := m.(*listenerv3.Listener)
		if named[i].scoped && !scoped {
			k.addf("listener %q uses scoped routes, but no scope is served", l.GetName())
		}
		for _, rds := range named[i].rds {
			if !tables[rds] {
				k.addf("listener %q uses route table %q, which does not exist", l.GetName(), rds)
			}
		}
		for _, sds := range named[i].sds {
			if !secrets[sds] {
				k.addf("listener %q uses secret %q, which does not exist", l.GetName(), sds)
			}
		}
	}
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
