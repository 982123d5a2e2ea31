package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/definitions"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// docs splits loaded definitions into what the store writes.
func docs(defs []definitions.Definition) (apis, policies []store.Doc) {
	for _, d := range defs {
		if d.Policy != nil {
			policies = append(policies, store.Doc{Name: d.Policy.Name, Data: d.Data})
		} else {
			apis = append(apis, store.Doc{Name: d.API.Name, Version: d.API.Version, Data: d.Data})
		}
	}
	return apis, policies
}

// loadDefinitions validates every file, printing each problem and warning as
// "file: JSON path: reason" on stderr. It returns the good definitions, and whether all
// were good (only then may they be stored).
func loadDefinitions(paths []string) ([]definitions.Definition, bool) {
	defs, report := definitions.Load(paths, ratelimit.Reader{})
	for _, w := range report.Warnings {
		fmt.Fprintln(os.Stderr, "warning: "+w)
	}
	for _, p := range report.Problems {
		fmt.Fprintln(os.Stderr, p)
	}
	return defs, report.OK()
}

// definitionArgs parses a command's flags with repeatable -f, and returns the definition
// files: those given with -f and those given as arguments.
func definitionArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var fl files
	fs.Var(&fl, "f", "API definition or throttling policy file (YAML or JSON); repeatable")
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, errReported
	}
	fl = append(fl, rest...)
	if len(fl) == 0 {
		return nil, fmt.Errorf("no definition given (-f FILE)")
	}
	return fl, nil
}

func validateCmd(args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fl, err := definitionArgs(fs, args)
	if err != nil {
		return err
	}
	defs, ok := loadDefinitions(fl)
	for _, d := range defs {
		if d.Policy != nil {
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

func applyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	var c common
	c.register(fs)
	fl, err := definitionArgs(fs, args)
	if err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	defs, ok := loadDefinitions(fl)
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
		if d.Policy != nil {
			what += d.Policy.Name
		} else {
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
