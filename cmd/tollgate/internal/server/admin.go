package server

import (
	"context"
	"fmt"
	"net"

	"github.com/tollgate-gw/tollgate/internal/admin"
)

// Admin serves the admin port; its /readyz asks the components it was given.
type Admin struct {
	srv *admin.Server
	lis net.Listener
}

// NewAdmin listens on addr (refused beyond loopback unless allowRemote) and asks each of
// the components for readiness.
func NewAdmin(srv *admin.Server, addr string, allowRemote bool, components ...Component) (*Admin, error) {
	if err := admin.CheckLoopback(addr, allowRemote); err != nil {
		return nil, err
	}
	for _, c := range components {
		srv.Ready(c.Name(), c.Ready)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	return &Admin{srv: srv, lis: lis}, nil
}

// Addr is the address the admin port listens on.
func (a *Admin) Addr() string { return a.lis.Addr().String() }

func (a *Admin) Name() string { return "admin" }

func (a *Admin) Ready() error { return nil }

func (a *Admin) Run(ctx context.Context) error { return a.srv.Serve(ctx, a.lis) }
