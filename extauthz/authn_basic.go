package extauthz

import (
	"errors"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/identity"
	"github.com/tollgate-gw/tollgate/policies/basic"
)

// basicAuth checks "Authorization: Basic base64(user:password)" against the users.
type basicAuth struct{ e *Enforcer }

func (a basicAuth) authenticate(d *decision, _ apimodel.Scheme) credential {
	raw, ok := header(d.h, "authorization")
	if !ok || raw == "" {
		return credential{fault: &FaultMissingBasic, reason: "no Authorization header", challenge: challengeBasic, missing: true}
	}
	users := a.e.cfg.Users
	if users == nil {
		return credential{fault: &FaultBasicInvalid, reason: "no basic-auth users configured", challenge: challengeBasic}
	}
	user, err := users.Check(raw)
	switch {
	case errors.Is(err, basic.ErrFormat):
		return credential{fault: &FaultMissingBasic, reason: "the Authorization header is not a Basic credential", challenge: challengeBasic, missing: true}
	case err != nil:
		return credential{fault: &FaultBasicInvalid, reason: err.Error(), challenge: challengeBasic}
	}
	return credential{principal: &identity.Principal{Kind: identity.Basic, Subject: user, Issuer: "basic"}}
}
