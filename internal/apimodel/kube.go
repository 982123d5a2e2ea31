package apimodel

import (
	"fmt"
	"strconv"
	"strings"
)

// KubeScheme starts an endpoint that a Kubernetes Service's EndpointSlices give:
// k8s://NAMESPACE/SERVICE:PORT. It is its own discovery key.
const KubeScheme = "k8s://"

// KubeKey is a Service port: PORT is the Service's port number or a port name.
type KubeKey struct {
	Namespace, Service, Port string
}

// ParseKubeKey reads k8s://NAMESPACE/SERVICE:PORT.
func ParseKubeKey(s string) (KubeKey, error) {
	rest, ok := strings.CutPrefix(s, KubeScheme)
	if !ok {
		return KubeKey{}, fmt.Errorf("%q: want %sNAMESPACE/SERVICE:PORT", s, KubeScheme)
	}
	ns, svcPort, ok := strings.Cut(rest, "/")
	svc, port, ok2 := strings.Cut(svcPort, ":")
	if !ok || !ok2 || !dnsLabel(ns) || !dnsLabel(svc) || !servicePort(port) {
		return KubeKey{}, fmt.Errorf("%q: want %sNAMESPACE/SERVICE:PORT (names are DNS labels; the port a number or a port name)", s, KubeScheme)
	}
	return KubeKey{Namespace: ns, Service: svc, Port: port}, nil
}

func (k KubeKey) String() string { return KubeScheme + k.Namespace + "/" + k.Service + ":" + k.Port }

// URL is the Service's cluster address, the stored URL of its endpoint (what routes follow:
// plain http, no path).
func (k KubeKey) URL() string {
	host := k.Service + "." + k.Namespace + ".svc"
	if n, err := strconv.Atoi(k.Port); err == nil {
		return "http://" + host + ":" + strconv.Itoa(n)
	}
	return "http://" + host
}

// dnsLabel: an RFC 1123 label, as Kubernetes names namespaces and Services.
func dnsLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func servicePort(p string) bool {
	if n, err := strconv.Atoi(p); err == nil {
		return n > 0 && n < 65536
	}
	return dnsLabel(p) && len(p) <= 15
}
