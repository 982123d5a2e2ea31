package main

import (
	"flag"
	"os"

	"github.com/tollgate-gw/tollgate/envoy"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/defaults"
)

// bootstrapCmd prints the Envoy bootstrap that connects an Envoy to the control plane.
func bootstrapCmd(args []string) error {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	configFile := fs.String("config", "", "config file (for xds.listen)")
	nodeID := fs.String("node-id", "", "the Envoy's node id (required)")
	cluster := fs.String("cluster", defaults.NodeGroup, "the Envoy's node cluster: its gateway group")
	xdsAddr := fs.String("xds", "", "host:port where Envoy reaches the control plane (default: the config's xds.listen)")
	adminPort := fs.Int("admin-port", 9901, "Envoy's admin port (on 127.0.0.1)")
	maxHeap := fs.Uint64("max-heap-mb", 2048, "Envoy's heap limit for the overload manager: it sheds load at 95% and stops accepting requests at 98%")
	maxConns := fs.Uint64("max-connections", 50000, "most client connections Envoy accepts at once")
	if err := fs.Parse(args); err != nil {
		return errReported
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		return err
	}
	if *xdsAddr == "" {
		*xdsAddr = cfg.XDS.Listen
	}
	out, err := envoy.Bootstrap{NodeID: *nodeID, Cluster: *cluster, XDS: *xdsAddr, AdminPort: *adminPort,
		MaxHeapBytes: *maxHeap << 20, MaxConnections: *maxConns}.Render()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
