package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// asServer is an authorization server of opaque tokens that publishes RFC 8414 metadata
// (at the location inserted before the issuer's path, §3.1) naming its introspection
// endpoint; the metadata can be taken away and the endpoint moved.
type asServer struct {
	url, issuer string
	known       string // the one active token
	metaDown    atomic.Bool
	mu          sync.Mutex
	endpoint    string         // path of the introspection endpoint
	calls       map[string]int // introspections by path
}

func newASServer(t *testing.T, known string) *asServer {
	s := &asServer{known: known, endpoint: "/oauth2/introspect", calls: map[string]int{}}
	srv := testutil.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case r.URL.Path == "/.well-known/oauth-authorization-server/tenant":
			if s.metaDown.Load() {
				http.Error(w, "away", http.StatusServiceUnavailable)
				return
			}
			json.NewEncoder(w).Encode(map[string]string{"issuer": s.issuer, "introspection_endpoint": s.url + s.endpoint, "token_endpoint": s.url + "/oauth2/token"})
		case r.URL.Path == s.endpoint:
			s.calls[r.URL.Path]++
			user, _, _ := r.BasicAuth()
			if user != "gw" {
				http.Error(w, "who are you", http.StatusUnauthorized)
				return
			}
			if r.FormValue("token") == s.known {
				fmt.Fprintf(w, `{"active":true,"sub":"%s-user","scope":"read"}`, s.known)
				return
			}
			w.Write([]byte(`{"active":false}`))
		default:
			http.NotFound(w, r)
		}
	}))
	s.url, s.issuer = srv.URL, srv.URL+"/tenant"
	return s
}

func (s *asServer) moveEndpoint(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endpoint = path
}

