package introspect

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/identity"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// idp is a real local RFC 7662 endpoint with a table of tokens.
type idp struct {
	srv   *httptest.Server
	calls atomic.Int64
	delay atomic.Int64 // nanoseconds
	mu    sync.Mutex
	table map[string]map[string]any
}

func newIdP(t *testing.T) *idp {
	p := &idp{table: map[string]map[string]any{}}
	p.srv = testutil.NewHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		time.Sleep(time.Duration(p.delay.Load()))
		if id, secret, ok := r.BasicAuth(); !ok || id != "gateway" || secret != "gw-secret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost || r.FormValue("token_type_hint") != "access_token" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		ans, ok := p.table[r.FormValue("token")]
		p.mu.Unlock()
		if !ok {
			ans = map[string]any{"active": false}
		}
		json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) set(token string, ans map[string]any) {
	p.mu.Lock()
	p.table[token] = ans
	p.mu.Unlock()
}

func newIntrospector(t *testing.T, url string, edit func(*Config)) *Introspector {
	cfg := Config{Name: "corp", URL: url, ClientID: "gateway", ClientSecret: []byte("gw-secret"), Timeout: 300 * time.Millisecond, InactiveTTL: 200 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	i, err := New(cfg, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func kind(err error) identity.Failure {
	var e *identity.Error
	if errors.As(err, &e) {
		return e.Failure
	}
	return 0
}

func TestActiveTokenIsCachedUntilExp(t *testing.T) {
	p := newIdP(t)
	p.set("abc", map[string]any{"active": true, "scope": "read:menu write:order", "sub": "alice", "client_id": "app-1",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "jti": "j-1"})
	i := newIntrospector(t, p.srv.URL, nil)
	for range 3 {
		id, err := i.Verify(t.Context(), "abc")
		if err != nil || id.Subject != "alice" || id.ClientID != "app-1" || !id.HasScope("write:order") || id.TokenHash == "" {
			t.Fatalf("%+v %v", id, err)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Errorf("%d calls for three requests with one token", n)
	}
	// Never past exp: a token about to expire is asked again after it.
	p.set("soon", map[string]any{"active": true, "sub": "bob", "exp": time.Now().Add(1500 * time.Millisecond).Unix()})
	if _, err := i.Verify(t.Context(), "soon"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Unix(time.Now().Add(1500*time.Millisecond).Unix(), 0)) + 100*time.Millisecond)
	before := p.calls.Load()
	i.Verify(t.Context(), "soon")
	if p.calls.Load() == before {
		t.Error("an answer was reused past the token's exp")
	}
}

func TestInactiveTokenIsCachedBriefly(t *testing.T) {
	p := newIdP(t)
	i := newIntrospector(t, p.srv.URL, nil)
	for range 3 {
		if _, err := i.Verify(t.Context(), "unknown"); kind(err) != identity.Inactive {
			t.Fatalf("unknown token: %v", err)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Errorf("%d calls within the inactive TTL", n)
	}
	time.Sleep(250 * time.Millisecond)
	i.Verify(t.Context(), "unknown")
	if n := p.calls.Load(); n != 2 {
		t.Errorf("after the inactive TTL: %d calls, want 2", n)
	}
	p.set("expired", map[string]any{"active": true, "exp": time.Now().Add(-time.Minute).Unix()})
	if _, err := i.Verify(t.Context(), "expired"); kind(err) != identity.Inactive {
		t.Errorf("active but past exp: %v", err)
	}
}

func TestSlowOrDownIdPIsUnavailableQuickly(t *testing.T) {
	p := newIdP(t)
	p.set("abc", map[string]any{"active": true, "sub": "alice"})
	p.delay.Store(int64(2 * time.Second))
	i := newIntrospector(t, p.srv.URL, nil)
	start := time.Now()
	if _, err := i.Verify(t.Context(), "abc"); kind(err) != identity.Unavailable {
		t.Fatalf("slow IdP: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a slow IdP held the request %v (timeout 300ms)", d)
	}
	down := newIntrospector(t, "http://127.0.0.1:1/introspect", nil)
	if _, err := down.Verify(t.Context(), "abc"); kind(err) != identity.Unavailable {
		t.Errorf("down IdP: %v", err)
	}
	wrong := newIntrospector(t, p.srv.URL, func(c *Config) { c.ClientSecret = []byte("nope") })
	p.delay.Store(0)
	if _, err := wrong.Verify(t.Context(), "abc"); kind(err) != identity.Unavailable {
		t.Errorf("refused client credentials: %v", err)
	}
}

func TestConcurrentRequestsShareOneCall(t *testing.T) {
	p := newIdP(t)
	p.set("abc", map[string]any{"active": true, "sub": "alice"})
	p.delay.Store(int64(100 * time.Millisecond))
	i := newIntrospector(t, p.srv.URL, nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := i.Verify(t.Context(), "abc"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := p.calls.Load(); n != 1 {
		t.Errorf("%d calls for 20 concurrent requests with one new token", n)
	}
}

func TestAudienceAndConfig(t *testing.T) {
	p := newIdP(t)
	p.set("other-aud", map[string]any{"active": true, "sub": "alice", "aud": "another-api"})
	p.set("our-aud", map[string]any{"active": true, "sub": "alice", "aud": []string{"x", "coffeebar"}})
	i := newIntrospector(t, p.srv.URL, func(c *Config) { c.Audiences = []string{"coffeebar"} })
	if _, err := i.Verify(t.Context(), "other-aud"); kind(err) != identity.Inactive {
		t.Errorf("a token for another audience: %v", err)
	}
	if _, err := i.Verify(t.Context(), "our-aud"); err != nil {
		t.Errorf("our audience: %v", err)
	}
	if _, err := New(Config{Name: "x", URL: "ftp://idp"}, zap.NewNop(), nil); err == nil {
		t.Error("a non-http URL was accepted")
	}
	if _, err := New(Config{Name: "x", URL: "https://idp/introspect"}, zap.NewNop(), nil); err == nil {
		t.Error("no client id was accepted")
	}
}

// An introspection response's cnf binds the opaque token as a JWT's does (RFC 9449 §6.2:
// jkt; RFC 8705 §3.2: x5t#S256): the principal carries the thumbprint the enforcer then
// holds the proof or the certificate to; a cnf that cannot be read refuses the token, never
// passes it as unbound, and that answer is cached like any other.
func TestIntrospectedConfirmationRFC9449(t *testing.T) {
	p := newIdP(t)
	exp := time.Now().Add(time.Hour).Unix()
	p.set("dpop", map[string]any{"active": true, "sub": "alice", "exp": exp, "cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
	p.set("mtls", map[string]any{"active": true, "sub": "bob", "exp": exp, "cnf": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}})
	p.set("bad", map[string]any{"active": true, "sub": "eve", "exp": exp, "cnf": "jkt=abc"})
	p.set("plain", map[string]any{"active": true, "sub": "carol", "exp": exp})
	i := newIntrospector(t, p.srv.URL, nil)
	if id, err := i.Verify(t.Context(), "dpop"); err != nil || id.KeyThumbprint != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" || id.CertThumbprint != "" {
		t.Errorf("cnf.jkt: %+v %v", id, err)
	}
	if id, err := i.Verify(t.Context(), "mtls"); err != nil || id.CertThumbprint != "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" || id.KeyThumbprint != "" {
		t.Errorf("cnf.x5t#S256: %+v %v", id, err)
	}
	if id, err := i.Verify(t.Context(), "plain"); err != nil || id.KeyThumbprint != "" || id.CertThumbprint != "" {
		t.Errorf("no cnf: %+v %v", id, err)
	}
	before := p.calls.Load()
	for range 2 {
		if id, err := i.Verify(t.Context(), "bad"); err == nil || kind(err) != identity.Invalid {
			t.Errorf("a cnf that is not an object: %+v %v, want Invalid", id, err)
		}
	}
	if n := p.calls.Load() - before; n != 1 {
		t.Errorf("the refused answer was asked for %d times, want once (cached)", n)
	}
}
