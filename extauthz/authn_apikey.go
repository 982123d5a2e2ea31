package extauthz

import (
	"net/url"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/identity"
)

// apiKeyAuth checks an API key where the scheme says it is (header, query or cookie);
// a good key is removed before the backend unless authz.forwardAPIKey.
type apiKeyAuth struct{ e *Enforcer }

func (a apiKeyAuth) authenticate(d *decision, s apimodel.Scheme) credential {
	key := apiKeyValue(d.h, s)
	if key == "" {
		return credential{fault: missingKeyFault(s), reason: "no API key in " + string(s.In) + " " + s.Param, missing: true, challenge: challengeAPIKey, key: &s}
	}
	keys := a.e.cfg.APIKeys
	if keys == nil {
		return credential{fault: &FaultInvalid, reason: "no API keys configured", challenge: challengeAPIKey, key: &s}
	}
	rec, err := keys.Check(key, d.api.ID(), time.Now())
	if err != nil {
		return credential{fault: &FaultInvalid, reason: err.Error(), challenge: challengeAPIKey, key: &s}
	}
	if !a.e.cfg.ForwardAPIKey {
		d.stripKey = &s
	}
	return credential{principal: &identity.Principal{Kind: identity.APIKey, Subject: rec.Application, ClientID: rec.Application, TokenID: rec.ID, Issuer: "apikey"}}
}

// missingKeyFault is FaultMissingAPIKey saying where the scheme wants the key.
func missingKeyFault(s apimodel.Scheme) *Fault {
	f := FaultMissingAPIKey
	switch s.In {
	case apimodel.KeyInHeader:
		f.Description = "Missing Credentials. Make sure your API invocation call has a header: '" + s.Param + ": API_KEY'"
	case apimodel.KeyInQuery:
		f.Description = "Missing Credentials. Make sure your API invocation call has a query parameter: '" + s.Param + "=API_KEY'"
	case apimodel.KeyInCookie:
		f.Description = "Missing Credentials. Make sure your API invocation call has a cookie: '" + s.Param + "=API_KEY'"
	}
	return &f
}

// apiKeyValue reads an API key where the OpenAPI scheme says it is.
func apiKeyValue(h *authv3.AttributeContext_HttpRequest, s apimodel.Scheme) string {
	switch s.In {
	case apimodel.KeyInHeader:
		v, _ := header(h, s.Param)
		return v
	case apimodel.KeyInQuery:
		_, query, _ := strings.Cut(h.GetPath(), "?")
		q, _ := url.ParseQuery(query)
		return q.Get(s.Param)
	case apimodel.KeyInCookie:
		v, _ := cookie(h, s.Param)
		return v
	}
	return ""
}
