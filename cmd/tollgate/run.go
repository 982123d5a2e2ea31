package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/spf13/cobra"
	"github.com/tollgate-gw/tollgate/cmd/tollgate/internal/server"
	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/gctune"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// role says which components a server command runs.
type role struct {
	name, short, long, example string
	authz, xds                 bool
	embedded                   bool // may start an embedded etcd
	applyAtBoot                bool // takes -f
}

var (
	roleRun = role{name: "run", authz: true, xds: true, embedded: true, applyAtBoot: true,
		short: "Run everything in one process: embedded etcd, the control plane, the enforcer",
		long: `Run everything in one process: an embedded etcd in <dataDir>/etcd (unless
etcd.endpoints is set), the xDS control plane, the ext_authz enforcer and the admin port.
Definitions given with -f are validated and applied at start (all or none). --dev adds the
development token issuer, so that ` + "`tollgate token`" + ` mints tokens this instance accepts.`,
		example: `  tollgate run --dev -f examples/coffeebar/coffeebar.yaml
  tollgate run --config tollgate.yaml`}
	roleAuthz = role{name: "authz", authz: true,
		short: "Run the ext_authz enforcer alone, against an etcd cluster",
		long: `Run the enforcer alone: Envoy's ext_authz (and rate limit) service on authz.listen,
following the APIs, policies, credentials and revocations in etcd.endpoints.`,
		example: `  tollgate authz --config tollgate.yaml
  tollgate authz --etcd 10.0.0.5:2379,10.0.0.6:2379`}
	roleXDS = role{name: "xds", xds: true,
		short: "Run the xDS control plane alone, against an etcd cluster",
		long: `Run the control plane alone: listeners, routes, clusters, endpoints and secrets over
ADS (state-of-the-world and delta) on xds.listen, built from the APIs and endpoints in
etcd.endpoints.`,
		example: `  tollgate xds --config tollgate.yaml`}
)

// serveCmd is a server role's command: tollgate run, tollgate authz or tollgate xds. The
// roles are cmd/tollgate/internal/server's components; serve composes them from the
// configuration.
func serveCmd(g *globals, r role) *cobra.Command {
	var dev bool
	var fl []string
	cmd := &cobra.Command{Use: r.name, Short: r.short, Long: r.long, Example: r.example, Args: noArgs}
	c := addCommon(cmd.Flags(), g)
	if r.authz {
		cmd.Flags().BoolVar(&dev, "dev", false, "add the development token issuer (its own key; for trying Tollgate, never for production)")
	}
	if r.applyAtBoot {
		cmd.Flags().StringArrayVarP(&fl, "filename", "f", nil, "API definition or policy file to apply at start; repeatable")
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), c, r, dev, fl) }
	return cmd
}

