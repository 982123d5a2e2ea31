package extauthz_test

import (
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate-gw/tollgate/extauthz"
)

// FuzzCheck sends arbitrary methods, paths, credentials and route metadata through Check:
// it must always answer with an allow or a deny carrying a known fault, and never allow a
// request to a resource that needs a token unless the token is the one the IdP signed.
func FuzzCheck(f *testing.F) {
	e, idp := benchEnforcer(f, 0)
	good := "Bearer " + idp.Sign("rsa", "RS256", idp.Claims(aud, "read:menu"))
	f.Add("GET", "/coffeebar/v1/menu", good, "", "")
	f.Add("GET", "/coffeebar/v1/menu", "Bearer a.b.c", "", "")
	f.Add("POST", "/coffeebar/v1/order/../menu?x=1", "Basic Zm9vOmJhcg==", "coffeebar/v1", "POST /menu")
	f.Add("", "", "", "coffeebar/v1", "")
	f.Fuzz(func(t *testing.T, method, path, authz, api, op string) {
		r := extauthz.Request{Method: method, Path: path, Headers: map[string]string{"authorization": authz}}
		if api != "" || op != "" {
			r.ContextExtensions = map[string]string{"tollgate_api": api, "tollgate_operation": op}
		}
		resp, err := e.Check(t.Context(), extauthz.NewCheckRequest(r))
		if err != nil || resp == nil {
			t.Fatalf("Check returned %v, %v", resp, err)
		}
		switch x := resp.GetHttpResponse().(type) {
		case *authv3.CheckResponse_OkResponse:
			// Coffeebar has no open resource: only the signed token may pass.
			if !strings.Contains(authz, good[len("Bearer "):]) {
				t.Fatalf("allowed %s %q with credential %q", method, path, authz)
			}
		case *authv3.CheckResponse_DeniedResponse:
			if x.DeniedResponse.GetStatus().GetCode() == 0 || x.DeniedResponse.GetBody() == "" {
				t.Fatalf("deny without status or body: %v", x)
			}
		default:
			t.Fatalf("no HTTP response: %v", resp)
		}
	})
}
