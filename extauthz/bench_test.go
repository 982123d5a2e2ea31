package extauthz_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"github.com/tollgate-gw/tollgate/internal/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/store"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/policies/apikey"
	"github.com/tollgate-gw/tollgate/policies/basic"
	"github.com/tollgate-gw/tollgate/policies/dpop"
	"github.com/tollgate-gw/tollgate/policies/mtls"
)

// benchEnforcer is an in-process enforcer for coffeebar with an RS256 JWKS issuer. A
// negative cacheSize disables the verified-token cache, so every Check verifies a signature
// as a first-seen token does.
func benchEnforcer(b testing.TB, cacheSize int) (*extauthz.Enforcer, *tu.IdP) {
	e, idp, _ := newEnforcer(b, extauthz.Config{}, cacheSize, example(b, "coffeebar"))
	return e, idp
}

func benchCheck(b *testing.B, cacheSize int, routeMetadata bool) {
	e, idp := benchEnforcer(b, cacheSize)
	tok := idp.Sign("rsa", "RS256", idp.Claims(aud, "read:menu"))
	r := extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu", Headers: map[string]string{"authorization": "Bearer " + tok}}
	if routeMetadata {
		r.ContextExtensions = map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "GET /menu"}
	}
	loopCheck(b, e, extauthz.NewCheckRequest(r))
}

// loopCheck checks that req is allowed, then times Check on it.
func loopCheck(b *testing.B, e *extauthz.Enforcer, req *authv3.CheckRequest) {
	if resp, _ := e.Check(b.Context(), req); resp.GetOkResponse() == nil {
		b.Fatalf("not allowed: %v", resp)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Check(b.Context(), req)
	}
}

// Cached RS256 token, route found from the route's metadata (the xDS-configured way).
func BenchmarkCheckCachedToken(b *testing.B) { benchCheck(b, 0, true) }

// Cached RS256 token, route found by matching method and path (a hand-configured Envoy).
func BenchmarkCheckCachedTokenPathMatch(b *testing.B) { benchCheck(b, 0, false) }

// Every Check verifies the RS256 signature, as for a token seen for the first time.
func BenchmarkCheckFirstSeenToken(b *testing.B) { benchCheck(b, -1, true) }

// credentialBench is an in-process enforcer for the credentials API.
func credentialBench(b *testing.B) (*extauthz.Enforcer, pki, *apikey.Set) {
	p := newPKI(b)
	v, err := mtls.New(mtls.Config{CAFiles: []string{p.caFile}})
	if err != nil {
		b.Fatal(err)
	}
	hash, _ := basic.Hash("s3cret")
	users, _ := basic.New(map[string]string{"alice": hash})
	keys := apikey.NewSet()
	sum := sha256.Sum256([]byte("bench-key"))
	rec, _ := json.Marshal(apikey.Record{ID: "b", Application: "bench-app", APIs: []string{"vault/v1"}})
	keys.Update(store.Event{KV: store.KV{Key: hex.EncodeToString(sum[:]), Value: rec}})
	e, _, _ := newEnforcer(b, extauthz.Config{Certificates: v, Users: users, APIKeys: keys}, 0, credentialsAPI)
	return e, p, keys
}

func benchRequest(b *testing.B, e *extauthz.Enforcer, path, cert string, headers map[string]string) {
	req := extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: path, Headers: headers})
	req.Attributes.Source.Certificate = cert
	if resp, _ := e.Check(b.Context(), req); resp.GetOkResponse() == nil {
		b.Fatalf("not allowed: %v", resp.GetDeniedResponse().GetBody())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		e.Check(b.Context(), req)
	}
}

// A trusted client certificate (verified once, then from the certificate cache).
func BenchmarkCheckMutualTLS(b *testing.B) {
	e, p, _ := credentialBench(b)
	benchRequest(b, e, "/vault/v1/mtls", p.good, nil)
}

// Basic auth, bcrypt cost 11 on first use, then from the verified-credential cache.
func BenchmarkCheckBasicCached(b *testing.B) {
	e, _, _ := credentialBench(b)
	benchRequest(b, e, "/vault/v1/basic", "", map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))})
}