func serve(ctx context.Context, c *common, r role, dev bool, fl []string) error {
	cfg, err := c.load()
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync()
	// A heap floor: without it a small live heap means dozens of collections a second
	// under load, the largest part of the Check tail (internal/gctune).
	defer gctune.Floor(gctune.DefaultFloor).Stop()
	if err := admin.CheckLoopback(cfg.Admin.Listen, cfg.Admin.AllowRemote); err != nil {
		return err
	}

	// etcd: the configured cluster, or (run only) an embedded server in the data directory.
	if len(cfg.Etcd.Endpoints) == 0 {
		if !r.embedded {
			return fmt.Errorf("%s needs etcd.endpoints (or --etcd); only `tollgate run` embeds etcd", r.name)
		}
		dir := filepath.Join(cfg.DataDir, "etcd")
		emb, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir, ClientAddr: cfg.Etcd.EmbeddedClientAddr, PeerAddr: cfg.Etcd.EmbeddedPeerAddr}, log)
		if err != nil {
			return err
		}
		defer emb.Close()
		cfg.Etcd.Endpoints = []string{emb.Endpoint}
		log.Info("embedded etcd started", zap.String("dir", dir), zap.String("endpoint", emb.Endpoint))
	}
	adm := admin.New()
	if cfg.Admin.Profiling {
		adm.Profiling()
	}
	st, err := connectStore(cfg, log, func(sc *store.Config) {
		sc.CacheDir, sc.Registerer = cfg.CacheDir(), adm.Registry()
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if len(fl) > 0 {
		if err := applyAtStart(ctx, st, fl, cfg); err != nil {
			return err
		}
		log.Info("applied definitions", zap.Int("count", len(fl)))
	}

	// Every component is built, and so wired to the catalog, before any follows etcd.
	apis := server.NewCatalog(st, adm, log, cfg.ValidationDefaults())
	components := []server.Component{apis}
	var authzAddr, xdsAddr string
	var enforcer *server.Authz
	var plane *server.XDS
	if r.authz {
		ac, err := authzConfig(cfg, dev, log)
		if err != nil {
			return err
		}
		a, err := server.NewAuthz(ac, st, apis, adm, log)
		if err != nil {
			return err
		}
		components, authzAddr, enforcer = append(components, a), a.Addr(), a
	}
	if r.xds {
		xc, err := xdsConfig(cfg)
		if err != nil {
			return err
		}
		x, err := server.NewXDS(xc, cfg.XDS.Listen, portTLS(cfg.XDS.ServerTLS), st, apis, adm, log)
		if err != nil {
			return err
		}
		components, xdsAddr, plane = append(components, x), x.Addr(), x
		if cfg.Kubernetes.Discovery {
			k, err := server.NewKube(cfg.Kubernetes.Kubeconfig, cfg.CacheDir(), apis, x, log)
			if err != nil {
				return err
			}
			components = append(components, k)
		}
	}
	server.ServeStatus(adm, apis, enforcer, plane)
	ad, err := server.NewAdmin(adm, cfg.Admin.Listen, cfg.Admin.AllowRemote, portTLS(cfg.Admin.TLS), log, components...)
	if err != nil {
		return err
	}
	printSummary(cfg, c.reach(), authzAddr, xdsAddr, ad.Addr(), dev)
	err = server.Run(ctx, log, append(components, ad)...)
	log.Info("stopped")
	return err
}

func applyAtStart(ctx context.Context, st *store.Store, fl []string, cfg config.Config) error {
	defs, ok := loadDefinitions(fl, cfg)
	if !ok {
		return errors.New("definitions given with -f have problems (listed above); nothing was applied")
	}
	apis, policies := docs(defs)
	_, err := st.PutDefinitions(ctx, apis, policies)
	return err
}

// printSummary says what is up, and how to use it: the hints carry what another command
// needs to reach this instance (its configuration file, a --data-dir given here).
func printSummary(cfg config.Config, reach, authz, xdsAddr, adminAddr string, dev bool) {
	self := os.Args[0]
	if !strings.Contains(self, "/") {
		self = "tollgate"
	}
	with := ""
	if reach != "" {
		with = " " + reach
	}
	fmt.Printf("\nTollgate is up.\n")
	if authz != "" {
		fmt.Printf("  ext_authz (gRPC)  %s   envoy.service.auth.v3.Authorization\n", authz)
	}
	if xdsAddr != "" {
		fmt.Printf("  xDS (gRPC)        %s   ADS, state-of-the-world and delta\n", xdsAddr)
	}
	fmt.Printf("  admin (HTTP)      http://%s   /status /healthz /readyz /metrics\n", adminAddr)
	fmt.Printf("  etcd              %v\n", cfg.Etcd.Endpoints)
	if xdsAddr != "" {
		fmt.Printf(`
Point an Envoy at the control plane (it serves listeners on :%d, routes, clusters, endpoints):
  %s bootstrap --node-id envoy-1 --cluster default --xds %s > envoy.yaml
  envoy -c envoy.yaml
`, cfg.XDS.HTTPPort, self, xdsAddr)
	}
	if dev && authz != "" {
		fmt.Printf(`
Try it without Envoy:
  TOKEN=$(%s token%s --scope "read:menu")
  %s check --authz %s --method GET --path /coffeebar/v1/menu -H "Authorization: Bearer $TOKEN"
`, self, with, self, authz)
	}
	fmt.Println()
}
