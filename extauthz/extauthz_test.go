package extauthz_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/store"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/policies/introspect"
	"github.com/tollgate-gw/tollgate/policies/jwt"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/policies/revocation"
)

const aud = "coffeebar"

// rig is an enforcer behind a real gRPC socket, trusting a real local IdP.
type rig struct {
	idp    *tu.IdP
	client authv3.AuthorizationClient
	proc   extprocv3.ExternalProcessorClient // the same port's ext_proc service
	reg    *catalog.Registry
}

func newRig(t *testing.T, cfg extauthz.Config, defs ...string) *rig {
	return newRigWith(t, cfg, nil, defs...)
}

func newRigWith(t *testing.T, cfg extauthz.Config, revoked *revocation.Set, defs ...string) *rig {
	t.Helper()
	if revoked != nil {
		cfg.Revocations = revoked
	}
	e, idp, reg := newEnforcer(t, cfg, 0, defs...)
	return serveRig(t, e, idp, reg)
}

// newEnforcer is an in-process enforcer for defs trusting a real local IdP (RS256, EC and
// Ed25519 keys over a JWKS URL). A negative cacheSize disables the verified-token cache.
func newEnforcer(t testing.TB, cfg extauthz.Config, cacheSize int, defs ...string) (*extauthz.Enforcer, *tu.IdP, *catalog.Registry) {
	t.Helper()
	return newEnforcerOn(t, tu.NewIdP(t, "https://idp.test"), cfg, cacheSize, prometheus.NewRegistry(), defs...)
}

// newEnforcerWithIdP is an enforcer trusting an IdP another one trusts too (a replica).
func newEnforcerWithIdP(t testing.TB, idp *tu.IdP, cfg extauthz.Config, defs ...string) (*extauthz.Enforcer, *tu.IdP, *catalog.Registry) {
	t.Helper()
	return newEnforcerOn(t, idp, cfg, 0, prometheus.NewRegistry(), defs...)
}