func (s *asServer) callsTo(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// Issue 23, items 3 and 4, over the binary: issuers configured by their URL alone (OIDC
// Discovery for a JWT issuer, RFC 8414 for an introspecting one) beside a second
// introspection server configured by its endpoint. Tokens of all three pass; a scheme that
// names its issuer takes only that one's; with the providers away the enforcer keeps
// deciding, also after a restart (from the local copies of the metadata and keys); back,
// a rotated key and a moved endpoint are picked up.
func TestDiscoveryAndSeveralIntrospectionServers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idp := testutil.NewIdP(t, "") // issuer = its URL, discovery document served
	corp := newASServer(t, "corp-token")
	partner := newASServer(t, "partner-token")
	api := write(t, dir, "two.yaml", `openapi: 3.1.0
info: {title: Two, version: v1}
x-tollgate-basePath: /two
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
components:
  securitySchemes:
    anyIdP: {type: http, scheme: bearer}
    partnerOnly: {type: http, scheme: bearer, x-tollgate-issuers: [partner]}
paths:
  /any: {get: {security: [{anyIdP: []}], responses: {"200": {description: ok}}}}
  /partner: {get: {security: [{partnerOnly: []}], responses: {"200": {description: ok}}}}
`)
	p := newPorts(t)
	cfg := write(t, dir, "tollgate.yaml", `dataDir: `+filepath.Join(dir, "data")+`
etcd: {embeddedClientAddr: `+p.etcd+`, embeddedPeerAddr: `+p.peer+`}
authz: {listen: `+p.authz+`}
xds: {listen: `+p.xds+`}
admin: {listen: `+p.admin+`}
log: {level: info, format: json}
issuers:
  - {name: idp, issuer: "`+idp.Issuer+`", audiences: [two], refreshInterval: 1s, minRefreshInterval: 1s}
  - {name: corp, issuer: "`+corp.issuer+`", introspection: true, clientID: gw, refreshInterval: 1s}
  - {name: partner, introspectionURL: "`+partner.url+`/oauth2/introspect", clientID: gw}
`)
	run := func() *proc {
		pr := startTollgate(t, "run", "--config", cfg, "-f", api)
		waitReady(t, "http://"+p.admin+"/readyz")
		return pr
	}
	pr := run()
	conn, err := grpc.NewClient(p.authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	check := func(path, token string) int {
		t.Helper()
		resp, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), extauthz.NewCheckRequest(extauthz.Request{
			Method: "GET", Path: path, Host: "localhost", Headers: map[string]string{"authorization": "Bearer " + token}}))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetOkResponse() != nil {
			return 200
		}
		return int(resp.GetDeniedResponse().GetStatus().GetCode())
	}
	jwt := func(kid, alg string) string { return idp.Sign(kid, alg, idp.Claims("two", "")) }
	want := func(what, path, token string, status int) {
		t.Helper()
		if got := check(path, token); got != status {
			t.Errorf("%s: %d, want %d", what, got, status)
		}
	}
	want("a JWT of the discovered issuer", "/two/any", jwt("rsa", "RS256"), 200)
	want("an opaque token of the discovered introspection server", "/two/any", "corp-token", 200)
	want("an opaque token of the configured introspection server", "/two/any", "partner-token", 200)
	want("an unknown opaque token", "/two/any", "nobody-token", 401)
	want("the partner's token on the partner-only scheme", "/two/partner", "partner-token", 200)
	want("the corp's token on the partner-only scheme", "/two/partner", "corp-token", 401)
	want("a JWT on the partner-only scheme", "/two/partner", jwt("ec", "ES256"), 401)
	if corp.callsTo("/oauth2/introspect") == 0 {
		t.Errorf("the discovered introspection endpoint was never called")
	}
	metrics := get(t, "http://"+p.admin+"/metrics")
	for _, issuer := range []string{"idp", "corp"} {
		if !regexp.MustCompile(`tollgate_discovery_fetches_total\{issuer="` + issuer + `",result="ok"\} [1-9]`).MatchString(metrics) {
			t.Errorf("no good metadata fetch of %s counted", issuer)
		}
	}

	// The providers go away: what was fetched stays in force, and is counted as failing.
	idp.SetDown(true)
	corp.metaDown.Store(true)
	waitMetric(t, p.admin, `tollgate_discovery_fetches_total\{issuer="idp",result="error"\} (\d+)`)
	waitMetric(t, p.admin, `tollgate_discovery_fetches_total\{issuer="corp",result="error"\} (\d+)`)
	want("a new JWT with the IdP away", "/two/any", jwt("ed", "EdDSA"), 200)

	// A restart while they are away: ready from the local copies, and deciding.
	pr.stop()
	pr = run()
	want("a JWT after a restart with the IdP away", "/two/any", jwt("rsa", "RS256"), 200)
	want("the corp's token after a restart with its metadata away", "/two/any", "corp-token", 200)

	// Back: a key added since is found, and a moved introspection endpoint is followed.
	rotated := testutil.RSAKey(t)
	idp.AddKey("rotated", rotated)
	idp.SetDown(false)
	corp.moveEndpoint("/v2/introspect")
	corp.metaDown.Store(false)
	// (An unknown key id asks for a fetch at most once per minRefreshInterval, so the
	// first try may come too soon after the last failed one.)
	deadline := time.Now().Add(15 * time.Second)
	for check("/two/any", jwt("rotated", "RS256")) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("a JWT signed by a key added while the IdP was away was not accepted within 15 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	deadline = time.Now().Add(15 * time.Second)
	for corp.callsTo("/v2/introspect") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the corp's moved introspection endpoint was not followed within 15 s")
		}
		check("/two/any", fmt.Sprintf("corp-fresh-%d", time.Now().UnixNano())) // not cached
		time.Sleep(200 * time.Millisecond)
	}
	want("the corp's token at the moved endpoint", "/two/any", "corp-token", 200)
	pr.stop()
}

// waitMetric waits up to 15 s for a counter matching re (one group: its value) to be
// above zero.
func waitMetric(t *testing.T, admin, re string) {
	t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := r.FindStringSubmatch(get(t, "http://"+admin+"/metrics")); m != nil {
			if n, _ := strconv.Atoi(m[1]); n > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no metric %s above 0 within 15 s", re)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tollgate validate holds x-tollgate-issuers to the configuration's issuers: a name it
// does not have is a warning naming the scheme (the definition stays valid).
func TestValidateWarnsOfUnknownIssuers(t *testing.T) {
	dir := t.TempDir()
	def := write(t, dir, "two.yaml", `openapi: 3.1.0
info: {title: Two, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
components:
  securitySchemes:
    partnerOnly: {type: http, scheme: bearer, x-tollgate-issuers: [partner, parnter]}
security: [{partnerOnly: []}]
paths:
  /a: {get: {responses: {"200": {description: ok}}}}
`)
	cfg := write(t, dir, "tollgate.yaml", "issuers:\n  - {name: partner, introspectionURL: \"https://as.example/introspect\", clientID: gw}\n")
	o := tollgate(t, "validate", "--config", cfg, "-f", def)
	if o.code != 0 || !strings.Contains(o.stderr, `securitySchemes.partnerOnly.x-tollgate-issuers: no issuer named "parnter"`) || strings.Contains(o.stderr, `"partner"`) {
		t.Errorf("validate: exit %d\n%s%s", o.code, o.stdout, o.stderr)
	}
}
