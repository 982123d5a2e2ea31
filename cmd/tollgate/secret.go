package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/xds"
)

// secretCmd stores or removes TLS material that Envoy gets over SDS: a certificate and key
// (a backend client certificate), or CA certificates (to verify a backend).
func secretCmd(ctx context.Context, args []string) error {
	if len(args) < 2 || (args[0] != "put" && args[0] != "delete") {
		return fmt.Errorf("usage: tollgate secret put NAME (--cert FILE --key FILE | --ca FILE) | tollgate secret delete NAME")
	}
	verb, name := args[0], args[1]
	fs := flag.NewFlagSet("secret", flag.ContinueOnError)
	var c common
	c.register(fs)
	cert := fs.String("cert", "", "certificate chain (PEM)")
	key := fs.String("key", "", "private key (PEM)")
	ca := fs.String("ca", "", "CA certificates (PEM)")
	if err := fs.Parse(args[2:]); err != nil {
		return errReported
	}
	_, st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	if verb == "delete" {
		if _, err := st.Delete(ctx, store.Secrets+name); err != nil {
			return err
		}
		fmt.Printf("deleted secret %s\n", name)
		return nil
	}
	var v xds.SecretValue
	for _, f := range []struct {
		path string
		into *string
	}{{*cert, &v.Certificate}, {*key, &v.PrivateKey}, {*ca, &v.CA}} {
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
	if _, err := xds.ParseSecret(name, raw); err != nil {
		return err
	}
	if err := st.Put(ctx, store.Secrets+name, string(raw)); err != nil {
		return err
	}
	fmt.Printf("stored secret %s\n", name)
	return nil
}
