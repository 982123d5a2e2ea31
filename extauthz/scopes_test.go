package extauthz_test

import (
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/extauthz"
)

// How the scopes of one requirement combine: a WSO2 document (x-wso2-*) takes any one of
// them, as WSO2's gateways do; a plain OpenAPI document needs them all; x-tollgate-scopes
// says it explicitly, on the document or on an operation.
func TestScopesAnyOfForWSO2AllOfForOpenAPI(t *testing.T) {
	const wso2 = `openapi: 3.0.3
info: {title: Scoped, version: v1}
x-wso2-basePath: /scoped/v1
x-wso2-production-endpoints: {urls: [http://127.0.0.1:9000]}
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: https://idp.test/token, scopes: {}}}}
security: [{oauth: [write:scopes, read:scopes]}]
paths:
  /either: {get: {responses: {"200": {description: ok}}}}
  /both: {get: {x-tollgate-scopes: all, responses: {"200": {description: ok}}}}
`
	const plain = `openapi: 3.0.3
info: {title: Plain, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: https://idp.test/token, scopes: {}}}}
security: [{oauth: [write:scopes, read:scopes]}]
paths:
  /both: {get: {responses: {"200": {description: ok}}}}
  /either: {get: {x-tollgate-scopes: any, responses: {"200": {description: ok}}}}
`
	r := newRig(t, extauthz.Config{}, wso2, plain)
	read, both, none := r.token("read:scopes"), r.token("read:scopes write:scopes"), r.token("other")
	for _, c := range []struct {
		name, path, token string
		status            int
	}{
		{"WSO2 document: one of the scopes is enough", "/scoped/v1/either", read, 200},
		{"WSO2 document: none of them is 403", "/scoped/v1/either", none, 403},
		{"WSO2 document, operation says all: one is 403", "/scoped/v1/both", read, 403},
		{"WSO2 document, operation says all: both pass", "/scoped/v1/both", both, 200},
		{"OpenAPI document: one of two is 403", "/plain/v1/both", read, 403},
		{"OpenAPI document: both pass", "/plain/v1/both", both, 200},
		{"OpenAPI document, operation says any: one is enough", "/plain/v1/either", read, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := r.check(t, "GET", c.path, c.token, nil)
			if got.status != c.status {
				t.Errorf("%d, want %d: %s", got.status, c.status, got.body)
			}
		})
	}
	// Any-of: the challenge names every scope that would do.
	got := r.check(t, "GET", "/scoped/v1/either", none, nil)
	if wa := got.headers["www-authenticate"]; !strings.Contains(wa, `scope="write:scopes read:scopes"`) {
		t.Errorf("WWW-Authenticate %q", wa)
	}
}