// An API key in a header: a SHA-256 and a map lookup.
func BenchmarkCheckAPIKey(b *testing.B) {
	e, _, _ := credentialBench(b)
	benchRequest(b, e, "/vault/v1/hkey", "", map[string]string{"x-api-key": "bench-key"})
}

// Cached RS256 token with the headers as the generated filter sends them (encode_raw_headers:
// a header_map of raw values), ten headers as a browser or SDK sends them.
func BenchmarkCheckCachedTokenRawHeaders(b *testing.B) {
	e, idp := benchEnforcer(b, 0)
	tok := idp.Sign("rsa", "RS256", idp.Claims(aud, "read:menu"))
	req := extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu",
		Headers:           map[string]string{"authorization": "Bearer " + tok, "user-agent": "bench/1.0", "accept": "application/json", "accept-encoding": "gzip"},
		ContextExtensions: map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "GET /menu"}})
	loopCheck(b, e, rawHeaders(req))
}

// rawHeaders moves a CheckRequest's headers into a header_map of raw values, as the
// generated filter sends them (encode_raw_headers).
func rawHeaders(req *authv3.CheckRequest) *authv3.CheckRequest {
	h := req.Attributes.Request.Http
	h.HeaderMap = &corev3.HeaderMap{}
	for k, v := range h.Headers {
		h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	h.Headers = nil
	return req
}

// Tracing off (no tracer: the default), then on: every Check continues a sampled
// traceparent and records its span and stage spans (exported by a batcher to nowhere);
// then on, but Envoy's span is not sampled. Compare with BenchmarkCheckCachedToken.
func BenchmarkCheckTraced(b *testing.B) {
	for _, c := range []struct {
		name    string
		sampled string
	}{{"sampled", "01"}, {"unsampled", "00"}} {
		b.Run(c.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
			defer tp.Shutdown(b.Context())
			e, idp, _ := newEnforcer(b, extauthz.Config{Tracer: tp.Tracer("bench"), Propagator: tracing.Propagator}, 0, example(b, "coffeebar"))
			tok := idp.Sign("rsa", "RS256", idp.Claims(aud, "read:menu"))
			req := extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu",
				Headers:           map[string]string{"authorization": "Bearer " + tok, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-" + c.sampled},
				ContextExtensions: map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "GET /menu"}})
			loopCheck(b, e, req)
		})
	}
}

// discard is an exporter that drops what it is given.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// A cached DPoP-bound token with a fresh DPoP proof per request (RFC 9449): the token
// comes from the cache, the proof's ES256 signature is verified every time and its jti
// recorded in the in-memory replay cache. Compare with BenchmarkCheckCachedToken.
func BenchmarkCheckDPoP(b *testing.B) {
	chk, err := dpop.New(dpop.Config{})
	if err != nil {
		b.Fatal(err)
	}
	e, idp, _ := newEnforcer(b, extauthz.Config{DPoP: chk}, 0, example(b, "coffeebar"))
	key := tu.NewDPoPKey(b)
	c := idp.Claims(aud, "read:menu")
	c["cnf"] = map[string]any{"jkt": key.Thumbprint()}
	tok := idp.Sign("rsa", "RS256", c)
	ext := map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "GET /menu"}
	reqs := func(n int) []*authv3.CheckRequest {
		out := make([]*authv3.CheckRequest, n)
		for i := range out {
			out[i] = extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu", Host: "gw.test", ContextExtensions: ext,
				Headers: map[string]string{"authorization": "DPoP " + tok, "dpop": key.Proof("GET", "https://gw.test/coffeebar/v1/menu", tok)}})
		}
		return out
	}
	batch := reqs(1)
	if resp, _ := e.Check(b.Context(), batch[0]); resp.GetOkResponse() == nil {
		b.Fatalf("not allowed: %v", resp.GetDeniedResponse().GetBody())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%len(batch) == 0 {
			b.StopTimer()
			batch = reqs(1000) // fresh proofs: each is good once
			b.StartTimer()
		}
		if resp, _ := e.Check(b.Context(), batch[i%len(batch)]); resp.GetOkResponse() == nil {
			b.Fatal("a fresh proof was refused")
		}
	}
}

