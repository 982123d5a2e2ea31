package server

import (
	"context"
	"fmt"
	"net"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
	"github.com/tollgate-gw/tollgate/xds"
)

// XDS is the control plane role: Envoy's listeners, routes, clusters, endpoints and
// secrets over ADS, built from the catalog's APIs and etcd's endpoints and secrets.
type XDS struct {
	st   *store.Store
	f    follows
	cp   *xds.Server
	grpc *grpc.Server
	lis  net.Listener
	tls  *portTLS
}

// NewXDS builds the control plane over the catalog and listens on listen, with TLS when
// serverTLS asks for it.
func NewXDS(cfg xds.Config, listen string, serverTLS tlsfiles.ServerConfig, st *store.Store, apis *Catalog, adm *admin.Server, log *zap.Logger) (*XDS, error) {
	x := &XDS{st: st, cp: xds.New(cfg, log.Named("xds"), adm.Registry())}
	apis.reg.OnChange(x.cp.SetCatalog)
	x.f.add(store.Endpoints, x.cp.Endpoints())
	x.f.add(store.Secrets, x.cp.Secrets())
	var opts []grpc.ServerOption
	var err error
	if x.tls, opts, err = newPortTLS("xds", serverTLS, adm.Registry(), log); err != nil {
		return nil, err
	}
	if x.lis, err = net.Listen("tcp", listen); err != nil {
		return nil, fmt.Errorf("xds listen: %w", err)
	}
	x.grpc = newGRPCServer(append(x.cp.ServerOptions(), opts...)...)
	return x, nil
}

// Addr is the address the control plane listens on.
func (x *XDS) Addr() string { return x.lis.Addr().String() }

func (x *XDS) Name() string { return "xds" }

func (x *XDS) Ready() error { return x.f.ready(x.st) }

func (x *XDS) Run(ctx context.Context) error {
	x.cp.Register(ctx, x.grpc)
	g, ctx := errgroup.WithContext(ctx)
	x.f.run(ctx, x.st, g)
	g.Go(func() error { x.cp.Run(ctx); return nil })
	g.Go(func() error { x.tls.run(ctx); return nil })
	g.Go(func() error { return serveGRPC(ctx, x.grpc, x.lis) })
	return g.Wait()
}
