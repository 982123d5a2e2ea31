package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
	"github.com/tollgate-gw/tollgate/xds"
)

const openAPI = `openapi: 3.0.3
info: {title: shop, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:8081]
paths:
  /items: {get: {security: [{}], responses: {"200": {description: ok}}}}
`

// The roles built over one real etcd: not ready until their ranges are read, then the
// enforcer decides by the catalog; cancelling the context stops every component and Run
// returns nil.
func TestComponentsServeAndStop(t *testing.T) {
	e := testutil.StartEtcd(t)
	st := e.Store("/tollgate")
	log := testutil.Logger(t)
	adm := admin.New()
	apis := NewCatalog(st, adm, log, apimodel.ValidationDefaults{})
	a, err := NewAuthz(AuthzConfig{Listen: testutil.FreeAddr(t)}, st, apis, adm, log)
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewXDS(xds.Config{}, testutil.FreeAddr(t), tlsfiles.ServerConfig{}, st, apis, adm, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Component{apis, a, x} {
		if c.Ready() == nil {
			t.Errorf("%s is ready before following etcd", c.Name())
		}
	}
	if _, err := st.PutAPIs(t.Context(), []store.Doc{{Name: "shop", Version: "v1", Data: []byte(openAPI)}}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, log, apis, a, x) }()
	for _, c := range []Component{apis, a, x} {
		testutil.Eventually(t, c.Name()+" ready", func() bool { return c.Ready() == nil })
	}

	conn, err := grpc.NewClient(a.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/shop/v1/items"}))
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("an open operation of the stored API: %v %v", resp, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

type failing struct{ err error }

func (f failing) Name() string                  { return "failing" }
func (f failing) Ready() error                  { return nil }
func (f failing) Run(ctx context.Context) error { return f.err }

type waiting struct{ stopped chan struct{} }

func (w waiting) Name() string { return "waiting" }
func (w waiting) Ready() error { return nil }
func (w waiting) Run(ctx context.Context) error {
	<-ctx.Done()
	close(w.stopped)
	return nil
}

// One component's failure stops the others and is what Run returns, with its name.
func TestRunStopsAllWhenOneFails(t *testing.T) {
	boom := errors.New("boom")
	w := waiting{make(chan struct{})}
	err := Run(t.Context(), testutil.Logger(t), w, failing{boom})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing") {
		t.Errorf("Run = %v, want the failing component's error", err)
	}
	select {
	case <-w.stopped:
	default:
		t.Error("the other component was not stopped")
	}
}

// A taken port is an error from the constructor, before anything runs.
func TestListenErrorsComeFromTheConstructor(t *testing.T) {
	e := testutil.StartEtcd(t)
	st := e.Store("/tollgate")
	adm := admin.New()
	apis := NewCatalog(st, adm, testutil.Logger(t), apimodel.ValidationDefaults{})
	a, err := NewAuthz(AuthzConfig{Listen: testutil.FreeAddr(t)}, st, apis, adm, testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewAuthz(AuthzConfig{Listen: a.Addr()}, st, apis, admin.New(), testutil.Logger(t)); err == nil || !strings.Contains(err.Error(), "authz listen") {
		t.Errorf("a second enforcer on %s: %v", a.Addr(), err)
	}
}
