package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/gctune"
	"github.com/tollgate-gw/tollgate/internal/server"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// role says which components a server command runs.
type role struct {
	name        string
	authz, xds  bool
	embedded    bool // may start an embedded etcd
	applyAtBoot bool // takes -f
}

var (
	roleRun   = role{name: "run", authz: true, xds: true, embedded: true, applyAtBoot: true}
	roleAuthz = role{name: "authz", authz: true}
	roleXDS   = role{name: "xds", xds: true}
)

// serveCmd starts a server role: `tollgate run` (everything, embedded etcd by default),
// `tollgate authz` (the enforcer) or `tollgate xds` (the control plane). The roles are
// internal/server's components; this composes them from the configuration.
func serveCmd(ctx context.Context, args []string, r role) error {
	fs := flag.NewFlagSet(r.name, flag.ContinueOnError)
	var c common
	c.register(fs)
	dev := new(bool)
	if r.authz {
		dev = fs.Bool("dev", false, "add the development token issuer (its own key; for trying Tollgate, never for production)")
	}
	var fl files
	if r.applyAtBoot {
		fs.Var(&fl, "f", "API definition to apply at start; repeatable")
	}
	if err := fs.Parse(args); err != nil {
		return errReported
	}
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
		if err := applyAtStart(ctx, st, fl); err != nil {
			return err
		}
		log.Info("applied definitions", zap.Int("count", len(fl)))
	}

	// Every component is built, and so wired to the catalog, before any follows etcd.
	apis := server.NewCatalog(st, adm, log)
	components := []server.Component{apis}
	var authzAddr, xdsAddr string
	if r.authz {
		ac, err := authzConfig(cfg, *dev, log)
		if err != nil {
			return err
		}
		a, err := server.NewAuthz(ac, st, apis, adm, log)
		if err != nil {
			return err
		}
		components, authzAddr = append(components, a), a.Addr()
	}
	if r.xds {
		xc, err := xdsConfig(cfg)
		if err != nil {
			return err
		}
		x, err := server.NewXDS(xc, cfg.XDS.Listen, st, apis, adm, log)
		if err != nil {
			return err
		}
		components, xdsAddr = append(components, x), x.Addr()
	}
	ad, err := server.NewAdmin(adm, cfg.Admin.Listen, cfg.Admin.AllowRemote, components...)
	if err != nil {
		return err
	}
	printSummary(cfg, authzAddr, xdsAddr, ad.Addr(), *dev)
	err = server.Run(ctx, log, append(components, ad)...)
	log.Info("stopped")
	return err
}

func applyAtStart(ctx context.Context, st *store.Store, fl []string) error {
	defs, ok := loadDefinitions(fl)
	if !ok {
		return errors.New("definitions given with -f have problems (listed above); nothing was applied")
	}
	apis, policies := docs(defs)
	_, err := st.PutDefinitions(ctx, apis, policies)
	return err
}

func printSummary(cfg config.Config, authz, xdsAddr, adminAddr string, dev bool) {
	fmt.Printf("\nTollgate is up.\n")
	if authz != "" {
		fmt.Printf("  ext_authz (gRPC)  %s   envoy.service.auth.v3.Authorization\n", authz)
	}
	if xdsAddr != "" {
		fmt.Printf("  xDS (gRPC)        %s   ADS, state-of-the-world and delta\n", xdsAddr)
	}
	fmt.Printf("  admin (HTTP)      http://%s   /healthz /readyz /metrics\n", adminAddr)
	fmt.Printf("  etcd              %v\n", cfg.Etcd.Endpoints)
	if xdsAddr != "" {
		fmt.Printf(`
Point an Envoy at the control plane (it serves listeners on :%d, routes, clusters, endpoints):
  ./bin/tollgate bootstrap --node-id envoy-1 --cluster default --xds %s > envoy.yaml
  envoy -c envoy.yaml
`, cfg.XDS.HTTPPort, xdsAddr)
	}
	if dev && authz != "" {
		fmt.Printf(`
Try it without Envoy:
  TOKEN=$(./bin/tollgate token --scope "read:menu")
  ./bin/tollgate check --authz %s --method GET --path /coffeebar/v1/menu -H "Authorization: Bearer $TOKEN"
`, authz)
	}
	fmt.Println()
}
