package inventory

import (
	"context"
	"fmt"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// Description is an API as the gateway serves it.
type Description struct {
	API        API                    `json:"api"`
	Hosts      []string               `json:"hosts,omitempty"`
	Gateways   []string               `json:"gateways,omitempty"`
	MutualTLS  string                 `json:"mutualTLS,omitempty"`
	Operations []OperationDescription `json:"operations"`
	// Clusters are the Envoy clusters the API's routes go to, with the endpoints Envoy
	// gets for them (from the definition and etcd's discovery keys).
	Clusters []ClusterDescription `json:"clusters"`
	// Problems are why Envoy would not get the API (or part of it).
	Problems []string `json:"problems,omitempty"`
}

// OperationDescription is one operation: its security and throttling.
type OperationDescription struct {
	Method     string `json:"method"`
	Path       string `json:"path"`
	Security   string `json:"security"` // "oauth2[read:menu] or basicAuth", "open"
	Throttling string `json:"throttling,omitempty"`
}

// ClusterDescription is one cluster and its endpoints.
type ClusterDescription struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"` // STATIC, STRICT_DNS, EDS
	Endpoints []string `json:"endpoints"`
}

// Describe is the stored API id as the gateway serves it, built with opt (the control
// plane's options) over etcd's discovery keys.
func (i Inventory) Describe(ctx context.Context, id string, opt build.Options) (Description, error) {
	a, ok, err := i.API(ctx, id)
	if err != nil {
		return Description{}, err
	}
	if !ok {
		return Description{}, &NotFoundError{"API " + id}
	}
	d := Description{API: a}
	if a.model == nil {
		d.Problems = append(d.Problems, a.Problem)
		return d, nil
	}
	m := a.model
	d.Hosts, d.Gateways, d.MutualTLS = m.Hosts, m.Gateways, string(m.MutualTLS)
	for _, op := range m.Operations {
		d.Operations = append(d.Operations, OperationDescription{Method: op.Method, Path: m.BasePath + op.Path,
			Security: apimodel.SecurityText(op.Security), Throttling: op.Throttling})
	}
	eps, err := i.Endpoints(ctx)
	if err != nil {
		return d, err
	}
	discovery := map[string]string{}
	for _, e := range eps {
		v, _ := jsonList(e.URLs)
		discovery[e.Key] = v
	}
	opt.Discovery = discovery
	cfg, errs := build.Build([]*apimodel.API{m}, nil, opt)
	for _, err := range errs {
		d.Problems = append(d.Problems, err.Error())
	}
	cla := map[string]*endpointv3.ClusterLoadAssignment{}
	assignments, errs := build.Endpoints(cfg.Sets, discovery)
	for _, err := range errs {
		d.Problems = append(d.Problems, err.Error())
	}
	for _, r := range assignments {
		c := r.(*endpointv3.ClusterLoadAssignment)
		cla[c.ClusterName] = c
	}
	for _, r := range cfg.Clusters {
		c := r.(*clusterv3.Cluster)
		if c.Name == opt.AuthzCluster || strings.HasPrefix(c.Name, "tollgate_") {
			continue // the gateway's own clusters
		}
		cd := ClusterDescription{Name: c.Name, Type: c.GetType().String()}
		la := c.GetLoadAssignment()
		if c.GetType() == clusterv3.Cluster_EDS {
			la = cla[c.Name]
		}
		cd.Endpoints = addresses(la)
		d.Clusters = append(d.Clusters, cd)
	}
	return d, nil
}

func addresses(la *endpointv3.ClusterLoadAssignment) []string {
	var out []string
	for _, l := range la.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			if sa != nil {
				out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			} else if p := e.GetEndpoint().GetAddress().GetEnvoyInternalAddress(); p != nil {
				out = append(out, "internal:"+p.GetServerListenerName())
			}
		}
	}
	return out
}