// The stages of a cached-token Check, each as the runner times it (one Check in 16, so the
// run is long enough for every stage to have samples): mean ns per stage, from
// tollgate_authz_stage_seconds.
func BenchmarkCheckStages(b *testing.B) {
	reg := prometheus.NewRegistry()
	e, idp, _ := newEnforcerOn(b, tu.NewIdP(b, "https://idp.test"), extauthz.Config{}, 0, reg, example(b, "coffeebar"))
	tok := idp.Sign("rsa", "RS256", idp.Claims(aud, "read:menu"))
	req := extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu", Headers: map[string]string{"authorization": "Bearer " + tok},
		ContextExtensions: map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "GET /menu"}})
	loopCheck(b, e, req)
	b.StopTimer()
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tollgate_authz_stage_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if h := m.GetHistogram(); l.GetName() == "stage" && h.GetSampleCount() > 0 {
					b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount())*1e9, l.GetValue()+"-ns")
				}
			}
		}
	}
}

// benchValidated times a Check with a cached token and a JSON body of about size bytes on
// the operation that validates it (or the same operation unvalidated).
func benchValidated(b *testing.B, size int, validated bool) {
	e, idp, _ := newEnforcer(b, extauthz.Config{}, 0, tu.OrdersAPI("https://idp.test"))
	tok := idp.Sign("rsa", "RS256", idp.Claims(aud, ""))
	op := "POST /orders"
	if !validated {
		op += "-unchecked"
	}
	req := extauthz.NewCheckRequest(extauthz.Request{Method: "POST", Path: "/orders/v1" + op[5:], Body: tu.OrderBody(size),
		Headers:           map[string]string{"authorization": "Bearer " + tok, "content-type": "application/json"},
		ContextExtensions: map[string]string{apimodel.RouteKeyAPI: "orders/v1", apimodel.RouteKeyOperation: op}})
	b.SetBytes(int64(len(req.GetAttributes().GetRequest().GetHttp().GetRawBody())))
	loopCheck(b, e, req)
}

// A cached token and a 1 KB (100 KB) JSON body validated against the operation's schema,
// and the same Check on an operation that does not validate: the difference is what
// validation costs.
func BenchmarkCheckValidated1KB(b *testing.B)     { benchValidated(b, 1<<10, true) }
func BenchmarkCheckUnvalidated1KB(b *testing.B)   { benchValidated(b, 1<<10, false) }
func BenchmarkCheckValidated100KB(b *testing.B)   { benchValidated(b, 100<<10, true) }
func BenchmarkCheckUnvalidated100KB(b *testing.B) { benchValidated(b, 100<<10, false) }

// A response checked by the ext_proc service over a real gRPC connection on loopback, as
// Envoy sends it: the response headers, then the buffered 1 KB JSON body, on one stream.
// The allocations are the client's and the server's together.
func BenchmarkProcessResponse1KB(b *testing.B) {
	e, _, _ := newEnforcer(b, extauthz.Config{}, 0, tu.OrdersAPI("https://idp.test"))
	benchProcess(b, func(s *grpc.Server) { e.Register(s) })
}

// The same streams to a do-nothing ExternalProcessor (it answers every message "go
// on"): the floor of BenchmarkProcessResponse1KB, gRPC's own cost on both sides.
func BenchmarkProcessNothing1KB(b *testing.B) {
	benchProcess(b, func(s *grpc.Server) { extprocv3.RegisterExternalProcessorServer(s, nothingProcessor{}) })
}

type nothingProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (nothingProcessor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
		if req.GetResponseBody() != nil {
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

func benchProcess(b *testing.B, register func(*grpc.Server)) {
	lis, err := tu.ListenLow()
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(extauthz.ServerOptions()...)
	register(srv)
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)
	ctx := metadata.AppendToOutgoingContext(b.Context(), apimodel.ProcessAPIKey, "orders/v1", apimodel.ProcessOperationKey, "GET /orders/{id}")
	msgs := tu.OrderResponse(1 << 10)
	stream := func() {
		s, err := client.Process(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			if err := s.Send(m); err != nil {
				b.Fatal(err)
			}
			resp, err := s.Recv()
			if err != nil || resp.GetImmediateResponse() != nil {
				b.Fatalf("%v %v", resp, err)
			}
		}
		s.CloseSend()
		if _, err := s.Recv(); err == nil {
			b.Fatal("the stream did not end")
		}
	}
	stream()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		stream()
	}
}
