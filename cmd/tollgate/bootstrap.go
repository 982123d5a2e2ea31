package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/tollgate-gw/tollgate/envoy"
	"github.com/tollgate-gw/tollgate/internal/defaults"
)

// bootstrapCmd prints the Envoy bootstrap that connects an Envoy to the control plane.
func bootstrapCmd(g *globals) *cobra.Command {
	var b envoy.Bootstrap
	var maxHeapMB uint64
	var output string
	cmd := &cobra.Command{
		Use:   "bootstrap --node-id ID",
		Short: "Print the Envoy bootstrap that connects an Envoy to the control plane",
		Long: `Print the Envoy bootstrap (YAML) that connects an Envoy to the control plane over ADS,
with the overload manager (load shed at 95% of --max-heap-mb, no new requests at 98%) and
a connection limit. The node cluster is the Envoy's gateway group.`,
		Example: `  tollgate bootstrap --node-id envoy-1 > envoy.yaml && envoy -c envoy.yaml
  tollgate bootstrap --node-id edge-1 --cluster edge --xds cp.internal:18000
  tollgate bootstrap --node-id edge-1 --delta     # incremental xDS, for large fleets
  tollgate bootstrap --node-id "$POD_NAME" --xds tollgate-xds:18000 -o /etc/envoy/envoy.yaml
  tollgate bootstrap --node-id edge-1 --xds cp.internal:18000 \
    --tls-ca /etc/envoy/tollgate-ca.pem --tls-cert /etc/envoy/envoy.pem --tls-key /etc/envoy/envoy-key.pem`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if b.XDS == "" {
				b.XDS = cfg.XDS.Listen
			}
			b.MaxHeapBytes = maxHeapMB << 20
			out, err := b.Render()
			if err != nil {
				return err
			}
			if output != "" {
				// An init container without a shell writes it where Envoy (another user)
				// reads it: no secret is in it.
				return os.WriteFile(output, out, 0o644)
			}
			_, err = os.Stdout.Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&b.NodeID, "node-id", "", "the Envoy's node id (required)")
	f.StringVar(&b.Cluster, "cluster", defaults.NodeGroup, "the Envoy's node cluster: its gateway group")
	f.StringVar(&b.XDS, "xds", "", "host:port where Envoy reaches the control plane (default: the configuration's xds.listen)")
	f.IntVar(&b.AdminPort, "admin-port", 9901, "Envoy's admin port (on 127.0.0.1)")
	f.Uint64Var(&maxHeapMB, "max-heap-mb", 2048, "Envoy's heap limit for the overload manager")
	f.Uint64Var(&b.MaxConnections, "max-connections", 50000, "most client connections Envoy accepts at once")
	f.BoolVar(&b.Delta, "delta", false, "incremental (delta) ADS: cheaper for the control plane at fleet scale")
	f.StringVar(&b.TLSCAFile, "tls-ca", "", "TLS to the control plane (xds.serverTLS): the CA file, on the Envoy's host, that signed its certificate")
	f.StringVar(&b.TLSServerName, "tls-server-name", "", "the name in the control plane's certificate, sent as SNI (default: the --xds host when it is a name)")
	f.StringVar(&b.TLSCertFile, "tls-cert", "", "mutual TLS: Envoy's certificate file, on the Envoy's host")
	f.StringVar(&b.TLSKeyFile, "tls-key", "", "mutual TLS: Envoy's key file, on the Envoy's host")
	f.StringVarP(&output, "output", "o", "", "write the bootstrap to this file instead of standard output")
	return cmd
}
