// Package kube follows Kubernetes Services for endpoints written
// k8s://NAMESPACE/SERVICE:PORT: their EndpointSlices, through client-go informers, become
// discovery values (the JSON list of URLs an etcd discovery key holds) that the control
// plane pushes over EDS like etcd's. Only ready endpoints count — terminating ones are
// drained — IPv4 and IPv6 alike, the port found by number or by name. The informers keep
// the last state while the API server is away, so the addresses stay as they were.
package kube

import (
	"encoding/json"
	"net"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// Key is a Service port (apimodel.KubeKey): k8s://NAMESPACE/SERVICE:PORT.
type Key = apimodel.KubeKey

// ParseKey reads k8s://NAMESPACE/SERVICE:PORT.
func ParseKey(s string) (Key, error) { return apimodel.ParseKubeKey(s) }

// Value is the discovery value of a key from its Service and the Service's EndpointSlices:
// the sorted JSON list of http://ADDRESS:PORT of every ready endpoint that serves the port
// ([] when none, or when the Service is gone). A port number is the Service's port, which
// the slices list by its name with the target port's number.
func Value(k Key, svc *corev1.Service, slices []*discoveryv1.EndpointSlice) string {
	seen := map[string]bool{}
	urls := []string{}
	name, known := portName(k, svc)
	for _, s := range slices {
		if !known {
			break
		}
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue // FQDN slices: not addresses Envoy takes over EDS
		}
		port, ok := slicePort(s, name)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			if !ready(ep) {
				continue
			}
			for _, a := range ep.Addresses {
				if net.ParseIP(a) == nil {
					continue
				}
				u := "http://" + net.JoinHostPort(a, strconv.Itoa(int(port)))
				if !seen[u] {
					seen[u] = true
					urls = append(urls, u)
				}
			}
		}
	}
	sort.Strings(urls)
	b, _ := json.Marshal(urls)
	return string(b)
}

// ready: Kubernetes says the endpoint is ready (an unset condition means ready) and it is
// not terminating.
func ready(ep discoveryv1.Endpoint) bool {
	c := ep.Conditions
	if c.Terminating != nil && *c.Terminating {
		return false
	}
	return c.Ready == nil || *c.Ready
}

// portName is the name of the Service port the key names ("" for a Service's one unnamed
// port); known is false when the Service is gone or has no such port.
func portName(k Key, svc *corev1.Service) (string, bool) {
	if svc == nil {
		return "", false
	}
	n, err := strconv.Atoi(k.Port)
	for _, p := range svc.Spec.Ports {
		if err == nil && int(p.Port) == n || err != nil && p.Name == k.Port {
			return p.Name, true
		}
	}
	return "", false
}

// slicePort is the slice's port of that name.
func slicePort(s *discoveryv1.EndpointSlice, name string) (int32, bool) {
	for _, p := range s.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		if p.Port != nil && pn == name {
			return *p.Port, true
		}
	}
	return 0, false
}
