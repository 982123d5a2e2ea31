package extauthz_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/store"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/policies/introspect"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// readmeFaults reads the README's fault table: code → HTTP status.
func readmeFaults(t *testing.T) map[string]int {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Fault codes\n")
	if !ok {
		t.Fatal("no Fault codes section in the README")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	out := map[string]int{}
	row := regexp.MustCompile(`(?m)^\| ([0-9][0-9 /]*) \| ([0-9]{3}) \|`)
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		status, _ := strconv.Atoi(m[2])
		for _, code := range strings.Split(m[1], "/") {
			out[strings.TrimSpace(code)] = status
		}
	}
	if len(out) < 15 {
		t.Fatalf("only %d codes read from the README's fault table", len(out))
	}
	return out
}

const tableAPI = `openapi: 3.1.0
info: {title: Table, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
x-tollgate-throttling: api-one
components:
  securitySchemes:
    cert: {type: mutualTLS}
    basic: {type: http, scheme: basic}
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {read: read}}}}
    hkey: {type: apiKey, in: header, name: x-api-key}
paths:
  /jwt: {get: {security: [{oauth: [read]}], responses: {"200": {description: ok}}}}
  /mtls: {get: {security: [{cert: []}], responses: {"200": {description: ok}}}}
  /basic: {get: {security: [{basic: []}], responses: {"200": {description: ok}}}}
  /hkey: {get: {security: [{hkey: []}], responses: {"200": {description: ok}}}}
  /limited: {get: {x-tollgate-throttling: resource-one, security: [{oauth: []}], responses: {"200": {description: ok}}}}
  /nowhere-policy: {get: {x-tollgate-throttling: no-such-policy, security: [{oauth: []}], responses: {"200": {description: ok}}}}
  /tenant: {get: {x-tollgate-throttling: per-tenant, security: [{oauth: []}], responses: {"200": {description: ok}}}}
  /validated:
    post:
      x-tollgate-validation: {request: true, response: enforce, maxBodySize: 64}
      security: [{oauth: []}]
      requestBody: {content: {application/json: {schema: {type: object, required: [name]}}}}
      responses: {"201": {description: added, content: {application/json: {schema: {type: object, required: [id]}}}}}
`

const strictAPI = `openapi: 3.1.0
info: {title: Strict, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
x-tollgate-throttling: api-strict
paths:
  /any: {get: {x-tollgate-disable-security: true, responses: {"200": {description: ok}}}}
`

// switchable is a Throttler whose engine a scenario may change.
type switchable struct {
	to atomic.Pointer[ratelimit.Engine]
}

func (s *switchable) Decide(ctx context.Context, r ratelimit.Request) ratelimit.Decision {
	return s.to.Load().Decide(ctx, r)
}

