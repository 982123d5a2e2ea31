package extauthz_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/policies/apikey"
	"github.com/tollgate-gw/tollgate/policies/basic"
	"github.com/tollgate-gw/tollgate/policies/mtls"
)

// pki is a CA and certificates made for one test.
type pki struct {
	caFile                  string
	good, expired, foreign  string // URL-encoded PEM, as Envoy forwards them
	goodThumb, foreignThumb string
}

func newPKI(t testing.TB) pki {
	t.Helper()
	ca, caKey := makeCA(t, "Test CA")
	other, otherKey := makeCA(t, "Other CA")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o600)
	good, goodDER := makeLeaf(t, "client-a", ca, caKey, time.Now().Add(time.Hour))
	expired, _ := makeLeaf(t, "client-old", ca, caKey, time.Now().Add(-time.Hour))
	foreign, foreignDER := makeLeaf(t, "client-a", other, otherKey, time.Now().Add(time.Hour))
	return pki{caFile: caFile, good: good, expired: expired, foreign: foreign, goodThumb: thumb(goodDER), foreignThumb: thumb(foreignDER)}
}

func thumb(der []byte) string {
	s := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(s[:])
}

func makeCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func makeLeaf(t testing.TB, cn string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, notAfter time.Time) (string, []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-2 * time.Hour), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))), der
}

const credentialsAPI = `openapi: 3.1.0
info: {title: Vault, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
components:
  securitySchemes:
    cert: {type: mutualTLS}
    basic: {type: http, scheme: basic}
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://idp/token", scopes: {read: read}}}}
    hkey: {type: apiKey, in: header, name: x-api-key}
    qkey: {type: apiKey, in: query, name: api_key}
    ckey: {type: apiKey, in: cookie, name: session_key}
paths:
  /mtls: {get: {security: [{cert: []}], responses: {"200": {description: ok}}}}
  /mtls-and-key: {get: {security: [{cert: [], hkey: []}], responses: {"200": {description: ok}}}}
  /mtls-or-jwt: {get: {security: [{cert: []}, {oauth: [read]}], responses: {"200": {description: ok}}}}
  /jwt: {get: {security: [{oauth: []}], responses: {"200": {description: ok}}}}
  /basic: {get: {security: [{basic: []}], responses: {"200": {description: ok}}}}
  /hkey: {get: {security: [{hkey: []}], responses: {"200": {description: ok}}}}
  /qkey: {get: {security: [{qkey: []}], responses: {"200": {description: ok}}}}
  /ckey: {get: {security: [{ckey: []}], responses: {"200": {description: ok}}}}
`

type credRig struct {
	*rig
	pki  pki
	keys *apikey.Set
}

func newCredRig(t *testing.T, extraDefs ...string) *credRig {
	return newCredRigWith(t, nil, extraDefs...)
}

// newCredRigWith is newCredRig with more of the enforcer's configuration set by edit.
func newCredRigWith(t *testing.T, edit func(*extauthz.Config), extraDefs ...string) *credRig {
	p := newPKI(t)
	v, err := mtls.New(mtls.Config{CAFiles: []string{p.caFile}})
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := basic.Hash("s3cret")
	users, err := basic.New(map[string]string{"alice": hash})
	if err != nil {
		t.Fatal(err)
	}
	keys := apikey.NewSet()
	cfg := extauthz.Config{Certificates: v, Users: users, APIKeys: keys}
	if edit != nil {
		edit(&cfg)
	}
	r := newRig(t, cfg, append([]string{credentialsAPI}, extraDefs...)...)
	return &credRig{rig: r, pki: p, keys: keys}
}

// sendBody makes a POST CheckRequest with a body, as Envoy sends a validated operation's.
func (c *credRig) sendBody(t *testing.T, path, ctype, body, authz string) result {
	t.Helper()
	return checkBody(t, c.rig, bodyCase{method: "POST", path: path, ctype: ctype, body: body}, authz)
}