func newEnforcerOn(t testing.TB, idp *tu.IdP, cfg extauthz.Config, cacheSize int, metrics prometheus.Registerer, defs ...string) (*extauthz.Enforcer, *tu.IdP, *catalog.Registry) {
	t.Helper()
	v, err := jwt.New(jwt.Config{
		Issuers:      []jwt.IssuerConfig{{Name: "idp", Issuer: idp.Issuer, JWKSURL: idp.JWKSURL(), Audiences: []string{aud}}},
		ClaimHeaders: map[string]string{"sub": "x-user", "azp": "x-client-id"},
		CacheSize:    cacheSize,
	}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	go v.Run(t.Context())
	for !v.Ready() {
		time.Sleep(time.Millisecond)
	}
	reg := catalog.New(zap.NewNop(), nil)
	var apis []*apimodel.API
	for _, d := range defs {
		res, err := openapi.Parse("test.yaml", []byte(d))
		if err != nil {
			t.Fatal(err)
		}
		apis = append(apis, res.API)
	}
	reg.Set(apis)
	return extauthz.New(cfg, reg, v, zap.NewNop(), metrics), idp, reg
}

// serveRig puts an enforcer behind a real gRPC socket.
func serveRig(t *testing.T, e *extauthz.Enforcer, idp *tu.IdP, reg *catalog.Registry) *rig {
	t.Helper()
	lis, err := tu.ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	e.Register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rig{idp: idp, client: authv3.NewAuthorizationClient(conn), proc: extprocv3.NewExternalProcessorClient(conn), reg: reg}
}

func example(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", name, name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type result struct {
	status  int // 200 when allowed
	body    string
	headers map[string]string
	resp    *authv3.CheckResponse
}

func (r *rig) check(t *testing.T, method, path, authz string, ext map[string]string) result {
	t.Helper()
	hs := map[string]string{}
	if authz != "" {
		hs["authorization"] = authz
	}
	resp, err := r.client.Check(t.Context(), extauthz.NewCheckRequest(extauthz.Request{Method: method, Path: path, Host: "gw.test", Headers: hs, ContextExtensions: ext}))
	if err != nil {
		t.Fatalf("Check returned a gRPC error: %v", err)
	}
	out := result{headers: map[string]string{}, resp: resp}
	if d := resp.GetDeniedResponse(); d != nil {
		out.status = int(d.GetStatus().GetCode())
		out.body = d.GetBody()
		for _, h := range d.GetHeaders() {
			out.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		return out
	}
	out.status = 200
	for _, h := range resp.GetOkResponse().GetHeaders() {
		out.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return out
}

func (r *rig) token(scopes string) string {
	return "Bearer " + r.idp.Sign("rsa", "RS256", r.idp.Claims(aud, scopes))
}

// The coffeebar example's scope table, end to end through Check over gRPC.
func TestCoffeebarScopeTable(t *testing.T) {
	r := newRig(t, extauthz.Config{}, example(t, "coffeebar"))
	cases := []struct {
		method, path, scopes string
		want                 int
	}{
		{"GET", "/coffeebar/v1/menu", "read:menu", 200},
		{"GET", "/coffeebar/v1/menu", "write:order read:order", 403},
		{"POST", "/coffeebar/v1/menu", "read:menu", 403},
		{"POST", "/coffeebar/v1/menu", "admin", 200},
		{"POST", "/coffeebar/v1/order", "write:order", 200},
		{"POST", "/coffeebar/v1/order", "read:order", 403},
		{"GET", "/coffeebar/v1/order/42", "read:order", 200},
		{"GET", "/coffeebar/v1/order/42?expand=items", "read:order", 200},
		{"GET", "/coffeebar/v1/order/42", "write:order", 403},
		{"GET", "/coffeebar/v1/order", "read:order", 405}, // a known path, another method (as MGW 3.x)
		{"DELETE", "/coffeebar/v1/menu", "admin", 405},
		{"GET", "/coffeebar/v1/nowhere", "read:order", 404},
		{"GET", "/coffeebar/v2/menu", "read:menu", 404},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" with "+c.scopes, func(t *testing.T) {
			got := r.check(t, c.method, c.path, r.token(c.scopes), nil)
			if got.status != c.want {
				t.Fatalf("status %d, want %d (body %s)", got.status, c.want, got.body)
			}
		})
	}
}

// WSO2 fault bodies, byte for byte, with their statuses and RFC 6750 challenges.
func TestFaults(t *testing.T) {
	r := newRig(t, extauthz.Config{}, example(t, "coffeebar"))
	expired := r.idp.Claims(aud, "read:menu")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	wrongAud := r.idp.Claims("another-api", "read:menu")
	none, _ := gojwt.NewWithClaims(gojwt.SigningMethodNone, r.idp.Claims(aud, "read:menu")).SignedString(gojwt.UnsafeAllowNoneSignatureType)
	cases := []struct {
		name, method, path, authz string
		status                    int
		body, challenge           string
	}{
		{"missing credentials is 900902", "GET", "/coffeebar/v1/menu", "", 401,
			`{"fault":{"code":900902, "message":"Missing Credentials", "description":"Missing Credentials. Make sure your API invocation call has a header: 'Authorization: Bearer ACCESS_TOKEN'"}}`,
			`Bearer realm="coffeebar/v1"`},
		{"a Basic credential on a bearer resource is 900902", "GET", "/coffeebar/v1/menu", "Basic YWxpY2U6c2VjcmV0", 401, `"code":900902`, `Bearer realm="coffeebar/v1"`},
		{"bad signature is 900901", "GET", "/coffeebar/v1/menu", "Bearer " + r.idp.Sign("rsa", "RS256", r.idp.Claims(aud, "read:menu"))[:40] + "x.y.z", 401,
			"", ""},
		{"wrong audience is 900901", "GET", "/coffeebar/v1/menu", "Bearer " + r.idp.Sign("rsa", "RS256", wrongAud), 401,
			`{"fault":{"code":900901, "message":"Invalid Credentials", "description":"Invalid Credentials. Make sure you have provided the correct security credentials"}}`,
			`Bearer realm="coffeebar/v1", error="invalid_token", error_description="Invalid Credentials"`},
		{"alg none is 900901", "GET", "/coffeebar/v1/menu", "Bearer " + none, 401, `"code":900901`, `error="invalid_token"`},
		{"expired is 900903", "GET", "/coffeebar/v1/menu", "Bearer " + r.idp.Sign("rsa", "RS256", expired), 401,
			`{"fault":{"code":900903, "message":"Access Token Expired", "description":"Access Token Expired. Renew the access token and try again"}}`,
			`Bearer realm="coffeebar/v1", error="invalid_token", error_description="Access Token Expired"`},
		{"malformed is 900918", "GET", "/coffeebar/v1/menu", "Bearer not-a-jwt", 401,
			`{"fault":{"code":900918, "message":"Malformed token", "description":"Malformed token. Make sure you have provided a well-formed access token"}}`,
			`error="invalid_token"`},
		{"a huge token is 900918", "GET", "/coffeebar/v1/menu", "Bearer " + strings.Repeat("A", 64<<10), 401, `"code":900918`, ""},
		{"missing scope is 900910", "GET", "/coffeebar/v1/menu", r.token("read:order"), 403,
			`{"fault":{"code":900910, "message":"The access token does not allow you to access the requested resource", "description":"The access token does not allow you to access the requested resource"}}`,
			`Bearer realm="coffeebar/v1", error="insufficient_scope", scope="read:menu"`},
		{"no resource is MGW 3.x's 404", "GET", "/coffeebar/v1/nothing-here", r.token("read:menu"), 404,
			`{"code":404, "type":"Status report", "message":"Runtime Error", "description":"No matching resource found for given API Request"}`,
			""},
		{"no API is 900906", "GET", "/unknown/v1/x", "", 404,
			`{"fault":{"code":900906, "message":"No matching resource found in the API for the given request", "description":"No matching resource found in the API for the given request. Check the API documentation and add a proper REST resource path to the invocation URL"}}`,
			""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := r.check(t, c.method, c.path, c.authz, nil)
			if got.status != c.status {
				t.Fatalf("status %d, want %d: %s", got.status, c.status, got.body)
			}
			if got.headers["content-type"] != "application/json" {
				t.Errorf("content-type %q", got.headers["content-type"])
			}
			if strings.HasPrefix(c.body, "{") && got.body != c.body {
				t.Errorf("body\n got %s\nwant %s", got.body, c.body)
			} else if !strings.Contains(got.body, c.body) {
				t.Errorf("body %s does not contain %s", got.body, c.body)
			}
			if c.challenge != "" && !strings.Contains(got.headers["www-authenticate"], c.challenge) {
				t.Errorf("www-authenticate %q, want %q", got.headers["www-authenticate"], c.challenge)
			}
			if strings.Contains(got.body, "eyJ") {
				t.Error("the deny body echoes a token")
			}
		})
	}
}

func TestAllowCarriesHeadersAndMetadata(t *testing.T) {
	r := newRig(t, extauthz.Config{RemoveAuthorization: true}, example(t, "coffeebar"))
	got := r.check(t, "GET", "/coffeebar/v1/menu", r.token("read:menu"), nil)
	if got.status != 200 {
		t.Fatalf("status %d %s", got.status, got.body)
	}
	if got.headers["x-user"] != "alice" || got.headers["x-client-id"] != "app-1" {
		t.Errorf("backend headers %v", got.headers)
	}
	if rm := got.resp.GetOkResponse().GetHeadersToRemove(); len(rm) != 2 || rm[0] != "authorization" || rm[1] != apimodel.EnvironmentHeader {
		t.Errorf("headers to remove %v", rm)
	}
	md := got.resp.GetDynamicMetadata().AsMap()
	if md["subject"] != "alice" || md["client_id"] != "app-1" || md["api"] != "coffeebar/v1" || md["operation"] != "GET /menu" {
		t.Errorf("dynamic metadata %v", md)
	}
}

// Only the enforcer chooses the sandbox: a client-sent environment header is removed, and a
// sandbox token (WSO2's keytype claim) sets it.
func TestSandboxIsChosenByTheToken(t *testing.T) {
	r := newRig(t, extauthz.Config{}, example(t, "coffeebar"))
	hs := map[string]string{"authorization": r.token("read:menu"), apimodel.EnvironmentHeader: "sandbox"}
	resp, err := r.client.Check(t.Context(), extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu", Headers: hs}))
	if err != nil {
		t.Fatal(err)
	}
	ok := resp.GetOkResponse()
	if rm := ok.GetHeadersToRemove(); len(rm) != 1 || rm[0] != apimodel.EnvironmentHeader {
		t.Errorf("a production token: headers to remove %v", rm)
	}
	c := r.idp.Claims(aud, "read:menu")
	c["keytype"] = "SANDBOX"
	got := r.check(t, "GET", "/coffeebar/v1/menu", "Bearer "+r.idp.Sign("rsa", "RS256", c), nil)
	if got.headers[apimodel.EnvironmentHeader] != "sandbox" || len(got.resp.GetOkResponse().GetHeadersToRemove()) != 0 {
		t.Errorf("a sandbox token: headers %v, removed %v", got.headers, got.resp.GetOkResponse().GetHeadersToRemove())
	}
}

func TestRouteMetadataSkipsPathMatching(t *testing.T) {
	r := newRig(t, extauthz.Config{}, example(t, "coffeebar"))
	ext := map[string]string{apimodel.RouteKeyAPI: "coffeebar/v1", apimodel.RouteKeyOperation: "POST /menu"}
	// The path would match GET /menu; the route says POST /menu, which needs admin.
	if got := r.check(t, "GET", "/rewritten/by/envoy", r.token("read:menu"), ext); got.status != 403 {
		t.Fatalf("status %d, want the route's operation (403): %s", got.status, got.body)
	}
	if got := r.check(t, "GET", "/rewritten/by/envoy", r.token("admin"), ext); got.status != 200 {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	ext[apimodel.RouteKeyOperation] = "GET /nope"
	if got := r.check(t, "GET", "/coffeebar/v1/menu", r.token("admin"), ext); got.status != 404 {
		t.Fatalf("unknown operation in route metadata: %d", got.status)
	}
}

// Alternatives are OR; scopes and schemes inside one alternative are AND.
func TestSecurityAndOr(t *testing.T) {
	def := `openapi: 3.0.3
info: {title: Logic, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {a: a, b: b, c: c}}}}
    jwt: {type: http, scheme: bearer}
    key: {type: apiKey, in: header, name: x-api-key}
paths:
  /and-or:
    get:
      security: [{oauth: [a, b]}, {oauth: [c]}]
      responses: {"200": {description: ok}}
  /two-schemes:
    get:
      security: [{oauth: [a], jwt: [b]}]
      responses: {"200": {description: ok}}
  /key-or-token:
    get:
      security: [{key: []}, {jwt: [a]}]
      responses: {"200": {description: ok}}
  /open:
    get:
      security: [{}]
      responses: {"200": {description: ok}}
`
	r := newRig(t, extauthz.Config{}, def)
	cases := []struct {
		path, scopes string
		want         int
	}{
		{"/and-or", "a b", 200},
		{"/and-or", "c", 200},
		{"/and-or", "a", 403},
		{"/and-or", "b", 403},
		{"/and-or", "a c", 200},
		{"/two-schemes", "a b", 200},
		{"/two-schemes", "a", 403},
		{"/key-or-token", "a", 200},
		{"/key-or-token", "b", 403},
	}
	for _, c := range cases {
		if got := r.check(t, "GET", "/logic/v1"+c.path, r.token(c.scopes), nil); got.status != c.want {
			t.Errorf("%s with %q: %d, want %d", c.path, c.scopes, got.status, c.want)
		}
	}
	if got := r.check(t, "GET", "/logic/v1/open", "", nil); got.status != 200 {
		t.Errorf("open resource without credentials: %d %s", got.status, got.body)
	}
	if got := r.check(t, "GET", "/logic/v1/open", "Bearer garbage", nil); got.status != 200 {
		t.Errorf("open resource with a bad token: %d", got.status)
	}
	if got := r.check(t, "GET", "/logic/v1/key-or-token", "", nil); got.status != 401 {
		t.Errorf("no credentials at all: %d", got.status)
	}
}

func TestProblemJSONFormat(t *testing.T) {
	r := newRig(t, extauthz.Config{Format: extauthz.FormatProblem}, example(t, "coffeebar"))
	got := r.check(t, "GET", "/coffeebar/v1/menu", "", nil)
	want := `{"type":"https://tollgate.dev/faults/900902","title":"Missing Credentials","status":401,"detail":"Missing Credentials. Make sure your API invocation call has a header: 'Authorization: Bearer ACCESS_TOKEN'","code":900902}`
	if got.body != want || got.headers["content-type"] != "application/problem+json" {
		t.Errorf("got %s (%s)", got.body, got.headers["content-type"])
	}
}

func TestGarbageRequestsAreDeniedNotCrashed(t *testing.T) {
	r := newRig(t, extauthz.Config{}, example(t, "coffeebar"))
	for _, req := range []*authv3.CheckRequest{
		{},
		{Attributes: &authv3.AttributeContext{}},
		{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{}}}},
	} {
		resp, err := r.client.Check(t.Context(), req)
		if err != nil || resp.GetDeniedResponse() == nil {
			t.Errorf("want a deny, got %v %v", resp, err)
		}
	}
	weird := []string{"Bearer", "Bearer ", "bearer\tx.y.z", "Bearer a.b", strings.Repeat("Bearer ", 1000), "Bearer \x00\x01.\x02.\x03"}
	for _, h := range weird {
		if got := r.check(t, "GET", "/coffeebar/v1/menu", h, nil); got.status != 401 {
			t.Errorf("%q: %d", h, got.status)
		}
	}
}

// A revoked token is denied with 900901 "Token revoked" — also when it was verified and
// cached before the revocation arrived.
func TestRevokedTokenIsDeniedEvenWhenCached(t *testing.T) {
	set := revocation.New(zap.NewNop(), nil)
	r := newRigWith(t, extauthz.Config{}, set, example(t, "coffeebar"))
	claims := r.idp.Claims(aud, "read:menu")
	tok := "Bearer " + r.idp.Sign("rsa", "RS256", claims)
	if got := r.check(t, "GET", "/coffeebar/v1/menu", tok, nil); got.status != 200 {
		t.Fatalf("before revocation: %d", got.status)
	}
	set.Update(store.Event{KV: store.KV{Key: "jti/" + claims["jti"].(string)}})
	got := r.check(t, "GET", "/coffeebar/v1/menu", tok, nil)
	want := `{"fault":{"code":900901, "message":"Invalid Credentials", "description":"Token revoked"}}`
	if got.status != 401 || got.body != want {
		t.Fatalf("revoked: %d %s", got.status, got.body)
	}
	if !strings.Contains(got.headers["www-authenticate"], `error="invalid_token"`) {
		t.Errorf("www-authenticate %q", got.headers["www-authenticate"])
	}
	// Another token of the same subject is unaffected.
	if got := r.check(t, "GET", "/coffeebar/v1/menu", r.token("read:menu"), nil); got.status != 200 {
		t.Errorf("another token: %d", got.status)
	}
}

// Opaque tokens are introspected (RFC 7662) and revocable by their hash.
func TestOpaqueTokens(t *testing.T) {
	idp := tu.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.FormValue("token") {
		case "opaque-good", "opaque-revoked":
			w.Write([]byte(`{"active":true,"scope":"read:menu","sub":"carol","client_id":"app-9"}`))
		default:
			w.Write([]byte(`{"active":false}`))
		}
	}))
	defer idp.Close()
	in, err := introspect.New(introspect.Config{Name: "corp", URL: idp.URL, ClientID: "gw"}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	set := revocation.New(zap.NewNop(), nil)
	r := newRigWith(t, extauthz.Config{Opaque: []extauthz.OpaqueIssuer{in}}, set, example(t, "coffeebar"))
	if got := r.check(t, "GET", "/coffeebar/v1/menu", "Bearer opaque-good", nil); got.status != 200 || got.resp.GetDynamicMetadata().AsMap()["subject"] != "carol" {
		t.Errorf("active opaque token: %d %s", got.status, got.body)
	}
	if got := r.check(t, "POST", "/coffeebar/v1/menu", "Bearer opaque-good", nil); got.status != 403 {
		t.Errorf("missing scope: %d", got.status)
	}
	got := r.check(t, "GET", "/coffeebar/v1/menu", "Bearer opaque-unknown", nil)
	if want := `{"fault":{"code":900904, "message":"Access Token Inactive", "description":"Access Token Inactive. Generate a new access token and try again"}}`; got.status != 401 || got.body != want {
		t.Errorf("inactive: %d %s", got.status, got.body)
	}
	sum := sha256.Sum256([]byte("opaque-revoked"))
	set.Update(store.Event{KV: store.KV{Key: "hash/" + hex.EncodeToString(sum[:])}})
	if got := r.check(t, "GET", "/coffeebar/v1/menu", "Bearer opaque-revoked", nil); got.status != 401 || !strings.Contains(got.body, "Token revoked") {
		t.Errorf("revoked opaque token: %d %s", got.status, got.body)
	}
	// JWTs still go to the JWT verifier.
	if got := r.check(t, "GET", "/coffeebar/v1/menu", r.token("read:menu"), nil); got.status != 200 {
		t.Errorf("a JWT alongside introspection: %d", got.status)
	}
}

