package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// endpointsCmd sets, shows or removes the addresses behind a service discovery key — what a
// service's deploy tooling does when the service moves.
func endpointsCmd(g *globals) *cobra.Command {
	verb := func(use, short, long, example string, args cobra.PositionalArgs, run func(ctx context.Context, st *store.Store, key string, urls []string) error) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: short, Long: long, Example: example, Args: args}
		cmd.RunE = withStore(addCommon(cmd.Flags(), g), func(ctx context.Context, st *store.Store, args []string) error {
			return run(ctx, st, args[0], args[1:])
		})
		return cmd
	}
	set := verb("set KEY URL...", "Set the addresses behind a discovery key (Envoy gets them over EDS)",
		`Set the URLs behind endpoints/KEY. Every control plane sends the Envoys only the
assignment of the clusters that use KEY; a URL whose scheme or path differs from the
others' becomes its own part of a front.`,
		"  tollgate endpoints set orders http://10.0.0.7:8080 http://10.0.0.8:8080", minArgs(2),
		func(ctx context.Context, st *store.Store, key string, urls []string) error {
			value, _ := json.Marshal(urls)
			if _, err := store.ParseDiscovery(string(value)); err != nil {
				return err
			}
			rev, err := st.Put(ctx, store.Endpoints+key, string(value))
			if err != nil {
				return err
			}
			fmt.Printf("%s%s%s = %s at revision %d\n", st.Prefix(), store.Endpoints, key, value, rev)
			return nil
		})
	get := verb("get KEY", "Print the addresses behind a discovery key",
		"Print the URLs stored at endpoints/KEY, as JSON; an error when the key is not set\n(then the definition's default URL serves).",
		"  tollgate endpoints get orders", exactArgs(1),
		func(ctx context.Context, st *store.Store, key string, _ []string) error {
			v, ok, err := st.Get(ctx, store.Endpoints+key)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s%s%s is not set: the definition's default URL serves", st.Prefix(), store.Endpoints, key)
			}
			fmt.Println(string(v))
			return nil
		})
	del := verb("delete KEY", "Remove a discovery key (the definition's default URL serves again)",
		"Remove endpoints/KEY: the clusters that use it go back to the default URL their\ndefinition gives in etcd(KEY, URL).",
		"  tollgate endpoints delete orders", exactArgs(1),
		func(ctx context.Context, st *store.Store, key string, _ []string) error {
			n, rev, err := st.Delete(ctx, store.Endpoints+key)
			if err != nil {
				return err
			}
			fmt.Printf("deleted %s%s%s at revision %d%s: the default URL serves\n", st.Prefix(), store.Endpoints, key, rev, notSet(n))
			return nil
		})
	return group("endpoints", "Service discovery: the addresses behind etcd(KEY, URL) endpoints",
		`An endpoint written etcd(KEY, URL) in a definition takes its addresses from etcd's
endpoints/KEY, which the service's deploy tooling sets when the service moves; the control
plane sends Envoy only the changed cluster's assignment. Without the key, URL serves.`,
		"  tollgate endpoints set orders http://10.0.0.7:8080\n  tollgate endpoints get orders\n  tollgate endpoints delete orders",
		set, get, del)
}
