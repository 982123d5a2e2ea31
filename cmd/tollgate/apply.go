package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/definitions"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// loaded is a definition (an API, or a throttling policy) that passed validation.
type loaded struct {
	file   string
	api    *apimodel.API
	policy *ratelimit.Policy
	data   []byte
}

// docs splits loaded definitions into what the store writes.
func docs(defs []loaded) (apis, policies []store.Doc) {
	for _, d := range defs {
		if d.policy != nil {
			policies = append(policies, store.Doc{Name: d.policy.Name, Data: d.data})
		} else {
			apis = append(apis, store.Doc{Name: d.api.Name, Version: d.api.Version, Data: d.data})
		}
	}
	return apis, policies
}

// loadDefinitions validates every file, printing each problem as "file: JSON path: reason"
// on stderr. It returns the definitions only when all of them are good.
func loadDefinitions(paths []string) ([]loaded, bool) {
	var out []loaded
	ok := true
	seen := map[string]string{}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: $: %v\n", path, err)
			ok = false
			continue
		}
		for _, doc := range definitions.Split(path, data) {
			if ratelimit.IsWSO2Policies(doc.Data) {
				ds, good := loadWSO2Policies(doc, seen)
				out, ok = append(out, ds...), ok && good
				continue
			}
			d, good := loadDocument(doc, seen)
			if good {
				out = append(out, d)
			}
			ok = ok && good
		}
	}
	return out, ok
}

// loadWSO2Policies reads WSO2's policies file as Tollgate policies, stored in Tollgate's
// form.
func loadWSO2Policies(doc definitions.Document, seen map[string]string) ([]loaded, bool) {
	pols, warnings, err := ratelimit.ParseWSO2Policies(doc.Data)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", doc.Name, err)
		return nil, false
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "warning: %s: %s\n", doc.Name, w)
	}
	var out []loaded
	ok := true
	for _, pol := range pols {
		if prev, dup := seen["policy "+pol.Name]; dup {
			fmt.Fprintf(os.Stderr, "%s: policy %s is also defined in %s\n", doc.Name, pol.Name, prev)
			ok = false
			continue
		}
		seen["policy "+pol.Name] = doc.Name
		out = append(out, loaded{file: doc.Name, policy: &pol, data: pol.Document()})
	}
	return out, ok
}

// loadDocument validates one document of a definition file; seen holds what earlier
// documents defined, to refuse a second definition of the same API or policy.
func loadDocument(doc definitions.Document, seen map[string]string) (loaded, bool) {
	p, data := doc.Name, doc.Data
	if ratelimit.IsPolicy(data) {
		pol, err := ratelimit.ParsePolicy(data)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", p, err)
			return loaded{}, false
		}
		if prev, dup := seen["policy "+pol.Name]; dup {
			fmt.Fprintf(os.Stderr, "%s: $.name: policy %s is also defined in %s\n", p, pol.Name, prev)
			return loaded{}, false
		}
		seen["policy "+pol.Name] = p
		return loaded{file: p, policy: &pol, data: data}, true
	}
	res, err := openapi.Parse(p, data)
	if err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		return loaded{}, false
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(os.Stderr, "warning: "+w.String())
	}
	if prev, dup := seen[res.API.ID()]; dup {
		fmt.Fprintf(os.Stderr, "%s: $.info: API %s is also defined in %s\n", p, res.API.ID(), prev)
		return loaded{}, false
	}
	seen[res.API.ID()] = p
	return loaded{file: p, api: res.API, data: data}, true
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
		if d.policy != nil {
			fmt.Printf("%s: ok: throttling policy %s\n", d.file, d.policy.Name)
			continue
		}
		fmt.Printf("%s: ok: %s at %s, %d operations\n", d.file, d.api.ID(), d.api.BasePath, len(d.api.Operations))
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
		what := "throttling policy " + d.policy.GetName()
		if d.api != nil {
			what = d.api.ID()
		}
		fmt.Printf("applied %s (%s) at revision %d\n", what, d.file, rev)
	}
	return nil
}

// connect opens the store that cfg names; without endpoints it is the embedded default's.
func connect(cfg config.Config, log *zap.Logger) (*store.Store, error) {
	return connectStore(cfg, log, func(*store.Config) {})
}

// connectStore connects with the configured etcd; more adds what a server needs.
func connectStore(cfg config.Config, log *zap.Logger, more func(*store.Config)) (*store.Store, error) {
	eps := cfg.Etcd.Endpoints
	if len(eps) == 0 {
		eps = []string{cfg.Etcd.EmbeddedClientAddr}
	}
	sc := store.Config{
		Endpoints: eps, Prefix: cfg.Prefix,
		DialTimeout: time.Duration(cfg.Etcd.DialTimeout), RequestTimeout: time.Duration(cfg.Etcd.RequestTimeout),
		Username: cfg.Etcd.Username, CAFile: cfg.Etcd.CAFile, CertFile: cfg.Etcd.CertFile, KeyFile: cfg.Etcd.KeyFile,
	}
	if cfg.Etcd.PasswordFile != "" {
		b, err := os.ReadFile(cfg.Etcd.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("etcd password: %w", err)
		}
		sc.Password = string(trimNewline(b))
	}
	more(&sc)
	return store.Connect(sc, log)
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