// Throttled requests get 429 with the level's WSO2 fault and Retry-After; allowed ones carry
// RateLimit headers.
func TestThrottling(t *testing.T) {
	engine := ratelimit.NewEngine(ratelimit.NewLocal(), zap.NewNop(), nil)
	engine.Update(store.Event{KV: store.KV{Key: "two-per-minute", Value: []byte("kind: ThrottlingPolicy\nname: two-per-minute\nrate: 2/minute\nburst: 2\n")}})
	engine.Update(store.Event{KV: store.KV{Key: "app-one", Value: []byte("kind: ThrottlingPolicy\nname: app-one\nrate: 1/minute\nburst: 1\n")}})
	def := strings.Replace(example(t, "coffeebar"), "      operationId: getMenu\n", "      operationId: getMenu\n      x-tollgate-throttling: two-per-minute\n", 1)
	r := newRig(t, extauthz.Config{Throttle: engine, RateLimitHeaders: true}, def)
	tok := r.token("read:menu read:order")
	for i := range 2 {
		got := r.check(t, "GET", "/coffeebar/v1/menu", tok, nil)
		if got.status != 200 {
			t.Fatalf("request %d: %d %s", i, got.status, got.body)
		}
		hs := map[string]string{}
		for _, h := range got.resp.GetOkResponse().GetResponseHeadersToAdd() {
			hs[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		if hs["ratelimit-limit"] != "2" || hs["ratelimit-remaining"] != fmt.Sprint(1-i) || hs["ratelimit-policy"] != "2;w=60;burst=2" {
			t.Errorf("request %d rate-limit headers %v", i, hs)
		}
	}
	got := r.check(t, "GET", "/coffeebar/v1/menu", tok, nil)
	if got.status != 429 || got.body != `{"fault":{"code":900802, "message":"Message throttled out", "description":"You have exceeded your quota"}}` {
		t.Fatalf("third request: %d %s", got.status, got.body)
	}
	if ra := got.headers["retry-after"]; ra != "30" {
		t.Errorf("retry-after %q, want 30 (one request per 30s)", ra)
	}
	// Another resource is not limited by this one's policy.
	if got := r.check(t, "GET", "/coffeebar/v1/order/1", tok, nil); got.status != 200 {
		t.Errorf("another resource: %d", got.status)
	}
	// The application tier comes from the token: 900803.
	c := r.idp.Claims(aud, "read:order")
	c["application_tier"] = "app-one"
	c["azp"] = "tiny-app"
	appTok := "Bearer " + r.idp.Sign("rsa", "RS256", c)
	r.check(t, "GET", "/coffeebar/v1/order/1", appTok, nil)
	if got := r.check(t, "GET", "/coffeebar/v1/order/2", appTok, nil); got.status != 429 || !strings.Contains(got.body, "900803") {
		t.Errorf("application tier: %d %s", got.status, got.body)
	}
	// WSO2 API Manager's tokens carry the tiers in their own claims: "application.tier",
	// and the subscription's in the "subscribedAPIs" entry for this API (name and version).
	w := r.idp.Claims(aud, "read:order")
	w["azp"] = "wso2-app"
	w["application"] = map[string]any{"name": "DefaultApplication", "tier": "app-one"}
	wsoTok := "Bearer " + r.idp.Sign("rsa", "RS256", w)
	r.check(t, "GET", "/coffeebar/v1/order/1", wsoTok, nil)
	if got := r.check(t, "GET", "/coffeebar/v1/order/2", wsoTok, nil); got.status != 429 || !strings.Contains(got.body, "900803") {
		t.Errorf("WSO2 application.tier: %d %s", got.status, got.body)
	}
	w = r.idp.Claims(aud, "read:order")
	w["azp"] = "wso2-subscriber"
	w["subscribedAPIs"] = []any{
		map[string]any{"name": "PizzaShack", "context": "/pizzashack/v1", "version": "v1", "subscriptionTier": "Unlimited"},
		map[string]any{"name": "Coffeebar", "context": "/coffeebar/v1", "version": "v1", "subscriptionTier": "app-one"},
	}
	subTok := "Bearer " + r.idp.Sign("rsa", "RS256", w)
	r.check(t, "GET", "/coffeebar/v1/order/1", subTok, nil)
	if got := r.check(t, "GET", "/coffeebar/v1/order/2", subTok, nil); got.status != 429 || !strings.Contains(got.body, "900804") {
		t.Errorf("WSO2 subscribedAPIs tier: %d %s", got.status, got.body)
	}
	w["subscribedAPIs"] = []any{map[string]any{"name": "Coffeebar", "context": "/coffeebar/v2", "version": "v2", "subscriptionTier": "app-one"}}
	w["azp"] = "wso2-other-version"
	otherTok := "Bearer " + r.idp.Sign("rsa", "RS256", w)
	for i := range 2 {
		if got := r.check(t, "GET", "/coffeebar/v1/order/1", otherTok, nil); got.status != 200 {
			t.Errorf("a subscription to another version limited request %d: %d %s", i, got.status, got.body)
		}
	}
	// A policy the definition names but nobody defined: 900809.
	c["application_tier"] = "no-such-policy"
	if got := r.check(t, "GET", "/coffeebar/v1/order/1", "Bearer "+r.idp.Sign("rsa", "RS256", c), nil); got.status != 500 || got.body != `{"fault":{"code":900809, "message":"Internal server error occured", "description":"POLICY ENFORCEMENT ERROR"}}` {
		t.Errorf("unknown policy: %d %s", got.status, got.body)
	}
}

// The bodies MGW 3.x's own tests expect (ResponseConstants.java), byte for byte: a known
// path with another method is 405 with Allow; a path the API does not have is its 404;
// the throttling and policy faults (900800, 900802, 900809) are pinned in TestThrottling
// and TestFaults with the same separators (", " between members, none after ':').
func TestMGW3FaultBodies(t *testing.T) {
	r := newRig(t, extauthz.Config{}, example(t, "coffeebar"))
	got := r.check(t, "DELETE", "/coffeebar/v1/menu", r.token("admin"), nil)
	if got.status != 405 || got.headers["allow"] != "GET, POST" ||
		got.body != `{"code":405, "type":"Status report", "message":"Runtime Error", "description":"Method not allowed for given API resource"}` {
		t.Errorf("405: %d allow=%q %s", got.status, got.headers["allow"], got.body)
	}
	if got := r.check(t, "GET", "/coffeebar/v1/nowhere", r.token("admin"), nil); got.status != 404 ||
		got.body != `{"code":404, "type":"Status report", "message":"Runtime Error", "description":"No matching resource found for given API Request"}` {
		t.Errorf("unknown path: %d %s", got.status, got.body)
	}
	// The problem format keeps WSO2's code for the same event.
	p := newRig(t, extauthz.Config{Format: extauthz.FormatProblem}, example(t, "coffeebar"))
	if got := p.check(t, "GET", "/coffeebar/v1/nowhere", p.token("admin"), nil); got.status != 404 || !strings.Contains(got.body, `"code":900906`) {
		t.Errorf("unknown path, problem format: %d %s", got.status, got.body)
	}
}

const twoIdPsAPI = `openapi: 3.1.0
info: {title: Two, version: v1}
x-tollgate-basePath: /two
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
components:
  securitySchemes:
    anyIdP: {type: http, scheme: bearer}
    corpOnly: {type: http, scheme: bearer, x-tollgate-issuers: [corp]}
    jwtOnly: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {}}}, x-tollgate-issuers: [idp]}
paths:
  /any: {get: {security: [{anyIdP: []}], responses: {"200": {description: ok}}}}
  /corp: {get: {security: [{corpOnly: []}], responses: {"200": {description: ok}}}}
  /jwt: {get: {security: [{jwtOnly: []}], responses: {"200": {description: ok}}}}
  /either: {get: {security: [{corpOnly: []}, {jwtOnly: []}], responses: {"200": {description: ok}}}}
`

// Issue 23, item 4: a gateway in front of two identity providers with opaque tokens asks
// each in order (as Authorino tries an AuthConfig's identity sources) unless the scheme
// names the issuers it accepts (x-tollgate-issuers); each answer is cached per issuer.
func TestSeveralIntrospectionServers(t *testing.T) {
	var corpCalls, partnerCalls atomic.Int64
	var partnerDown atomic.Bool
	server := func(name, known string, calls *atomic.Int64, down *atomic.Bool) *introspect.Introspector {
		srv := tu.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if down != nil && down.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			if r.FormValue("token") == known {
				fmt.Fprintf(w, `{"active":true,"sub":"%s-user","client_id":"%s-app"}`, name, name)
				return
			}
			w.Write([]byte(`{"active":false}`))
		}))
		in, err := introspect.New(introspect.Config{Name: name, URL: srv.URL, ClientID: "gw"}, zap.NewNop(), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	corp := server("corp", "corp-token", &corpCalls, nil)
	partner := server("partner", "partner-token", &partnerCalls, &partnerDown)
	set := revocation.New(zap.NewNop(), nil)
	r := newRigWith(t, extauthz.Config{Opaque: []extauthz.OpaqueIssuer{corp, partner}}, set, twoIdPsAPI)
	subject := func(got result) any { return got.resp.GetDynamicMetadata().AsMap()["subject"] }

	// Any issuer: each token is found at its own server, the first asked first.
	if got := r.check(t, "GET", "/two/any", "Bearer corp-token", nil); got.status != 200 || subject(got) != "corp-user" {
		t.Errorf("corp token: %d %s %v", got.status, got.body, subject(got))
	}
	if got := r.check(t, "GET", "/two/any", "Bearer partner-token", nil); got.status != 200 || subject(got) != "partner-user" {
		t.Errorf("partner token: %d %s %v", got.status, got.body, subject(got))
	}
	if corpCalls.Load() != 2 || partnerCalls.Load() != 1 {
		t.Errorf("calls: corp %d, partner %d; want 2, 1", corpCalls.Load(), partnerCalls.Load())
	}
	// Cached per issuer: asked again, no server is called.
	r.check(t, "GET", "/two/any", "Bearer partner-token", nil)
	if corpCalls.Load() != 2 || partnerCalls.Load() != 1 {
		t.Errorf("cached: corp %d, partner %d", corpCalls.Load(), partnerCalls.Load())
	}
	// A token no issuer knows is inactive (900904).
	if got := r.check(t, "GET", "/two/any", "Bearer nobody", nil); got.status != 401 || !strings.Contains(got.body, "900904") {
		t.Errorf("unknown token: %d %s", got.status, got.body)
	}
	// A scheme that names its issuer asks only that one: the partner's token is never
	// shown to it... and the corp server, asked, does not know it.
	before := partnerCalls.Load()
	if got := r.check(t, "GET", "/two/corp", "Bearer partner-token", nil); got.status != 401 {
		t.Errorf("partner token on a corp-only scheme: %d %s", got.status, got.body)
	}
	if partnerCalls.Load() != before {
		t.Errorf("a corp-only scheme asked the partner server")
	}
	if got := r.check(t, "GET", "/two/corp", "Bearer corp-token", nil); got.status != 200 {
		t.Errorf("corp token on the corp-only scheme: %d %s", got.status, got.body)
	}
	// A JWT-only scheme refuses the opaque tokens and takes the JWT issuer's; the other
	// way round too.
	if got := r.check(t, "GET", "/two/jwt", "Bearer corp-token", nil); got.status != 401 {
		t.Errorf("opaque token on a JWT-only scheme: %d %s", got.status, got.body)
	}
	if got := r.check(t, "GET", "/two/jwt", r.token(""), nil); got.status != 200 {
		t.Errorf("JWT on the JWT-only scheme: %d %s", got.status, got.body)
	}
	if got := r.check(t, "GET", "/two/corp", r.token(""), nil); got.status != 401 || !strings.Contains(got.body, "900901") {
		t.Errorf("JWT on the corp-only scheme: %d %s", got.status, got.body)
	}
	// Alternatives of different issuers: either passes.
	for _, tok := range []string{"Bearer corp-token", r.token("")} {
		if got := r.check(t, "GET", "/two/either", tok, nil); got.status != 200 {
			t.Errorf("either: %d %s", got.status, got.body)
		}
	}
	// One server away and no other knows the token: it could not be checked (900900, as
	// with one server away), not "inactive"; a token the reachable one knows still passes.
	partnerDown.Store(true)
	if got := r.check(t, "GET", "/two/any", "Bearer new-partner-token", nil); got.status != 500 || !strings.Contains(got.body, "900900") {
		t.Errorf("a server away: %d %s", got.status, got.body)
	}
	if got := r.check(t, "GET", "/two/any", "Bearer corp-token", nil); got.status != 200 {
		t.Errorf("the other server's token while one is away: %d %s", got.status, got.body)
	}
	// Revocation by hash holds whichever issuer answered.
	sum := sha256.Sum256([]byte("partner-token"))
	set.Update(store.Event{KV: store.KV{Key: "hash/" + hex.EncodeToString(sum[:])}})
	if got := r.check(t, "GET", "/two/any", "Bearer partner-token", nil); got.status != 401 || !strings.Contains(got.body, "revoked") {
		t.Errorf("revoked partner token: %d %s", got.status, got.body)
	}
}
