// Package decisiontest runs decision tests offline, the way `opa test` lets policy authors
// test in CI: each case is a request and a credential, decided in-process by the
// enforcer's own pipeline over the given definitions — no etcd, no servers — and compared
// with what the case expects. Tokens are minted by a test issuer the runner makes; API keys
// and basic-auth users are made for the case.
package decisiontest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"sort"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/definitions"
	"github.com/tollgate-gw/tollgate/internal/devissuer"
	"github.com/tollgate-gw/tollgate/internal/errfmt"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/apikey"
	"github.com/tollgate-gw/tollgate/policies/basic"
	"github.com/tollgate-gw/tollgate/policies/dpop"
	"github.com/tollgate-gw/tollgate/policies/jwt"
	"github.com/tollgate-gw/tollgate/policies/mtls"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
	"github.com/tollgate-gw/tollgate/policies/revocation"
)

// Suite is one document of cases.
type Suite struct {
	Kind  string `json:"kind"`
	Cases []Case `json:"cases"`
}

// Case is one request, its credential and what the gateway must answer.
type Case struct {
	Name    string  `json:"name"`
	Request Request `json:"request"`
	// At most one credential: a token from the test issuer, an API key made for the case,
	// or a basic-auth user made for the case.
	Token  *Token  `json:"token,omitempty"`
	APIKey *APIKey `json:"apiKey,omitempty"`
	Basic  *Basic  `json:"basic,omitempty"`
	// Certificate is sent as the connection's client certificate, with or without one of
	// the credentials above (mutual TLS).
	Certificate *Certificate `json:"certificate,omitempty"`
	// Times sends the request this many times (default 1); Expect is of the last answer —
	// throttling after N requests.
	Times  int    `json:"times,omitempty"`
	Expect Expect `json:"expect"`
}

// Request is the HTTP request as Envoy sees it.
type Request struct {
	Method  string            `json:"method"` // default GET
	Path    string            `json:"path"`   // with the query string
	Host    string            `json:"host"`   // default localhost
	Headers map[string]string `json:"headers,omitempty"`
	// Body is sent as Envoy sends a validated operation's body (with its Content-Type
	// among the headers).
	Body string `json:"body,omitempty"`
}

// Token is a bearer token minted by the test issuer (Authorization: Bearer).
type Token struct {
	Scope    string         `json:"scope,omitempty"`
	Subject  string         `json:"sub,omitempty"`      // default test-user
	ClientID string         `json:"clientId,omitempty"` // default test-app
	Claims   map[string]any `json:"claims,omitempty"`   // more claims (a tier, say)
	Expired  bool           `json:"expired,omitempty"`  // minted already expired
	DPoP     *DPoP          `json:"dpop,omitempty"`     // bound to a DPoP key, sent with its proof
}

// APIKey is a key made for the case, for APIs, sent in a header or the query.
type APIKey struct {
	APIs   []string `json:"apis"`
	Header string   `json:"header,omitempty"` // sent as this header, or
	Query  string   `json:"query,omitempty"`  // as this query parameter
}

// Basic is a user made for the case (Authorization: Basic); a different Password than
// the user's sends a wrong one.
type Basic struct {
	User     string `json:"user"`
	Password string `json:"password,omitempty"` // default: the user's
	Wrong    bool   `json:"wrong,omitempty"`    // send a wrong password
}

// Expect is what the gateway must answer.
type Expect struct {
	Status  int               `json:"status"`            // 200 allowed, else the deny status
	Fault   string            `json:"fault,omitempty"`   // the fault code in the deny body
	Headers map[string]string `json:"headers,omitempty"` // set for the backend (allowed)
	// BodyContains is text the deny body must hold (what a validation found, say).
	BodyContains string `json:"bodyContains,omitempty"`
}

// Result is one case's outcome.
type Result struct {
	Suite, Name string
	Passed      bool
	// Diff says what differed, one line each ("status: got 401, want 200").
	Diff []string
}

// Options are the enforcer's settings that shape answers (from the configuration).
type Options struct {
	ClaimHeaders map[string]string // token claims sent to the backend as headers
	Format       extauthz.Format   // deny bodies: wso2 or problem
	Template     *errfmt.Template  // the gateway's own error template (faults.template), if any
	Via          Via               // how requests reach the enforcer (default ViaMatch)

	routes *routes // the generated routes, for ViaEnvoy
}

