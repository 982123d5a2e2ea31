// Package server runs Tollgate's roles as components of one process: the enforcer
// (Authz), the control plane (XDS), the catalog of APIs both read, and the admin port.
// Each is built (wired to the others) before any runs, so none misses the state loaded at
// start; Run starts them under one errgroup and stops them all when one fails or the
// context ends. The admin port's /readyz asks each component's Ready.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// Component is one part of a server process.
type Component interface {
	// Name labels the component in logs and in /readyz.
	Name() string
	// Run serves until ctx ends (then it returns nil) or it cannot go on.
	Run(ctx context.Context) error
	// Ready says why the component cannot serve what it should yet, or nil.
	Ready() error
}

// Run runs the components until ctx ends or one of them fails; it returns that failure.
func Run(ctx context.Context, log *zap.Logger, cs ...Component) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range cs {
		g.Go(func() error {
			if err := c.Run(ctx); err != nil {
				log.Error("stopping", zap.String("component", c.Name()), zap.Error(err))
				return fmt.Errorf("%s: %w", c.Name(), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// newGRPCServer is a gRPC server with the limits and keepalives every role's port has.
func newGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(4 << 20),
		// A peer that does not answer a ping within 20 s (gRPC's default) is taken for
		// gone; a shorter wait would close peers merely slowed down, as a fleet joining at
		// once slows them.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
		// Pings are allowed from 5 s apart: half of gRPC-Go's shortest client interval
		// (10 s), so a client pinging every 10 s is never struck for the jitter a busy
		// server's clock sees (three strikes close the connection: too_many_pings).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}, opts...)...)
}

// serveGRPC serves s on l until ctx ends, then stops gracefully: long-lived streams (ADS)
// would hold a graceful stop forever, so after 2 s they are cut.
func serveGRPC(ctx context.Context, s *grpc.Server, l net.Listener) error {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		t := time.AfterFunc(2*time.Second, s.Stop)
		s.GracefulStop()
		t.Stop()
	}()
	err := s.Serve(l)
	if ctx.Err() != nil {
		<-stopped
		return nil
	}
	return err
}

// follows are the etcd ranges a component follows, each with its sink.
type follows []struct {
	rel  string
	sink store.Sink
}

func (f *follows) add(rel string, sink store.Sink) {
	*f = append(*f, struct {
		rel  string
		sink store.Sink
	}{rel, sink})
}

// run follows every range until ctx ends.
func (f follows) run(ctx context.Context, st *store.Store, g *errgroup.Group) {
	for _, r := range f {
		g.Go(func() error { st.Follow(ctx, r.rel, r.sink, nil); return nil })
	}
}

// ready is nil once every range is in step with etcd; otherwise each range's reason.
func (f follows) ready(st *store.Store) error {
	var errs []error
	for _, r := range f {
		if err := st.Ready(r.rel); err != nil {
			errs = append(errs, fmt.Errorf("etcd %s: %w", r.rel, err))
		}
	}
	return errors.Join(errs...)
}
