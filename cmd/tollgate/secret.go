package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// secretCmd stores or removes TLS material that Envoy gets over SDS: a certificate and key
// (a backend client certificate), or CA certificates (to verify a backend).
func secretCmd(g *globals) *cobra.Command {
	var cert, key, ca string
	put := &cobra.Command{
		Use:   "put NAME (--cert FILE --key FILE | --ca FILE)",
		Short: "Store a certificate and key, or CA certificates, as secrets/NAME",
		Long: `Store TLS material as secrets/NAME after checking it: a certificate chain with its
private key (they must match), or CA certificates. Envoy gets it over SDS.`,
		Example: `  tollgate secret put orders-client --cert client.pem --key client-key.pem
  tollgate secret put orders-ca --ca ca.pem`,
		Args: exactArgs(1),
	}
	pc := addCommon(put.Flags(), g)
	put.Flags().StringVar(&cert, "cert", "", "certificate chain (PEM)")
	put.Flags().StringVar(&key, "key", "", "private key (PEM)")
	put.Flags().StringVar(&ca, "ca", "", "CA certificates (PEM)")
	put.RunE = withStore(pc, func(ctx context.Context, st *store.Store, args []string) error {
		name := args[0]
		if cert == "" && key == "" && ca == "" {
			return usageError{errors.New("give --cert and --key, or --ca")}
		}
		var v store.SecretValue
		for _, f := range []struct {
			path string
			into *string
		}{{cert, &v.Certificate}, {key, &v.PrivateKey}, {ca, &v.CA}} {
			if f.path == "" {
				continue
			}
			b, err := os.ReadFile(f.path)
			if err != nil {
				return err
			}
			*f.into = string(b)
		}
		raw, _ := json.Marshal(v)
		if _, err := store.ParseSecret(name, raw); err != nil {
			return err
		}
		rev, err := st.Put(ctx, store.Secrets+name, string(raw))
		if err != nil {
			return err
		}
		fmt.Printf("stored secret %s at revision %d\n", name, rev)
		return nil
	})
	del := &cobra.Command{Use: "delete NAME", Short: "Remove secrets/NAME",
		Long:    "Remove secrets/NAME. A definition that still names it is left out of Envoy's\nconfiguration until the secret is back.",
		Example: "  tollgate secret delete orders-ca", Args: exactArgs(1)}
	dc := addCommon(del.Flags(), g)
	del.RunE = withStore(dc, func(ctx context.Context, st *store.Store, args []string) error {
		n, rev, err := st.Delete(ctx, store.Secrets+args[0])
		if err != nil {
			return err
		}
		fmt.Printf("deleted secret %s at revision %d%s\n", args[0], rev, notSet(n))
		return nil
	})
	return group("secret", "TLS material for backends, served to Envoy by SDS",
		`Store TLS material in etcd (secrets/NAME) that Envoy gets over SDS: a certificate and key
(a backend's client certificate) or CA certificates (to verify a backend). Definitions name
them in x-tollgate-endpoint-tls; the HTTPS listener's own are tollgate_server_cert and
tollgate_client_ca.`,
		"  tollgate secret put orders-ca --ca ca.pem\n  tollgate secret delete orders-ca", put, del)
}
