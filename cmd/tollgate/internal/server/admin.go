package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/status"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
)

// Admin serves the admin port; its /readyz asks the components it was given.
type Admin struct {
	srv *admin.Server
	lis net.Listener
	tls *portTLS
}

// NewAdmin listens on addr (refused beyond loopback unless allowRemote) and asks each of
// the components for readiness.
// With serverTLS it serves HTTPS (HTTP/1.1), mutual TLS with a client CA.
func NewAdmin(srv *admin.Server, addr string, allowRemote bool, serverTLS tlsfiles.ServerConfig, log *zap.Logger, components ...Component) (*Admin, error) {
	if err := admin.CheckLoopback(addr, allowRemote); err != nil {
		return nil, err
	}
	for _, c := range components {
		srv.Ready(c.Name(), c.Ready)
	}
	serverTLS.Protocols = []string{"http/1.1"}
	pt, _, err := newPortTLS("admin", serverTLS, srv.Registry(), log)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	if pt != nil {
		lis = tls.NewListener(lis, pt.srv.Config())
	}
	return &Admin{srv: srv, lis: lis, tls: pt}, nil
}

// Addr is the address the admin port listens on.
func (a *Admin) Addr() string { return a.lis.Addr().String() }

func (a *Admin) Name() string { return "admin" }

func (a *Admin) Ready() error { return nil }

func (a *Admin) Run(ctx context.Context) error {
	go a.tls.run(ctx)
	return a.srv.Serve(ctx, a.lis)
}

// ServeStatus serves the status page (/status, /status.json) on the admin port over the
// process's parts; a or x is nil in a process without that role.
func ServeStatus(srv *admin.Server, apis *Catalog, a *Authz, x *XDS) {
	src := status.Sources{Catalog: apis.reg.Load, Ready: srv.Readiness, Started: time.Now()}
	if a != nil {
		src.Enforcer = a
	}
	if x != nil {
		src.Fleet = x.cp
	}
	page, report := status.Handlers(src)
	srv.Handle("/status", page)
	srv.Handle("/status.json", report)
	srv.Handle("/favicon.ico", status.NoIcon)
}
