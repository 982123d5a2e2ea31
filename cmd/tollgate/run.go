package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/devissuer"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/jwt"
)

// runCmd starts `tollgate run` (all roles, embedded etcd by default) or `tollgate authz`.
func runCmd(ctx context.Context, args []string, all bool) error {
	name := "authz"
	if all {
		name = "run"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var c common
	c.register(fs)
	dev := fs.Bool("dev", false, "add the development token issuer (its own key; for trying Tollgate, never for production)")
	var fl files
	if all {
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
	if err := admin.CheckLoopback(cfg.Admin.Listen, cfg.Admin.AllowRemote); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// etcd: the configured cluster, or (run only) an embedded server in the data directory.
	if len(cfg.Etcd.Endpoints) == 0 {
		if !all {
			return errors.New("authz needs etcd.endpoints (or --etcd); only `tollgate run` embeds etcd")
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
	st, err := connect(cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	if len(fl) > 0 {
		defs, ok := loadDefinitions(fl)
		if !ok {
			return errors.New("definitions given with -f have problems (listed above); nothing was applied")
		}
		docs := make([]store.Doc, len(defs))
		for i, d := range defs {
			docs[i] = store.Doc{Name: d.api.Name, Version: d.api.Version, Data: d.data}
		}
		if _, err := st.PutAPIs(ctx, docs); err != nil {
			return err
		}
		log.Info("applied definitions", zap.Int("count", len(defs)))
	}

	adm := admin.New()
	reg := catalog.New(log.Named("catalog"), adm.Registry())

	issuers := make([]jwt.IssuerConfig, 0, len(cfg.Issuers)+1)
	for _, is := range cfg.Issuers {
		jc, err := is.JWT()
		if err != nil {
			return err
		}
		issuers = append(issuers, jc)
	}
	if *dev {
		ic, err := devissuer.Ensure(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("development issuer: %w", err)
		}
		issuers = append(issuers, ic)
		log.Warn("DEVELOPMENT ISSUER ENABLED (--dev): tokens minted by `tollgate token` are accepted. Never use --dev in production.",
			zap.String("issuer", devissuer.Issuer), zap.String("audience", devissuer.Audience))
	}
	var verifier extauthz.TokenVerifier
	var ver *jwt.Verifier
	if len(issuers) > 0 {
		ver, err = jwt.New(jwt.Config{
			Issuers: issuers, CacheSize: cfg.Authz.TokenCacheSize, MaxTokenBytes: cfg.Authz.MaxTokenBytes,
			ClaimHeaders: cfg.Authz.ClaimHeaders, Attach: extauthz.Attach,
		}, log.Named("jwt"), adm.Registry())
		if err != nil {
			return err
		}
		verifier = ver
	} else {
		log.Warn("no token issuer configured: every resource that needs a token will be denied")
	}
	enf := extauthz.New(extauthz.Config{Format: extauthz.Format(cfg.Authz.FaultFormat), RemoveAuthorization: cfg.Authz.RemoveAuthorization},
		reg, verifier, log.Named("authz"), adm.Registry())

	var synced atomic.Bool
	adm.Ready("etcd", func() error {
		if !synced.Load() {
			return errors.New("not in step with etcd (API definitions may be stale)")
		}
		return nil
	})
	if ver != nil {
		adm.Ready("jwks", func() error {
			if !ver.Ready() {
				return errors.New("an issuer's keys have not been fetched yet")
			}
			return nil
		})
	}

	authzLis, err := net.Listen("tcp", cfg.Authz.Listen)
	if err != nil {
		return fmt.Errorf("authz listen: %w", err)
	}
	adminLis, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	var xdsLis net.Listener
	if all {
		if xdsLis, err = net.Listen("tcp", cfg.XDS.Listen); err != nil {
			return fmt.Errorf("xds listen: %w", err)
		}
	}

	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(4<<20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	enf.Register(gs)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Go(func() { st.Follow(ctx, store.APIs, reg, synced.Store) })
	if ver != nil {
		wg.Go(func() { ver.Run(ctx) })
	}
	wg.Go(func() {
		if err := gs.Serve(authzLis); err != nil {
			errs <- fmt.Errorf("authz: %w", err)
		}
	})
	wg.Go(func() {
		if err := adm.Serve(ctx, adminLis); err != nil {
			errs <- fmt.Errorf("admin: %w", err)
		}
	})
	if xdsLis != nil {
		// The control plane is not served yet; the port is held so that Envoy bootstraps
		// and firewall rules written now stay right when it is.
		xs := grpc.NewServer()
		wg.Go(func() { xs.Serve(xdsLis) })
		go func() { <-ctx.Done(); xs.Stop() }()
	}

	printSummary(cfg.Etcd.Endpoints, authzLis.Addr().String(), adminLis.Addr().String(), xdsLis, *dev)
	select {
	case <-ctx.Done():
	case err = <-errs:
		log.Error("stopping", zap.Error(err))
	}
	cancel()
	gs.GracefulStop()
	wg.Wait()
	log.Info("stopped")
	return err
}

func printSummary(etcd []string, authz, adminAddr string, xds net.Listener, dev bool) {
	fmt.Printf(`
Tollgate is up.
  ext_authz (gRPC)  %s   envoy.service.auth.v3.Authorization
  admin (HTTP)      http://%s   /healthz /readyz /metrics
  etcd              %v
`, authz, adminAddr, etcd)
	if xds != nil {
		fmt.Printf("  xDS (gRPC)        %s   port reserved; the control plane is not served yet\n", xds.Addr())
	}
	fmt.Printf(`
Point Envoy's ext_authz filter at it (http_filters, before the router):
  - name: envoy.filters.http.ext_authz
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
      transport_api_version: V3
      include_peer_certificate: true
      grpc_service:
        envoy_grpc: {cluster_name: tollgate_authz}   # a cluster with http2 to %s
`, authz)
	if dev {
		fmt.Printf(`
Try it without Envoy:
  TOKEN=$(./bin/tollgate token --scope "read:menu")
  ./bin/tollgate check --authz %s --method GET --path /coffeebar/v1/menu -H "Authorization: Bearer $TOKEN"
`, authz)
	}
	fmt.Println()
}
