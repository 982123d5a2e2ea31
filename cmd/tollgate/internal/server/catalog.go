package server

import (
	"context"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// Catalog follows the APIs in etcd for the roles that read them (the enforcer decides by
// them, the control plane builds Envoy's configuration from them).
type Catalog struct {
	st  *store.Store
	reg *catalog.Registry
	f   follows
}

// NewCatalog makes the catalog component; the roles take their view of the APIs from
// Registry before Run.
func NewCatalog(st *store.Store, adm *admin.Server, log *zap.Logger, def apimodel.ValidationDefaults) *Catalog {
	c := &Catalog{st: st, reg: catalog.New(log.Named("catalog"), adm.Registry())}
	c.reg.SetValidation(def)
	c.f.add(store.APIs, c.reg)
	return c
}

// Registry is the catalog the roles read.
func (c *Catalog) Registry() *catalog.Registry { return c.reg }

func (c *Catalog) Name() string { return "catalog" }

func (c *Catalog) Ready() error { return c.f.ready(c.st) }

func (c *Catalog) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	c.f.run(ctx, c.st, g)
	return g.Wait()
}
