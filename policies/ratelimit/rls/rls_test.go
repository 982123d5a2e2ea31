package rls

import (
	"testing"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// Envoy's ratelimit filter, as a gRPC client, gets Tollgate's policies.
func TestShouldRateLimitOverGRPC(t *testing.T) {
	e := ratelimit.NewEngine(ratelimit.NewLocal(), zap.NewNop(), nil)
	e.Update(store.Event{KV: store.KV{Key: "two", Value: []byte("kind: ThrottlingPolicy\nname: two\nrate: 2/minute\nburst: 2\n")}})
	lis, err := testutil.ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	New(e, zap.NewNop()).Register(g)
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := rlsv3.NewRateLimitServiceClient(conn)
	ask := func(user string) *rlsv3.RateLimitResponse {
		t.Helper()
		resp, err := client.ShouldRateLimit(t.Context(), &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*commonrl.RateLimitDescriptor{
			{Entries: []*commonrl.RateLimitDescriptor_Entry{{Key: "policy", Value: "two"}, {Key: "user", Value: user}}},
			{Entries: []*commonrl.RateLimitDescriptor_Entry{{Key: "remote_address", Value: "10.0.0.1"}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := range 2 {
		r := ask("alice")
		if r.OverallCode != rlsv3.RateLimitResponse_OK || r.Statuses[0].LimitRemaining != uint32(1-i) ||
			r.Statuses[0].CurrentLimit.RequestsPerUnit != 2 || r.Statuses[0].CurrentLimit.Unit != rlsv3.RateLimitResponse_RateLimit_MINUTE {
			t.Fatalf("request %d: %v", i, r)
		}
	}
	r := ask("alice")
	if r.OverallCode != rlsv3.RateLimitResponse_OVER_LIMIT || r.Statuses[0].Code != rlsv3.RateLimitResponse_OVER_LIMIT || r.Statuses[1].Code != rlsv3.RateLimitResponse_OK {
		t.Fatalf("third: %v", r)
	}
	if ask("bob").OverallCode != rlsv3.RateLimitResponse_OK {
		t.Error("another user shares alice's counter")
	}
}