// send makes a CheckRequest with a peer certificate and extra headers.
func (c *credRig) send(t *testing.T, path, cert string, headers map[string]string) result {
	t.Helper()
	req := extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: path, Headers: headers})
	req.Attributes.Source.Certificate = cert
	resp, err := c.client.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return answer(resp)
}

// answer is what the client gets: 200, or the deny's status, body and headers.
func answer(resp *authv3.CheckResponse) result {
	out := result{headers: map[string]string{}, resp: resp, status: 200}
	if d := resp.GetDeniedResponse(); d != nil {
		out.status, out.body = int(d.GetStatus().GetCode()), d.GetBody()
		for _, h := range d.GetHeaders() {
			out.headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
	}
	return out
}

func (c *credRig) addKey(t *testing.T, key string, rec apikey.Record) {
	sum := sha256.Sum256([]byte(key))
	c.keys.Update(store.Event{KV: store.KV{Key: hex.EncodeToString(sum[:]), Value: mustJSON(t, rec)}})
}

func TestMutualTLSSchemes(t *testing.T) {
	c := newCredRig(t)
	c.addKey(t, "key-1", apikey.Record{ID: "k1", Application: "app-1", APIs: []string{"vault/v1"}})
	cases := []struct {
		name, path, cert string
		headers          map[string]string
		want             int
	}{
		{"trusted certificate", "/vault/v1/mtls", c.pki.good, nil, 200},
		{"no certificate", "/vault/v1/mtls", "", nil, 401},
		{"expired certificate", "/vault/v1/mtls", c.pki.expired, nil, 401},
		{"certificate of another CA", "/vault/v1/mtls", c.pki.foreign, nil, 401},
		{"garbage certificate", "/vault/v1/mtls", url.QueryEscape("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), nil, 401},
		{"mTLS AND API key: both", "/vault/v1/mtls-and-key", c.pki.good, map[string]string{"x-api-key": "key-1"}, 200},
		{"mTLS AND API key: certificate only", "/vault/v1/mtls-and-key", c.pki.good, nil, 401},
		{"mTLS AND API key: key only", "/vault/v1/mtls-and-key", "", map[string]string{"x-api-key": "key-1"}, 401},
		{"mTLS OR JWT: certificate", "/vault/v1/mtls-or-jwt", c.pki.good, nil, 200},
		{"mTLS OR JWT: token", "/vault/v1/mtls-or-jwt", "", map[string]string{"authorization": c.token("read")}, 200},
		{"mTLS OR JWT: token without scope", "/vault/v1/mtls-or-jwt", "", map[string]string{"authorization": c.token("other")}, 403},
		{"mTLS OR JWT: neither", "/vault/v1/mtls-or-jwt", c.pki.foreign, nil, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.send(t, tc.path, tc.cert, tc.headers); got.status != tc.want {
				t.Fatalf("status %d, want %d: %s", got.status, tc.want, got.body)
			}
		})
	}
	got := c.send(t, "/vault/v1/mtls", c.pki.good, nil)
	if md := got.resp.GetDynamicMetadata().AsMap(); md["auth_type"] != "mtls" || md["subject"] != "client-a" {
		t.Errorf("metadata %v", md)
	}
}

func TestAPILevelMutualTLS(t *testing.T) {
	optional := "openapi: 3.0.3\ninfo: {title: Opt, version: v1}\nx-wso2-mutual-ssl: optional\nx-tollgate-production-endpoints: [\"http://127.0.0.1:9000\"]\ncomponents: {securitySchemes: {oauth: {type: http, scheme: bearer}}}\nsecurity: [{oauth: []}]\npaths: {/a: {get: {responses: {\"200\": {description: ok}}}}}\n"
	required := strings.NewReplacer("Opt", "Req", "optional", "mandatory").Replace(optional)
	c := newCredRig(t, optional, required)
	for _, tc := range []struct {
		name, path, cert, auth string
		want                   int
	}{
		{"optional: a trusted certificate is enough", "/opt/v1/a", c.pki.good, "", 200},
		{"optional: without one, the token decides", "/opt/v1/a", "", c.token(""), 200},
		{"optional: neither", "/opt/v1/a", c.pki.foreign, "", 401},
		{"required (WSO2 mandatory): certificate and token", "/req/v1/a", c.pki.good, c.token(""), 200},
		{"required: token alone is refused", "/req/v1/a", "", c.token(""), 401},
		{"required: certificate alone is not enough", "/req/v1/a", c.pki.good, "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.auth != "" {
				h["authorization"] = tc.auth
			}
			if got := c.send(t, tc.path, tc.cert, h); got.status != tc.want {
				t.Fatalf("status %d, want %d: %s", got.status, tc.want, got.body)
			}
		})
	}
}

