package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/spf13/cobra"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/definitions"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// docs splits loaded definitions into what the store writes.
func docs(defs []definitions.Definition) (apis, policies []store.Doc) {
	for _, d := range defs {
		switch {
		case d.Policy != nil:
			policies = append(policies, store.Doc{Name: d.Policy.Name, Data: d.Data})
		case d.API != nil:
			apis = append(apis, store.Doc{Name: d.API.Name, Version: d.API.Version, Data: d.Data})
		}
	}
	return apis, policies
}

// loadDefinitions validates every file, printing each problem and warning as
// "file: JSON path: reason" on stderr. It returns the good definitions, and whether all
// were good (only then may they be stored).
func loadDefinitions(paths []string, cfg config.Config) ([]definitions.Definition, bool) {
	defs, report := definitions.LoadWith(paths, ratelimit.Reader{}, cfg.ValidationDefaults())
	for _, w := range report.Warnings {
		fmt.Fprintln(os.Stderr, "warning: "+w)
	}
	for _, p := range report.Problems {
		fmt.Fprintln(os.Stderr, p)
	}
	return defs, report.OK()
}

// definitionFiles adds -f to a command; its files are those given with -f and as arguments.
func definitionFiles(cmd *cobra.Command) func(args []string) ([]string, error) {
	var fl []string
	cmd.Flags().StringArrayVarP(&fl, "filename", "f", nil, "API definition or throttling policy file (YAML or JSON); repeatable")
	return func(args []string) ([]string, error) {
		all := append(append([]string(nil), fl...), args...)
		if len(all) == 0 {
			return nil, usageError{errors.New("no definition given (-f FILE)")}
		}
		return all, nil
	}
}

func validateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate -f FILE...",
		Short: "Check API definitions and throttling policies offline",
		Long: `Check API definitions (OpenAPI 2 or 3, with Tollgate's x-tollgate-* or WSO2's x-wso2-*
extensions) and throttling policies without etcd. Every problem is printed as
"FILE: JSON path: reason"; the exit code is 1 when any file has one. A file may hold several
YAML documents (---); each is checked and reported as "FILE (document N)". What validate
accepts, apply stores and the gateway serves.`,
		Example: `  tollgate validate -f examples/coffeebar/coffeebar.yaml
  tollgate validate -f examples/coffeebar/ -f examples/petstore/`,
	}
	files := definitionFiles(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fl, err := files(args)
		if err != nil {
			return err
		}
		cfg, err := g.loadConfig()
		if err != nil {
			return err
		}
		defs, ok := loadDefinitions(fl, cfg)
		warnUnknownIssuers(defs, cfg)
		for _, d := range defs {
			switch {
			case d.Tests:
				fmt.Printf("%s: decision tests (tollgate test runs them)\n", d.File)
				continue
			case d.Policy != nil:
				fmt.Printf("%s: ok: throttling policy %s\n", d.File, d.Policy.Name)
				continue
			}
			fmt.Printf("%s: ok: %s at %s, %d operations\n", d.File, d.API.ID(), d.API.BasePath, len(d.API.Operations))
		}
		if !ok {
			return errReported
		}
		return nil
	}
	return cmd
}

func applyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply -f FILE...",
		Short: "Validate definitions and store them in etcd, all or none",
		Long: `Validate every definition (as validate does) and, when all are good, store them — APIs
and throttling policies — in one etcd transaction. With a problem in any file nothing is
stored. Every control plane and enforcer following that etcd takes them within
milliseconds.`,
		Example: `  tollgate apply -f examples/coffeebar/coffeebar.yaml -f examples/coffeebar/orders-per-user.yaml
  tollgate apply --etcd 10.0.0.5:2379 -f petstore.yaml`,
	}
	c := addCommon(cmd.Flags(), g)
	files := definitionFiles(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		fl, err := files(args)
		if err != nil {
			return err
		}
		return apply(cmd.Context(), c, fl)
	}
	return cmd
}

func apply(ctx context.Context, c *common, fl []string) error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	defs, ok := loadDefinitions(fl, cfg)
	if !ok {
		fmt.Fprintln(os.Stderr, "nothing was stored: fix the problems above and apply again")
		return errReported
	}
	st, err := connect(cfg, zap.NewNop())
	if err != nil {
		return err
	}
	defer st.Close()
	apis, policies := docs(defs)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	rev, err := st.PutDefinitions(ctx, apis, policies)
	if err != nil {
		return err
	}
	for _, d := range defs {
		what := "throttling policy "
		switch {
		case d.Tests:
			continue
		case d.Policy != nil:
			what += d.Policy.Name
		default:
			what = d.API.ID()
		}
		fmt.Printf("applied %s (%s) at revision %d\n", what, d.File, rev)
	}
	return nil
}

// connect opens the store that cfg names; without endpoints it is the embedded default's.
func connect(cfg config.Config, log *zap.Logger) (*store.Store, error) {
	return connectStore(cfg, log, func(*store.Config) {})
}

// connectStore connects with the configured etcd; more adds what a server needs.
func connectStore(cfg config.Config, log *zap.Logger, more func(*store.Config)) (*store.Store, error) {
	sc, err := storeConfig(cfg)
	if err != nil {
		return nil, err
	}
	more(&sc)
	return store.Connect(sc, log)
}

// warnUnknownIssuers warns of a security scheme naming (x-tollgate-issuers) an issuer the
// configuration does not have: its tokens would all be refused. Only a configuration with
// issuers is held against the definitions.
func warnUnknownIssuers(defs []definitions.Definition, cfg config.Config) {
	if len(cfg.Issuers) == 0 {
		return
	}
	known := map[string]bool{"dev": true} // tollgate run --dev's issuer
	for _, is := range cfg.Issuers {
		known[cmp.Or(is.Name, is.Issuer)] = true
	}
	for _, d := range defs {
		if d.API == nil {
			continue
		}
		names := make([]string, 0, len(d.API.Schemes))
		for name := range d.API.Schemes {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			for _, is := range d.API.Schemes[name].Issuers {
				if !known[is] {
					fmt.Fprintf(os.Stderr, "warning: %s: $.components.securitySchemes.%s.x-tollgate-issuers: no issuer named %q is configured; the scheme refuses every token until one is\n", d.File, name, is)
				}
			}
		}
	}
}
