package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-gw/tollgate/cmd/tollgate/internal/inventory"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// printer writes what a get or describe found: as a table (rows under a header), or the
// value as YAML or JSON.
type printer struct{ format string }

func (p *printer) flag(cmd *cobra.Command, def string) {
	cmd.Flags().StringVarP(&p.format, "output", "o", def, "table, yaml or json")
}

func (p printer) check() error {
	switch p.format {
	case "table", "yaml", "json":
		return nil
	}
	return usageError{fmt.Errorf("-o %q: want table, yaml or json", p.format)}
}

func (p printer) print(v any, header []string, rows [][]string) error {
	switch p.format {
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	}
	return table(os.Stdout, header, rows)
}

func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// apiHeader and apiRow are an API's columns, in get apis and get api -o table.
var apiHeader = []string{"API", "BASE PATH", "OPERATIONS", "THROTTLING", "PROBLEM"}

func apiRow(a inventory.API) []string {
	return []string{a.ID, orDash(a.BasePath), strconv.Itoa(a.Operations), orDash(a.Throttling), orDash(a.Problem)}
}

// listCmd makes a `get KIND` verb over the inventory: rows reads the values and their
// table.
func listCmd(g *globals, use, short, long, example string, rows func(ctx context.Context, inv inventory.Inventory) (any, []string, [][]string, error)) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Example: example, Args: noArgs}
	var lp printer
	lp.flag(cmd, "table")
	cmd.RunE = withStore(addCommon(cmd.Flags(), g), func(ctx context.Context, st *store.Store, _ []string) error {
		if err := lp.check(); err != nil {
			return err
		}
		v, header, rs, err := rows(ctx, inventory.New(st))
		if err != nil {
			return err
		}
		return lp.print(v, header, rs)
	})
	return cmd
}

// getAPICmd prints one stored API definition.
func getAPICmd(g *globals) *cobra.Command {
	api := &cobra.Command{Use: "api NAME/VERSION", Short: "Print a stored API definition as it was applied",
		Long: `Print the stored definition of one API as it was applied, so that
  tollgate get api NAME/VERSION > api.yaml; edit api.yaml; tollgate apply -f api.yaml
round-trips. -o json or -o yaml converts it; -o table prints its row.`,
		Example: "  tollgate get api coffeebar/v1\n  tollgate get api coffeebar/v1 | sed 's/Gold/Silver/' | tollgate apply -f -",
		Args:    exactArgs(1)}
	var ap printer
	api.Flags().StringVarP(&ap.format, "output", "o", "", "table, yaml or json (default: the document as applied)")
	api.RunE = withStore(addCommon(api.Flags(), g), func(ctx context.Context, st *store.Store, args []string) error {
		if ap.format != "" {
			if err := ap.check(); err != nil {
				return err
			}
		}
		a, ok, err := inventory.New(st).API(ctx, args[0])
		if err != nil {
			return err
		}
		if !ok {
			return &inventory.NotFoundError{What: "API " + args[0]}
		}
		if ap.format == "table" {
			return table(os.Stdout, apiHeader, [][]string{apiRow(a)})
		}
		doc, err := convert(a.Document, ap.format)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(doc)
		return err
	})
	return api
}

// convert is a document as applied in format: "" as it is, json, or yaml.
func convert(doc []byte, format string) ([]byte, error) {
	switch format {
	case "json":
		j, err := yaml.YAMLToJSON(doc)
		return append(j, '\n'), err
	case "yaml":
		if json.Valid(doc) {
			return yaml.JSONToYAML(doc)
		}
	}
	return doc, nil
}

