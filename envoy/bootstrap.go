// Package envoy holds the Envoy configuration templates Tollgate prints, and its tests check
// that every Envoy YAML in the repository is one Envoy would load.
package envoy

import (
	"bytes"
	_ "embed"
	"fmt"
	"net"
	"strconv"
	"text/template"
)

//go:embed bootstrap.yaml.tmpl
var bootstrapTemplate string

var bootstrap = template.Must(template.New("bootstrap").Parse(bootstrapTemplate))

// Bootstrap is what an Envoy needs to find the control plane.
type Bootstrap struct {
	NodeID    string
	Cluster   string // the gateway group
	XDS       string // host:port of tollgate xds
	AdminPort int
	// MaxHeapBytes (default 2 GiB) and MaxConnections (default 50,000) feed the overload
	// manager.
	MaxHeapBytes   uint64
	MaxConnections uint64
	// Delta makes the ADS stream incremental (DELTA_GRPC): an ACK no longer restates every
	// resource name, which is what a fleet's control plane spends most on in state of the
	// world.
	Delta bool
	// TLS to the control plane (tollgate xds with xds.serverTLS): files on the Envoy's host.
	// TLSCAFile turns it on; TLSServerName is the name in the control plane's certificate
	// (default: the host of XDS when it is a name); TLSCertFile and TLSKeyFile are Envoy's
	// certificate for mutual TLS.
	TLSCAFile, TLSCertFile, TLSKeyFile, TLSServerName string
}

// Render writes the bootstrap YAML.
func (b Bootstrap) Render() ([]byte, error) {
	host, port, err := net.SplitHostPort(b.XDS)
	if err != nil {
		return nil, fmt.Errorf("xds address %q: %w", b.XDS, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("xds port %q: %w", port, err)
	}
	if b.NodeID == "" || b.Cluster == "" {
		return nil, fmt.Errorf("node id and cluster are required")
	}
	if b.AdminPort == 0 {
		b.AdminPort = 9901
	}
	if b.MaxHeapBytes == 0 {
		b.MaxHeapBytes = 2 << 30
	}
	if b.MaxConnections == 0 {
		b.MaxConnections = 50000
	}
	kind := "STATIC"
	if net.ParseIP(host) == nil {
		kind = "STRICT_DNS"
	}
	tls, err := b.tls(host)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = bootstrap.Execute(&out, map[string]any{"TLS": tls,
		"NodeID": strconv.Quote(b.NodeID), "Cluster": strconv.Quote(b.Cluster),
		"XDSHost": host, "XDSPort": p, "XDSType": kind, "AdminPort": b.AdminPort,
		"MaxHeapBytes": b.MaxHeapBytes, "MaxConnections": b.MaxConnections, "APIType": map[bool]string{false: "GRPC", true: "DELTA_GRPC"}[b.Delta],
	})
	return out.Bytes(), err
}

// tls is the template's view of the TLS settings (nil: plaintext), names quoted for YAML.
func (b Bootstrap) tls(host string) (map[string]string, error) {
	if b.TLSCAFile == "" {
		if b.TLSCertFile != "" || b.TLSKeyFile != "" || b.TLSServerName != "" {
			return nil, fmt.Errorf("TLS to the control plane needs the CA that signed its certificate (--tls-ca)")
		}
		return nil, nil
	}
	if (b.TLSCertFile == "") != (b.TLSKeyFile == "") {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	name := b.TLSServerName
	if name == "" && net.ParseIP(host) == nil {
		name = host
	}
	if name == "" {
		return nil, fmt.Errorf("the control plane is addressed by IP: give the name its certificate carries (--tls-server-name)")
	}
	t := map[string]string{"CA": strconv.Quote(b.TLSCAFile), "ServerName": strconv.Quote(name)}
	if b.TLSCertFile != "" {
		t["Cert"], t["Key"] = strconv.Quote(b.TLSCertFile), strconv.Quote(b.TLSKeyFile)
	}
	return t, nil
}