func TestCertificateBoundToken(t *testing.T) {
	c := newCredRig(t)
	claims := c.idp.Claims(aud, "")
	claims["cnf"] = map[string]any{"x5t#S256": c.pki.goodThumb}
	bound := "Bearer " + c.idp.Sign("rsa", "RS256", claims)
	if got := c.send(t, "/vault/v1/jwt", c.pki.good, map[string]string{"authorization": bound}); got.status != 200 {
		t.Errorf("with its certificate: %d %s", got.status, got.body)
	}
	if got := c.send(t, "/vault/v1/jwt", c.pki.foreign, map[string]string{"authorization": bound}); got.status != 401 {
		t.Errorf("with another certificate: %d", got.status)
	}
	if got := c.send(t, "/vault/v1/jwt", "", map[string]string{"authorization": bound}); got.status != 401 {
		t.Errorf("without a certificate: %d", got.status)
	}
	// An API can require bound tokens: an unbound one is refused even with a certificate.
	strict := strings.NewReplacer("title: Vault", "title: Strict", "x-tollgate-production-endpoints", "x-tollgate-certificate-bound: true\nx-tollgate-production-endpoints").Replace(credentialsAPI)
	s := newCredRig(t, strict)
	unbound := s.token("")
	if got := s.send(t, "/strict/v1/jwt", s.pki.good, map[string]string{"authorization": unbound}); got.status != 401 {
		t.Errorf("unbound token on a certificate-bound API: %d", got.status)
	}
	claims = s.idp.Claims(aud, "")
	claims["cnf"] = map[string]any{"x5t#S256": s.pki.goodThumb}
	if got := s.send(t, "/strict/v1/jwt", s.pki.good, map[string]string{"authorization": "Bearer " + s.idp.Sign("rsa", "RS256", claims)}); got.status != 200 {
		t.Errorf("bound token on a certificate-bound API: %d %s", got.status, got.body)
	}
}

func TestBasicAuth(t *testing.T) {
	c := newCredRig(t)
	auth := func(user, pass string) map[string]string {
		return map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
	}
	if got := c.send(t, "/vault/v1/basic", "", auth("alice", "s3cret")); got.status != 200 {
		t.Fatalf("right password: %d %s", got.status, got.body)
	}
	got := c.send(t, "/vault/v1/basic", "", auth("alice", "wrong"))
	if got.status != 401 || !strings.Contains(got.body, "900911") || !strings.HasPrefix(got.headers["www-authenticate"], `Basic realm="vault/v1"`) {
		t.Fatalf("wrong password: %d %s %v", got.status, got.body, got.headers)
	}
	if got := c.send(t, "/vault/v1/basic", "", nil); got.status != 401 || got.headers["www-authenticate"] == "" {
		t.Errorf("no credentials: %d %v", got.status, got.headers)
	}
	// No timing oracle: an unknown user costs what a known one with a wrong password does.
	median := func(user string) time.Duration {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			c.send(t, "/vault/v1/basic", "", auth(user, "nope"))
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[2]
	}
	known, unknown := median("alice"), median("mallory")
	t.Logf("wrong password for a known user %v, unknown user %v", known, unknown)
	if unknown < known/2 || unknown > known*2 {
		t.Errorf("unknown user %v vs known user %v: the difference tells who exists", unknown, known)
	}
	// A repeat of a good credential does not pay bcrypt again.
	start := time.Now()
	c.send(t, "/vault/v1/basic", "", auth("alice", "s3cret"))
	if d := time.Since(start); d > known/3 {
		t.Errorf("a repeated good credential took %v (bcrypt takes %v)", d, known)
	}
}

