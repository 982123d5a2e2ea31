package discovery

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// OIDC Discovery §4 appends the well-known path to the issuer; RFC 8414 §3.1 inserts it
// between the host and the issuer's path (its own example: issuer1).
func TestWellKnown(t *testing.T) {
	for issuer, want := range map[string][2]string{
		"https://example.com":          {"https://example.com/.well-known/openid-configuration", "https://example.com/.well-known/oauth-authorization-server"},
		"https://example.com/":         {"https://example.com/.well-known/openid-configuration", "https://example.com/.well-known/oauth-authorization-server"},
		"https://example.com/issuer1":  {"https://example.com/issuer1/.well-known/openid-configuration", "https://example.com/.well-known/oauth-authorization-server/issuer1"},
		"https://kc:8443/realms/shop/": {"https://kc:8443/realms/shop/.well-known/openid-configuration", "https://kc:8443/.well-known/oauth-authorization-server/realms/shop"},
	} {
		got := WellKnown(issuer)
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("WellKnown(%q) = %q, want %q", issuer, got, want)
		}
	}
}

// server is an authorization server whose documents a test edits: path → document (nil:
// 404); down answers 503 everywhere.
type server struct {
	mu   sync.Mutex
	docs map[string]map[string]any
	down bool
	hits map[string]int
	url  string
}

func newServer(t *testing.T) *server {
	s := &server{docs: map[string]map[string]any{}, hits: map[string]int{}}
	srv := tu.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.hits[r.URL.Path]++
		doc, ok := s.docs[r.URL.Path]
		switch {
		case s.down:
			http.Error(w, "down", http.StatusServiceUnavailable)
		case !ok:
			http.NotFound(w, r)
		default:
			json.NewEncoder(w).Encode(doc)
		}
	}))
	s.url = srv.URL
	return s
}

func (s *server) set(path string, doc map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[path] = doc
}

func (s *server) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func TestDiscovery(t *testing.T) {
	s := newServer(t)
	issuer := s.url + "/realms/shop"
	s.set("/realms/shop/.well-known/openid-configuration", map[string]any{"issuer": issuer, "jwks_uri": s.url + "/keys", "introspection_endpoint": s.url + "/introspect"})
	dir := t.TempDir()
	p, warnings, err := New(Config{Issuer: issuer, CacheDir: dir})
	if err != nil || len(warnings) > 0 || p.Metadata() != nil {
		t.Fatalf("New: %v %v %v", err, warnings, p.Metadata())
	}
	if changed, err := p.Refresh(context.Background()); err != nil || !changed || p.Metadata().JWKSURI != s.url+"/keys" {
		t.Fatalf("Refresh: %v %v %+v", changed, err, p.Metadata())
	}
	if changed, err := p.Refresh(context.Background()); err != nil || changed {
		t.Errorf("the same document again: changed %v, %v", changed, err)
	}

	// OIDC Discovery §4.3 / RFC 8414 §3.3: a document for another issuer is refused, and
	// the last good one stays.
	s.set("/realms/shop/.well-known/openid-configuration", map[string]any{"issuer": s.url + "/realms/other", "jwks_uri": s.url + "/evil"})
	if _, err := p.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "§4.3") {
		t.Errorf("another issuer's document: %v", err)
	}
	if p.Metadata().JWKSURI != s.url+"/keys" {
		t.Errorf("after a refused document: %+v", p.Metadata())
	}
	// Away: the last good document stays.
	s.setDown(true)
	if _, err := p.Refresh(context.Background()); err == nil || p.Metadata().JWKSURI != s.url+"/keys" {
		t.Errorf("away: %v %+v", err, p.Metadata())
	}

	// A restart while the server is away starts from the copy.
	q, warnings, err := New(Config{Issuer: issuer, CacheDir: dir})
	if err != nil || len(warnings) > 0 || q.Metadata() == nil || q.Metadata().JWKSURI != s.url+"/keys" || q.Fetched().IsZero() {
		t.Fatalf("from the copy: %v %v %+v", err, warnings, q.Metadata())
	}
	// A copy for another need is checked as a fetched document is.
	if _, warnings, _ := New(Config{Issuer: issuer, CacheDir: dir, Need: NeedIntrospection}); len(warnings) != 0 {
		t.Errorf("copy with an introspection endpoint: %v", warnings)
	}
	s.setDown(false)

	// The copy moves with the document: a new jwks_uri is what the next restart starts from.
	s.set("/realms/shop/.well-known/openid-configuration", map[string]any{"issuer": issuer, "jwks_uri": s.url + "/keys2"})
	if changed, err := q.Refresh(context.Background()); err != nil || !changed {
		t.Fatalf("new jwks_uri: %v %v", changed, err)
	}
	r, _, _ := New(Config{Issuer: issuer, CacheDir: dir})
	if r.Metadata() == nil || r.Metadata().JWKSURI != s.url+"/keys2" {
		t.Errorf("copy after a change: %+v", r.Metadata())
	}
	// The copy no longer has an introspection endpoint: an introspecting user ignores it.
	if _, warnings, _ := New(Config{Issuer: issuer, CacheDir: dir, Need: NeedIntrospection}); len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "no introspection_endpoint") {
		t.Errorf("a copy without what is needed: %v", warnings)
	}
}