// Run decides every case of every suite over the definitions and reports each.
func Run(ctx context.Context, defs []definitions.Definition, suites map[string]Suite, opt Options) ([]Result, error) {
	dir, err := os.MkdirTemp("", "tollgate-test")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	issuer, err := devissuer.Ensure(dir)
	if err != nil {
		return nil, err
	}
	if !opt.Via.Valid() {
		return nil, fmt.Errorf("via %q: want match, envoy or istio", opt.Via)
	}
	if opt.Via == ViaEnvoy {
		var apis []*apimodel.API
		for _, d := range defs {
			if d.API != nil {
				apis = append(apis, d.API)
			}
		}
		faults := opt.Template
		if faults == nil {
			faults = errfmt.Builtin(string(opt.Format))
		}
		if faults == nil {
			faults = errfmt.Builtin("wso2")
		}
		if opt.routes, err = newRoutes(apis, faults); err != nil {
			return nil, err
		}
	}
	var out []Result
	for _, name := range sortedNames(suites) {
		for _, c := range suites[name].Cases {
			// A fresh enforcer per case: counters, users and keys of one case are not
			// another's.
			r := Result{Suite: name, Name: c.Name}
			r.Diff, err = runCase(ctx, dir, issuer, defs, c, opt)
			if err != nil {
				r.Diff = []string{err.Error()}
			}
			r.Passed = len(r.Diff) == 0
			out = append(out, r)
		}
	}
	return out, nil
}

func sortedNames(m map[string]Suite) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func runCase(ctx context.Context, dir, jwksFile string, defs []definitions.Definition, c Case, opt Options) ([]string, error) {
	w, err := newWorld(dir, defs, jwksFile, opt)
	if err != nil {
		return nil, err
	}
	r := extauthz.Request{Method: strings.ToUpper(or(c.Request.Method, "GET")), Path: c.Request.Path, Host: or(c.Request.Host, "localhost"), Headers: map[string]string{}}
	maps.Copy(r.Headers, c.Request.Headers)
	if c.Request.Body != "" {
		r.Body = []byte(c.Request.Body)
	}
	if err := w.credential(dir, c, &r); err != nil {
		return nil, err
	}
	var cert string
	if c.Certificate != nil {
		if cert, err = w.certificate(c.Certificate); err != nil {
			return nil, err
		}
	}
	if opt.routes != nil {
		if local := opt.routes.viaEnvoy(&r); local != nil {
			return compare(local, c.Expect), nil // Envoy answers; the enforcer never sees it
		}
	}
	var resp *authv3.CheckResponse
	for range max(1, c.Times) {
		req := extauthz.NewCheckRequest(r)
		req.Attributes.Source.Certificate = cert
		if opt.Via == ViaIstio {
			asIstio(req)
		}
		if resp, err = w.enf.Check(ctx, req); err != nil {
			return nil, err
		}
	}
	return compare(resp, c.Expect), nil
}

// world is an enforcer of the definitions, alone, with its users and API keys to fill,
// trusting a CA of its own for client certificates and checking DPoP proofs.
type world struct {
	enf   *extauthz.Enforcer
	users *basic.Users
	keys  *apikey.Set
	ca    *testCA
	dir   string
}

func newWorld(dir string, defs []definitions.Definition, jwksFile string, opt Options) (*world, error) {
	log := zap.NewNop()
	reg := catalog.New(log, nil)
	var apis []*apimodel.API
	var policies []store.KV
	for _, d := range defs {
		switch {
		case d.API != nil:
			apis = append(apis, d.API)
		case d.Policy != nil:
			policies = append(policies, store.KV{Key: d.Policy.Name, Value: d.Policy.Data})
		}
	}
	reg.Set(apis)
	engine := ratelimit.NewEngine(ratelimit.NewLocal(), log, nil)
	engine.Reset(policies)
	revoked := revocation.New(log, nil)
	revoked.Reset(nil)
	users, err := basic.New(nil)
	if err != nil {
		return nil, err
	}
	keys := apikey.NewSet()
	verifier, err := jwt.New(jwt.Config{Issuers: []jwt.IssuerConfig{{Name: "test", Issuer: devissuer.Issuer,
		Audiences: []string{devissuer.Audience}, JWKSFile: jwksFile, Algorithms: []string{"RS256"}}}, ClaimHeaders: opt.ClaimHeaders}, log, nil)
	if err != nil {
		return nil, err
	}
	ca, err := newCA(dir, "test-ca")
	if err != nil {
		return nil, err
	}
	certs, err := mtls.New(mtls.Config{CAFiles: []string{ca.file}})
	if err != nil {
		return nil, err
	}
	proofs, err := dpop.New(dpop.Config{})
	if err != nil {
		return nil, err
	}
	enf := extauthz.New(extauthz.Config{Revocations: revoked, Throttle: engine, Users: users, APIKeys: keys, Format: opt.Format, Template: opt.Template,
		Certificates: certs, DPoP: proofs}, reg, verifier, log, nil)
	return &world{enf: enf, users: users, keys: keys, ca: ca, dir: dir}, nil
}