// The README's fault table says what the enforcer answers: every code in it is produced by
// the event the table names, with the table's status, and nothing the table does not list.
func TestREADMEFaultTable(t *testing.T) {
	table := readmeFaults(t)
	engine := ratelimit.NewEngine(ratelimit.NewLocal(), zap.NewNop(), nil)
	for name, rest := range map[string]string{"api-one": "rate: 1000/minute\nburst: 1000", "api-strict": "rate: 1/minute\nburst: 1",
		"resource-one": "rate: 1/minute\nburst: 1", "app-one": "rate: 1/minute\nburst: 1", "sub-one": "rate: 1/minute\nburst: 1",
		"per-tenant": "rate: 1/minute\nburst: 1\nkey: header:x-tenant"} {
		engine.Update(store.Event{KV: store.KV{Key: name, Value: []byte("kind: ThrottlingPolicy\nname: " + name + "\n" + rest + "\n")}})
	}
	opaqueIdP := tu.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("token") == "opaque-down" {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Write([]byte(`{"active":false}`))
	}))
	in, err := introspect.New(introspect.Config{Name: "corp", URL: opaqueIdP.URL, ClientID: "gw"}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var loaded atomic.Bool
	loaded.Store(true)
	// The same policies over a Redis that cannot be reached, with fallback deny.
	redisDown, err := ratelimit.NewRedis(ratelimit.RedisConfig{Addrs: []string{tu.FreeAddr(t)}, Fallback: ratelimit.FallbackDeny, Retry: 7 * time.Second}, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	go redisDown.Run(t.Context())
	unreachable := ratelimit.NewEngine(redisDown, zap.NewNop(), nil)
	for _, name := range []string{"api-one", "api-strict"} {
		unreachable.Update(store.Event{KV: store.KV{Key: name, Value: []byte("kind: ThrottlingPolicy\nname: " + name + "\nrate: 1000/minute\nburst: 1000\n")}})
	}
	throttle := &switchable{}
	throttle.to.Store(engine)
	c := newCredRigWith(t, func(cfg *extauthz.Config) {
		cfg.Throttle, cfg.Opaque, cfg.Loaded = throttle, []extauthz.OpaqueIssuer{in}, loaded.Load
	}, tableAPI, strictAPI)
	r, p := c.rig, c.pki
	tok := func(edit func(map[string]any)) string {
		claims := r.idp.Claims(aud, "read")
		if edit != nil {
			edit(claims)
		}
		return "Bearer " + r.idp.Sign("rsa", "RS256", claims)
	}
	h := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	basicAuth := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	scenarios := []struct {
		code  string
		event string
		run   func() result
	}{
		{"900902", "no token", func() result { return c.send(t, "/table/v1/jwt", "", nil) }},
		{"900902", "a non-Bearer Authorization", func() result { return c.send(t, "/table/v1/jwt", "", h("authorization", "Digest x")) }},
		{"900902", "no client certificate", func() result { return c.send(t, "/table/v1/mtls", "", nil) }},
		{"900902", "no basic credential", func() result { return c.send(t, "/table/v1/basic", "", nil) }},
		{"900902", "no API key", func() result { return c.send(t, "/table/v1/hkey", "", nil) }},
		{"900901", "a wrong audience", func() result {
			return c.send(t, "/table/v1/jwt", "", h("authorization", tok(func(m map[string]any) { m["aud"] = "other" })))
		}},
		{"900901", "an untrusted certificate", func() result { return c.send(t, "/table/v1/mtls", p.foreign, nil) }},
		{"900901", "an unknown API key", func() result { return c.send(t, "/table/v1/hkey", "", h("x-api-key", "nope")) }},
		{"900904", "an inactive opaque token", func() result { return c.send(t, "/table/v1/jwt", "", h("authorization", "Bearer opaque-inactive")) }},
		{"900903", "an expired token", func() result {
			return c.send(t, "/table/v1/jwt", "", h("authorization", tok(func(m map[string]any) { m["exp"] = 1 })))
		}},
		{"900918", "not a JWT", func() result { return c.send(t, "/table/v1/jwt", "", h("authorization", "Bearer a.b.c")) }},
		{"900910", "a missing scope", func() result {
			return c.send(t, "/table/v1/jwt", "", h("authorization", tok(func(m map[string]any) { m["scope"] = "other" })))
		}},
		{"900906", "no API", func() result { return c.send(t, "/nothing/v1/x", "", nil) }},
		{"404", "no operation in the API", func() result { return c.send(t, "/table/v1/absent", "", nil) }},
		{"405", "another method on a known path", func() result {
			res, _ := c.client.Check(t.Context(), extauthz.NewCheckRequest(extauthz.Request{Method: "DELETE", Path: "/table/v1/jwt", Host: "gw.test"}))
			d := res.GetDeniedResponse()
			return result{status: int(d.GetStatus().GetCode()), body: d.GetBody()}
		}},
		{"900911", "a wrong password", func() result { return c.send(t, "/table/v1/basic", "", h("authorization", basicAuth("alice", "nope"))) }},
		{"900911", "an empty user name", func() result { return c.send(t, "/table/v1/basic", "", h("authorization", basicAuth("", "s3cret"))) }},
		{"900800", "the API's policy", func() result {
			c.send(t, "/strict/v1/any", "", nil)
			return c.send(t, "/strict/v1/any", "", nil)
		}},
		{"900806", "a policy counted by a header", func() result {
			c.send(t, "/table/v1/tenant", "", h("authorization", tok(nil), "x-tenant", "t1"))
			return c.send(t, "/table/v1/tenant", "", h("authorization", tok(nil), "x-tenant", "t1"))
		}},
		{"900802", "the resource's policy", func() result {
			c.send(t, "/table/v1/limited", "", h("authorization", tok(nil)))
			return c.send(t, "/table/v1/limited", "", h("authorization", tok(nil)))
		}},
		{"900803", "the application's policy", func() result {
			app := tok(func(m map[string]any) { m["application_tier"] = "app-one"; m["azp"] = "app-table" })
			c.send(t, "/table/v1/jwt", "", h("authorization", app))
			return c.send(t, "/table/v1/jwt", "", h("authorization", app))
		}},
		{"900804", "the subscription's policy", func() result {
			sub := tok(func(m map[string]any) { m["subscription_tier"] = "sub-one"; m["azp"] = "sub-table" })
			c.send(t, "/table/v1/jwt", "", h("authorization", sub))
			return c.send(t, "/table/v1/jwt", "", h("authorization", sub))
		}},
		{"900809", "a policy nobody defined", func() result { return c.send(t, "/table/v1/nowhere-policy", "", h("authorization", tok(nil))) }},
		{"900900", "the introspection endpoint failing", func() result { return c.send(t, "/table/v1/jwt", "", h("authorization", "Bearer opaque-down")) }},
		{"400", "two Authorization credentials", func() result {
			return c.send(t, "/table/v1/jwt", "", h("authorization", tok(nil)+", "+basicAuth("alice", "s3cret")))
		}},
		{"900951", "a throttling policy whose counters (Redis) cannot be reached, fallback deny", func() result {
			throttle.to.Store(unreachable)
			defer throttle.to.Store(engine)
			got := c.send(t, "/table/v1/jwt", "", h("authorization", tok(nil)))
			if ra := got.headers["retry-after"]; ra != "7" {
				t.Errorf("throttling unavailable: Retry-After %q, want the reconnect interval, 7", ra)
			}
			return got
		}},
		{"400", "a body that does not match the definition", func() result {
			return c.sendBody(t, "/table/v1/validated", "application/json", `{}`, tok(nil))
		}},
		{"415", "a content type the operation does not declare", func() result {
			return c.sendBody(t, "/table/v1/validated", "text/plain", `name`, tok(nil))
		}},
		{"413", "a body over the operation's limit", func() result {
			return c.sendBody(t, "/table/v1/validated", "application/json", `{"name":"`+strings.Repeat("x", 64)+`"}`, tok(nil))
		}},
		{"500", "a backend's response that does not match the definition", func() result {
			ctx := metadata.AppendToOutgoingContext(t.Context(), apimodel.ProcessAPIKey, "table/v1", apimodel.ProcessOperationKey, "POST /validated")
			s, err := c.proc.Process(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer s.CloseSend()
			for _, m := range []*extprocv3.ProcessingRequest{responseHeaders("201", "application/json", "via_upstream", false), responseBody(`{}`)} {
				if err := s.Send(m); err != nil {
					t.Fatal(err)
				}
				resp, err := s.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if imm := resp.GetImmediateResponse(); imm != nil {
					return result{status: int(imm.GetStatus().GetCode()), body: string(imm.GetBody())}
				}
			}
			return result{status: 200}
		}},
		{"900950", "state not loaded", func() result {
			loaded.Store(false)
			defer loaded.Store(true)
			return c.send(t, "/table/v1/jwt", "", h("authorization", tok(nil)))
		}},
	}
	covered := map[string]bool{}
	for _, s := range scenarios {
		status, listed := table[s.code]
		if !listed {
			t.Errorf("%s (%s) is answered but not in the README's table", s.code, s.event)
			continue
		}
		covered[s.code] = true
		got := s.run()
		if got.status != status || !strings.Contains(got.body, `"code":`+s.code) {
			t.Errorf("%s: want %d with code %s (README), got %d %s", s.event, status, s.code, got.status, got.body)
		}
	}
	for code := range table {
		if !covered[code] {
			t.Errorf("README lists %s, but no scenario here produces it", code)
		}
	}
}
