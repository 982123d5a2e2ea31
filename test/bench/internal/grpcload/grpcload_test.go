package grpcload

import (
	"context"
	"errors"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// server allows a Check whose path is /ok and denies the rest.
type server struct {
	authv3.UnimplementedAuthorizationServer
}

func (server) Check(_ context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	if r.GetAttributes().GetRequest().GetHttp().GetPath() == "/ok" {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
	}
	return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{}}}, nil
}

func start(t *testing.T) string {
	lis, err := testutil.ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, server{})
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func check(t *testing.T, path string) []byte {
	b, err := proto.Marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path}}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const method = "/envoy.service.auth.v3.Authorization/Check"

func TestPacedSendsTheOfferedRateToARealServer(t *testing.T) {
	l := Load{Addr: start(t), Method: method, Msgs: [][]byte{check(t, "/ok")}, Check: Allowed}
	s, err := l.Paced(2000, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s.Calls < 950 || s.Calls > 1001 {
		t.Errorf("%d calls answered, want the 1000 offered", s.Calls)
	}
	if s.P50 <= 0 || s.P99 < s.P50 || s.Max < s.P99 {
		t.Errorf("latencies out of order: %+v", s)
	}
}

func TestClosedKeepsCallsInFlight(t *testing.T) {
	l := Load{Addr: start(t), Method: method, Msgs: [][]byte{check(t, "/ok")}, Check: Allowed}
	s, err := l.Closed(8, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s.Calls < 100 {
		t.Errorf("only %d calls in 300ms", s.Calls)
	}
}

func TestAnAnswerTheCheckRefusesStopsTheRun(t *testing.T) {
	l := Load{Addr: start(t), Method: method, Msgs: [][]byte{check(t, "/ok"), check(t, "/no")}, Check: Allowed}
	if _, err := l.Closed(2, 300*time.Millisecond); !errors.Is(err, ErrDenied) {
		t.Errorf("a denied Check was not reported: %v", err)
	}
	bad := Load{Addr: l.Addr, Method: "/no.Such/Method", Msgs: [][]byte{check(t, "/ok")}}
	if _, err := bad.Closed(1, 100*time.Millisecond); err == nil {
		t.Error("an unknown method's grpc-status was not reported")
	}
}