// token puts a token the development issuer signs on the request: Bearer, or DPoP-bound
// with its proof.
func (w *world) token(dir string, t *Token, r *extauthz.Request) error {
	claims := devissuer.Claims{Subject: or(t.Subject, "test-user"), ClientID: or(t.ClientID, "test-app"), Scope: t.Scope, TTL: time.Hour, Extra: t.Claims}
	if t.Expired {
		claims.TTL = -time.Hour
	}
	var bound *proofKey
	if t.DPoP != nil {
		k, err := newProofKey()
		if err != nil {
			return err
		}
		bound, claims.DPoPThumbprint = k, k.thumb
	}
	tok, err := devissuer.Mint(dir, claims)
	if err != nil {
		return err
	}
	if bound == nil {
		r.Headers["authorization"] = "Bearer " + tok
		return nil
	}
	r.Headers["authorization"] = "DPoP " + tok
	signer := bound
	switch t.DPoP.Proof {
	case "none":
		return nil
	case "other":
		if signer, err = newProofKey(); err != nil {
			return err
		}
	}
	path, _, _ := strings.Cut(r.Path, "?")
	proof, err := signer.proof(r.Method, "https://"+r.Host+path, tok)
	if err != nil {
		return err
	}
	r.Headers["dpop"] = proof
	return nil
}

// certificate is the case's client certificate, URL-encoded PEM as Envoy forwards it.
func (w *world) certificate(c *Certificate) (string, error) {
	ca := w.ca
	if c.Untrusted {
		var err error
		if ca, err = newCA(w.dir, "untrusted-ca"); err != nil {
			return "", err
		}
	}
	return ca.issue(or(c.Subject, "test-client"))
}

// credential puts the case's credential on the request: a token the development issuer
// signs, an API key, or a user's password.
func (w *world) credential(dir string, c Case, r *extauthz.Request) error {
	switch {
	case c.Token != nil:
		return w.token(dir, c.Token, r)
	case c.APIKey != nil:
		key, kv, _, err := apikey.New("test-app", c.APIKey.APIs, 0)
		if err != nil {
			return err
		}
		w.keys.Reset([]store.KV{kv})
		if c.APIKey.Query == "" {
			r.Headers[or(c.APIKey.Header, "apikey")] = key
			return nil
		}
		sep := "?"
		if strings.Contains(r.Path, "?") {
			sep = "&"
		}
		r.Path += sep + c.APIKey.Query + "=" + key
	case c.Basic != nil:
		password := or(c.Basic.Password, "test-password-1")
		h, err := basic.Hash(password)
		if err != nil {
			return err
		}
		w.users.Reset([]store.KV{{Key: c.Basic.User, Value: []byte(h)}})
		if c.Basic.Wrong {
			password += "-wrong"
		}
		r.Headers["authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Basic.User+":"+password))
	}
	return nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// compare lists how the answer differs from what is expected.
func compare(resp *authv3.CheckResponse, want Expect) []string {
	var diff []string
	status, fault, headers := 200, "", map[string]string{}
	if d := resp.GetDeniedResponse(); d != nil {
		status = int(d.GetStatus().GetCode())
		// WSO2's body is {"fault":{"code":…}}, MGW's status reports and RFC 9457's carry
		// code at the top.
		var body struct {
			Fault struct {
				Code json.Number `json:"code"`
			} `json:"fault"`
			Code json.Number `json:"code"`
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(d.GetBody())))
		dec.UseNumber()
		if dec.Decode(&body) == nil {
			fault = cmp.Or(body.Fault.Code.String(), body.Code.String())
		}
		if want.BodyContains != "" && !strings.Contains(d.GetBody(), want.BodyContains) {
			diff = append(diff, fmt.Sprintf("body: %s does not hold %q", d.GetBody(), want.BodyContains))
		}
	} else {
		for _, h := range resp.GetOkResponse().GetHeaders() {
			headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
	}
	if want.Status == 0 {
		want.Status = 200
	}
	if status != want.Status {
		diff = append(diff, fmt.Sprintf("status: got %d, want %d", status, want.Status))
	}
	if want.Fault != "" && fault != want.Fault {
		diff = append(diff, fmt.Sprintf("fault: got %q, want %q", fault, want.Fault))
	}
	if status != 200 {
		return diff // headers to the backend are an allowed request's
	}
	for k, v := range want.Headers {
		if got, ok := headers[strings.ToLower(k)]; !ok || got != v {
			diff = append(diff, fmt.Sprintf("header %s to the backend: got %q, want %q", k, got, v))
		}
	}
	return diff
}

// Parse reads a document of cases.
func Parse(data []byte) (Suite, error) {
	var s Suite
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return s, err
	}
	if s.Kind != definitions.TestsKind {
		return s, fmt.Errorf("kind %q: want %s", s.Kind, definitions.TestsKind)
	}
	for i, c := range s.Cases {
		n := 0
		for _, set := range []bool{c.Token != nil, c.APIKey != nil, c.Basic != nil} {
			if set {
				n++
			}
		}
		if n > 1 {
			return s, fmt.Errorf("cases[%d] (%s): at most one of token, apiKey, basic", i, c.Name)
		}
		if c.Request.Path == "" {
			return s, fmt.Errorf("cases[%d] (%s): request.path is needed", i, c.Name)
		}
	}
	return s, nil
}
