package xds_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	grpcxds "google.golang.org/grpc/xds" // registers the xDS resolver and balancers

	"github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// backend is a real gRPC server; its health service reports SERVING for its own name only,
// so a call tells which backend answered.
func backend(t *testing.T, name string) string {
	t.Helper()
	lis, err := testutil.ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, h)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// gRPC-Go's own xDS client (proxyless gRPC) routes through our LDS/RDS/CDS/EDS to a real
// backend, and follows the service to a second backend when its etcd key changes.
func TestProxylessGRPCFollowsEtcd(t *testing.T) {
	// With the gateway's routes scoped, as tollgate.yaml has it by default: the proxyless
	// clients' API listeners and routes are their own either way.
	p := startPlaneWith(t, build.Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080, RouteScopes: true})
	a, b := backend(t, "a"), backend(t, "b")
	p.applyData(t, []byte(fmt.Sprintf(`openapi: 3.0.3
info:
  title: Greeter
  version: v1
x-tollgate-grpc: true
x-tollgate-production-endpoints:
  - etcd(greeter_backend, http://%s)
paths:
  /grpc.health.v1.Health/Check: {post: {security: [{}], responses: {"200": {description: ok}}}}
`, a)))

	bootstrap := fmt.Sprintf(`{"xds_servers":[{"server_uri":%q,"channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],
		"node":{"id":"grpc-client-1","cluster":"default"}}`, p.addr)
	resolver, err := grpcxds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///greeter", grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	servedBy := func(name string) bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		r, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil && testing.Verbose() {
			t.Logf("call: %v", err)
		}
		return err == nil && r.Status == healthpb.HealthCheckResponse_SERVING
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the default endpoint (backend a) serves", func() bool { return servedBy("a") })

	// The service moves to backend b: one etcd write, no restart anywhere.
	start := time.Now()
	if _, err := p.st.Put(t.Context(), "endpoints/greeter_backend", "http://"+b); err != nil {
		t.Fatal(err)
	}
	waitFor("backend b serves after the key changed", func() bool { return servedBy("b") })
	t.Logf("etcd write to the gRPC client using the new backend: %v", time.Since(start))
	if servedBy("a") {
		t.Error("backend a still receives calls")
	}
}
