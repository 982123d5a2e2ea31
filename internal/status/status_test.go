package status

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

type fleet struct{}

func (fleet) Clients() []Client {
	return []Client{{Stream: 1, Node: "envoy-1", Group: "edge", Kind: "envoy", Since: time.Now(),
		Answers: []Answer{{Type: "Listener", Version: "v2", Error: `<script>alert("x")</script>`}}}}
}
func (fleet) Groups() []Group {
	return []Group{{Name: "edge", Published: time.Now(), Versions: map[string]string{"Listener": "v2"}}}
}
func (fleet) Discovery() map[string][]string {
	return map[string][]string{"shop": {"10.0.0.1:80", "10.0.0.2:80 ×3"}}
}

type enforcer struct{}

func (enforcer) Revocations() int { return 7 }
func (enforcer) Limiter() Limiter { return Limiter{Backend: "redis", Up: false} }

func sources(t *testing.T) Sources {
	a := &apimodel.API{Name: "shop", Version: "v1", BasePath: "/shop",
		Production: apimodel.Endpoints{URLs: []apimodel.Endpoint{{URL: "http://10.0.0.1:80", Discovery: "shop"}}},
		Schemes: map[string]apimodel.Scheme{"oauth2": {Name: "oauth2", Type: apimodel.SchemeBearer}, "mtls": {Name: "mtls", Type: apimodel.SchemeMutualTLS},
			"key": {Name: "key", Type: apimodel.SchemeAPIKey, In: apimodel.KeyInHeader, Param: "x-key"}},
		Operations: []apimodel.Operation{
			{Method: "GET", Path: "/items", Security: []apimodel.Requirement{{}}},
			{Method: "POST", Path: "/items", Security: []apimodel.Requirement{{{Scheme: "oauth2", Scopes: []string{"write", "admin"}, AnyScope: true}}, {{Scheme: "mtls"}, {Scheme: "key"}}}},
		}}
	if ps := a.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	cat := apimodel.NewCatalog([]*apimodel.API{a})
	return Sources{Catalog: func() *apimodel.Catalog { return cat }, Fleet: fleet{}, Enforcer: enforcer{}, Started: time.Now(),
		Ready: func() []admin.Readiness {
			return []admin.Readiness{{Name: "authz"}, {Name: "xds", Reason: "etcd endpoints/: not in step"}}
		}}
}

// The page and the report say the same: APIs with their security, the NACK with its
// error (escaped), the discovery keys, the enforcer's state, and readiness with reasons.
func TestPageAndReport(t *testing.T) {
	page, report := Handlers(sources(t))
	w := httptest.NewRecorder()
	page.ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	html, _ := io.ReadAll(w.Body)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("headers %v", w.Header())
	}
	for _, want := range []string{"shop/v1", "POST /items", "oauth2[write | admin] or mtls and key", "open", "envoy-1", "NACK",
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "10.0.0.2:80 ×3", "etcd(shop, http://10.0.0.1:80)", "not ready",
		"etcd endpoints/: not in step", "redis", "down (fallback in use)", ">7<"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(string(html), "<script>") || strings.Contains(string(html), "http://") && strings.Contains(string(html), "<link rel=\"stylesheet\"") {
		t.Error("the page carries a script or an external asset")
	}
	w = httptest.NewRecorder()
	report.ServeHTTP(w, httptest.NewRequest("GET", "/status.json", nil))
	var r Report
	if err := json.NewDecoder(w.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Ready || len(r.APIs) != 1 || r.APIs[0].Operations[1].Security != "oauth2[write | admin] or mtls and key" ||
		len(r.Clients) != 1 || r.Clients[0].Answers[0].Acked || *r.Revocations != 7 || r.Limiter.Up || len(r.Discovery) != 1 {
		t.Errorf("report %+v", r)
	}
}