// Where OIDC's location is not served, RFC 8414's is (path inserted after the host).
func TestRFC8414Location(t *testing.T) {
	s := newServer(t)
	issuer := s.url + "/as"
	s.set("/.well-known/oauth-authorization-server/as", map[string]any{"issuer": issuer, "jwks_uri": s.url + "/jwks", "introspection_endpoint": s.url + "/introspect"})
	p, _, err := New(Config{Issuer: issuer, Need: NeedIntrospection})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Refresh(context.Background()); err != nil || p.Metadata().IntrospectionEndpoint != s.url+"/introspect" {
		t.Fatalf("RFC 8414: %v %+v", err, p.Metadata())
	}
	if s.hits["/as/.well-known/openid-configuration"] != 1 {
		t.Errorf("OIDC's location asked %d times", s.hits["/as/.well-known/openid-configuration"])
	}
	// An explicit URL is the only one asked.
	s.set("/meta", map[string]any{"issuer": issuer, "jwks_uri": s.url + "/other"})
	p, _, _ = New(Config{Issuer: issuer, URL: s.url + "/meta"})
	if _, err := p.Refresh(context.Background()); err != nil || p.Metadata().JWKSURI != s.url+"/other" {
		t.Errorf("discoveryURL: %v %+v", err, p.Metadata())
	}
}

// Metadata and keys fetched in clear text could be anyone's: https, or http on loopback.
func TestRefusedDocuments(t *testing.T) {
	for _, issuer := range []string{"http://idp.example.com", "ftp://idp", "idp", "https://user:pw@idp/"} {
		if _, _, err := New(Config{Issuer: issuer}); err == nil {
			t.Errorf("issuer %q accepted", issuer)
		}
	}
	s := newServer(t)
	for name, doc := range map[string]map[string]any{
		"no jwks_uri":         {"issuer": s.url},
		"jwks_uri in clear":   {"issuer": s.url, "jwks_uri": "http://idp.example.com/jwks"},
		"issuer with a slash": {"issuer": s.url + "/", "jwks_uri": s.url + "/jwks"},
	} {
		s.set("/.well-known/openid-configuration", doc)
		p, _, _ := New(Config{Issuer: s.url})
		if _, err := p.Refresh(context.Background()); err == nil || p.Metadata() != nil {
			t.Errorf("%s: accepted %+v", name, p.Metadata())
		}
	}
	// An endpoint the user does not need may be anything: it is dropped, not fatal.
	s.set("/.well-known/openid-configuration", map[string]any{"issuer": s.url, "jwks_uri": s.url + "/jwks", "introspection_endpoint": "http://idp.example.com/i"})
	p, _, _ := New(Config{Issuer: s.url})
	if _, err := p.Refresh(context.Background()); err != nil || p.Metadata().IntrospectionEndpoint != "" {
		t.Errorf("unneeded insecure endpoint: %v %+v", err, p.Metadata())
	}
}