func TestAPIKeys(t *testing.T) {
	c := newCredRig(t)
	c.addKey(t, "good-key", apikey.Record{ID: "g", Application: "shop-app", APIs: []string{"vault/v1"}})
	c.addKey(t, "other-api-key", apikey.Record{ID: "o", Application: "shop-app", APIs: []string{"elsewhere/v1"}})
	c.addKey(t, "old-key", apikey.Record{ID: "x", Application: "shop-app", APIs: []string{"vault/v1"}, Expires: time.Now().Add(-time.Minute)})
	ok := func(got result) bool { return got.status == 200 }
	if got := c.send(t, "/vault/v1/hkey", "", map[string]string{"x-api-key": "good-key"}); !ok(got) {
		t.Fatalf("header: %d %s", got.status, got.body)
	} else if rm := got.resp.GetOkResponse().GetHeadersToRemove(); !contains(rm, "x-api-key") {
		t.Errorf("the key must not reach the backend: removed %v", rm)
	} else if md := got.resp.GetDynamicMetadata().AsMap(); md["client_id"] != "shop-app" || md["auth_type"] != "apikey" {
		t.Errorf("metadata %v", md)
	}
	if got := c.send(t, "/vault/v1/qkey?api_key=good-key&x=1", "", nil); !ok(got) {
		t.Errorf("query: %d", got.status)
	} else if q := got.resp.GetOkResponse().GetQueryParametersToRemove(); !contains(q, "api_key") {
		t.Errorf("query key kept: %v", q)
	}
	if got := c.send(t, "/vault/v1/ckey", "", map[string]string{"cookie": "a=b; session_key=good-key"}); !ok(got) {
		t.Errorf("cookie: %d", got.status)
	}
	for name, key := range map[string]string{"unknown": "nope", "expired": "old-key", "wrong API": "other-api-key"} {
		if got := c.send(t, "/vault/v1/hkey", "", map[string]string{"x-api-key": key}); got.status != 401 {
			t.Errorf("%s key: %d", name, got.status)
		}
	}
	// Revoked: the record is gone.
	sum := sha256.Sum256([]byte("good-key"))
	c.keys.Update(store.Event{KV: store.KV{Key: hex.EncodeToString(sum[:])}, Deleted: true})
	if got := c.send(t, "/vault/v1/hkey", "", map[string]string{"x-api-key": "good-key"}); got.status != 401 {
		t.Errorf("revoked key: %d", got.status)
	}
	if got := c.send(t, "/vault/v1/hkey", "", nil); got.status != 401 || !strings.Contains(got.body, "900902") {
		t.Errorf("no key: %d %s", got.status, got.body)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A connection without a certificate to an API whose mutual TLS is mandatory: WSO2 API
// Manager's MutualSSLAuthenticator answers API_AUTH_INVALID_CREDENTIALS (900901), also for an
// operation without other security, and a definition written for WSO2 (x-wso2-*) gets that;
// one in Tollgate's own extensions gets 900902, the code of every missing credential.
func TestMissingCertificateFaultFollowsTheDefinition(t *testing.T) {
	wso2 := "openapi: 3.0.3\ninfo: {title: Wso, version: v1}\nx-wso2-mutual-ssl: mandatory\nx-wso2-production-endpoints: [\"http://127.0.0.1:9000\"]\ncomponents: {securitySchemes: {oauth: {type: http, scheme: bearer}}}\nsecurity: [{oauth: []}]\npaths: {/a: {get: {responses: {\"200\": {description: ok}}}}, /open: {get: {security: [], responses: {\"200\": {description: ok}}}}}\n"
	own := strings.NewReplacer("Wso", "Own", "x-wso2-mutual-ssl: mandatory", "x-tollgate-mutual-tls: required", "x-wso2-production-endpoints", "x-tollgate-production-endpoints").Replace(wso2)
	c := newCredRig(t, wso2, own)
	for _, tc := range []struct {
		path string
		code string
	}{
		{"/wso/v1/a", `"code":900901`}, {"/wso/v1/open", `"code":900901`},
		{"/own/v1/a", `"code":900902`}, {"/own/v1/open", `"code":900902`},
	} {
		got := c.send(t, tc.path, "", map[string]string{"authorization": c.token("")})
		if got.status != 401 || !strings.Contains(strings.ReplaceAll(got.body, " ", ""), tc.code) {
			t.Errorf("%s without a certificate: %d %s, want 401 with %s", tc.path, got.status, got.body, tc.code)
		}
	}
}

// An API key is not a bearer token: a 401 for a missing or refused key names where the key
// goes — in the description and in an APIKey challenge with the scheme's in and name (as
// OpenAPI declares it; no scheme is registered for API keys) — never a Bearer challenge;
// a 401 for a client certificate carries no challenge (TLS asks for it, not HTTP); a
// bearer requirement keeps RFC 6750's Bearer.
func TestChallengesFollowTheCredential(t *testing.T) {
	keys := "openapi: 3.0.3\ninfo: {title: Keys, version: v1}\nx-tollgate-production-endpoints: [\"http://127.0.0.1:9000\"]\n" +
		"components: {securitySchemes: {h: {type: apiKey, in: header, name: x-api-key}, q: {type: apiKey, in: query, name: apikey}, oauth: {type: http, scheme: bearer}, cert: {type: mutualTLS}}}\n" +
		"paths: {/h: {get: {security: [{h: []}], responses: {\"200\": {description: ok}}}}, /q: {get: {security: [{q: []}], responses: {\"200\": {description: ok}}}}, " +
		"/bearer: {get: {security: [{oauth: []}], responses: {\"200\": {description: ok}}}}, /cert: {get: {security: [{cert: []}], responses: {\"200\": {description: ok}}}}}\n"
	c := newCredRig(t, keys)
	for _, tc := range []struct {
		path    string
		headers map[string]string
		code    string
		desc    string // in the body
		wa      string // WWW-Authenticate, exactly
	}{
		{"/keys/v1/h", nil, "900902", `has a header: 'x-api-key: API_KEY'`, `APIKey realm="keys/v1", in="header", name="x-api-key"`},
		{"/keys/v1/q", nil, "900902", `has a query parameter: 'apikey=API_KEY'`, `APIKey realm="keys/v1", in="query", name="apikey"`},
		{"/keys/v1/h", map[string]string{"x-api-key": "nope"}, "900901", "", `APIKey realm="keys/v1", in="header", name="x-api-key"`},
		{"/keys/v1/cert", nil, "900902", "client certificate", ""},
		{"/keys/v1/bearer", nil, "900902", "Authorization: Bearer", `Bearer realm="keys/v1"`},
	} {
		got := c.send(t, tc.path, "", tc.headers)
		body := strings.ReplaceAll(got.body, " ", "")
		if got.status != 401 || !strings.Contains(body, `"code":`+tc.code) || !strings.Contains(got.body, tc.desc) || got.headers["www-authenticate"] != tc.wa {
			t.Errorf("%s %v: %d %s, WWW-Authenticate %q; want %s, %q, %q", tc.path, tc.headers, got.status, got.body, got.headers["www-authenticate"], tc.code, tc.desc, tc.wa)
		}
	}
}
