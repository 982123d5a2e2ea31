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
	var out bytes.Buffer
	err = bootstrap.Execute(&out, map[string]any{
		"NodeID": strconv.Quote(b.NodeID), "Cluster": strconv.Quote(b.Cluster),
		"XDSHost": host, "XDSPort": p, "XDSType": kind, "AdminPort": b.AdminPort,
		"MaxHeapBytes": b.MaxHeapBytes, "MaxConnections": b.MaxConnections, "APIType": map[bool]string{false: "GRPC", true: "DELTA_GRPC"}[b.Delta],
	})
	return out.Bytes(), err
}