// getCmd lists what etcd holds.
func getCmd(g *globals) *cobra.Command {
	list := func(use, short, long, example string, rows func(ctx context.Context, inv inventory.Inventory) (any, []string, [][]string, error)) *cobra.Command {
		return listCmd(g, use, short, long, example, rows)
	}
	apis := list("apis", "List the stored API definitions",
		"List the stored API definitions: id, base path, operations, API-level throttling; a\ndefinition that no longer parses is shown with its problem.",
		"  tollgate get apis\n  tollgate get apis -o json",
		func(ctx context.Context, inv inventory.Inventory) (any, []string, [][]string, error) {
			as, err := inv.APIs(ctx)
			var rows [][]string
			for _, a := range as {
				rows = append(rows, apiRow(a))
			}
			return as, apiHeader, rows, err
		})
	api := getAPICmd(g)
	policies := list("policies", "List the stored throttling policies and what uses them",
		"List the stored throttling policies: name, limit, what is counted, and the APIs and\noperations that name each.",
		"  tollgate get policies",
		func(ctx context.Context, inv inventory.Inventory) (any, []string, [][]string, error) {
			ps, err := inv.Policies(ctx)
			var rows [][]string
			for _, p := range ps {
				limit := p.Limit
				if p.Shadow {
					limit += " (shadow)"
				}
				rows = append(rows, []string{p.Name, orDash(limit), orDash(p.Key), orDash(strings.Join(p.UsedBy, ", ")), orDash(p.Problem)})
			}
			return ps, []string{"POLICY", "LIMIT", "KEY", "USED BY", "PROBLEM"}, rows, err
		})
	endpoints := list("endpoints", "List the discovery keys and their URLs",
		"List the service discovery keys (endpoints/KEY) and the URLs behind each.",
		"  tollgate get endpoints -o yaml",
		func(ctx context.Context, inv inventory.Inventory) (any, []string, [][]string, error) {
			es, err := inv.Endpoints(ctx)
			var rows [][]string
			for _, e := range es {
				rows = append(rows, []string{e.Key, strings.Join(e.URLs, " ")})
			}
			return es, []string{"KEY", "URLS"}, rows, err
		})
	revocations := list("revocations", "List the stored revocations",
		"List the stored revocations: what is revoked (a jti, an opaque token's hash, a subject or\na client), until when, and why. `tollgate delete revocation KIND/ID` undoes one.",
		"  tollgate get revocations",
		func(ctx context.Context, inv inventory.Inventory) (any, []string, [][]string, error) {
			rs, err := inv.Revocations(ctx)
			var rows [][]string
			for _, r := range rs {
				rows = append(rows, []string{r.Ref(), when(r.Until), when(r.IssuedBefore), orDash(r.Reason)})
			}
			return rs, []string{"REVOCATION", "UNTIL", "ISSUED BEFORE", "REASON"}, rows, err
		})
	apikeys := list("apikeys", "List the API keys (never a key)",
		"List the stored API keys: id, application, the APIs each opens, expiry. Only keys'\nhashes are stored; no key can be shown.",
		"  tollgate get apikeys -o json",
		func(ctx context.Context, inv inventory.Inventory) (any, []string, [][]string, error) {
			ks, err := inv.APIKeys(ctx)
			var rows [][]string
			for _, k := range ks {
				rows = append(rows, []string{k.ID, k.Application, strings.Join(k.APIs, ","), when(k.Expires)})
			}
			return ks, []string{"ID", "APPLICATION", "APIS", "EXPIRES"}, rows, err
		})
	users := list("users", "List the basic-auth users (never a hash)",
		"List the basic-auth users stored in etcd and how each password is hashed (the hash\nitself is never shown).",
		"  tollgate get users",
		func(ctx context.Context, inv inventory.Inventory) (any, []string, [][]string, error) {
			us, err := inv.Users(ctx)
			var rows [][]string
			for _, u := range us {
				rows = append(rows, []string{u.Name, u.Hash})
			}
			return us, []string{"USER", "HASH"}, rows, err
		})
	return group("get", "List what etcd holds: APIs, policies, endpoints, revocations, API keys, users",
		`Show what is stored in etcd, as a table (the default), YAML or JSON (-o). Secrets are
never shown: API keys and passwords are stored only as hashes.`,
		"  tollgate get apis\n  tollgate get api coffeebar/v1\n  tollgate get revocations -o json",
		apis, api, policies, endpoints, revocations, apikeys, users)
}

// deleteCmd removes an API, a policy, a revocation or a user.
func deleteCmd(g *globals) *cobra.Command {
	verb := func(use, short, long, example string, force bool, del func(ctx context.Context, inv inventory.Inventory, arg string, force bool) (int64, string, error)) *cobra.Command {
		cmd := &cobra.Command{Use: use, Short: short, Long: long, Example: example, Args: exactArgs(1)}
		var f bool
		if force {
			cmd.Flags().BoolVar(&f, "force", false, "delete even what something still references")
		}
		cmd.RunE = withStore(addCommon(cmd.Flags(), g), func(ctx context.Context, st *store.Store, args []string) error {
			rev, what, err := del(ctx, inventory.New(st), args[0], f)
			if err != nil {
				return err
			}
			fmt.Printf("deleted %s at revision %d\n", what, rev)
			return nil
		})
		return cmd
	}
	api := verb("api NAME/VERSION", "Delete a stored API (refused while an API key opens it)",
		"Delete a stored API definition: every control plane stops routing it and every enforcer\nstops deciding for it. Refused while an API key still opens it, unless --force.",
		"  tollgate delete api petstore/v1", true,
		func(ctx context.Context, inv inventory.Inventory, id string, force bool) (int64, string, error) {
			rev, err := inv.DeleteAPI(ctx, id, force)
			return rev, "API " + id, err
		})
	policy := verb("policy NAME", "Delete a throttling policy (refused while an API names it)",
		"Delete a stored throttling policy. Refused while an API or operation still names it in\nits throttling, unless --force (then they are not throttled by it).",
		"  tollgate delete policy orders-per-user", true,
		func(ctx context.Context, inv inventory.Inventory, name string, force bool) (int64, string, error) {
			rev, err := inv.DeletePolicy(ctx, name, force)
			return rev, "throttling policy " + name, err
		})
	rev := verb("revocation KIND/ID", "Undo a revocation (as get revocations names it)",
		"Delete a revocation: the token, or the subject's or client's tokens, are accepted again\nby every enforcer within milliseconds.",
		"  tollgate delete revocation jti/6f1c2e", false,
		func(ctx context.Context, inv inventory.Inventory, ref string, _ bool) (int64, string, error) {
			rev, err := inv.DeleteRevocation(ctx, ref)
			return rev, "revocation " + ref, err
		})
	user := verb("user NAME", "Delete a basic-auth user",
		"Delete a basic-auth user stored in etcd; every enforcer refuses its credentials within\nmilliseconds.",
		"  tollgate delete user alice", false,
		func(ctx context.Context, inv inventory.Inventory, name string, _ bool) (int64, string, error) {
			rev, err := inv.DeleteUser(ctx, name)
			return rev, "user " + name, err
		})
	return group("delete", "Delete an API, a policy, a revocation or a user from etcd",
		`Delete what is stored in etcd. Deleting an API or a policy that something still references
is refused with what references it, unless --force. Every deletion prints the etcd
revision it took effect at.`,
		"  tollgate delete api petstore/v1\n  tollgate delete policy gold --force\n  tollgate delete revocation subject/alice",
		api, policy, rev, user)
}

// describeCmd shows one API as the gateway serves it.
func describeCmd(g *globals) *cobra.Command {
	api := &cobra.Command{Use: "api NAME/VERSION", Short: "Show an API as the gateway serves it",
		Long: `Show one stored API as the gateway serves it: its hosts and gateway groups, every
operation with its security requirements and throttling, and the Envoy clusters its routes
go to with the endpoints Envoy gets for them (from the definition and etcd's discovery
keys), and any problem that keeps Envoy from getting it.`,
		Example: "  tollgate describe api coffeebar/v1\n  tollgate describe api coffeebar/v1 -o json",
		Args:    exactArgs(1)}
	var p printer
	p.flag(api, "table")
	c := addCommon(api.Flags(), g)
	api.RunE = withConfigStore(c, func(ctx context.Context, cfg config.Config, st *store.Store, args []string) error {
		if err := p.check(); err != nil {
			return err
		}
		xc, err := xdsConfig(cfg)
		if err != nil {
			return err
		}
		d, err := inventory.New(st).Describe(ctx, args[0], xc.Build)
		if err != nil {
			return err
		}
		if p.format != "table" {
			return p.print(d, nil, nil)
		}
		return printDescription(d)
	})
	return group("describe", "Show an API as the gateway serves it",
		"Show one stored object in detail, as the gateway serves it.",
		"  tollgate describe api coffeebar/v1", api)
}

func printDescription(d inventory.Description) error {
	fmt.Printf("API:         %s\nBase path:   %s\nHosts:       %s\nGateways:    %s\nMutual TLS:  %s\nThrottling:  %s\n",
		d.API.ID, orDash(d.API.BasePath), orDash(strings.Join(d.Hosts, ", ")), orDash(strings.Join(d.Gateways, ", ")),
		orDash(d.MutualTLS), orDash(d.API.Throttling))
	fmt.Println("\nOperations:")
	var rows [][]string
	for _, o := range d.Operations {
		rows = append(rows, []string{"  " + o.Method, o.Path, o.Security, orDash(o.Throttling)})
	}
	if err := table(os.Stdout, []string{"  METHOD", "PATH", "SECURITY", "THROTTLING"}, rows); err != nil {
		return err
	}
	fmt.Println("\nClusters (as Envoy gets them):")
	rows = nil
	for _, c := range d.Clusters {
		rows = append(rows, []string{"  " + c.Name, c.Type, orDash(strings.Join(c.Endpoints, " "))})
	}
	if err := table(os.Stdout, []string{"  CLUSTER", "TYPE", "ENDPOINTS"}, rows); err != nil {
		return err
	}
	if len(d.Problems) > 0 {
		fmt.Println("\nProblems:")
		for _, p := range d.Problems {
			fmt.Println("  " + p)
		}
		return errReported
	}
	return nil
}
