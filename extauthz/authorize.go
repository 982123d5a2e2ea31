package extauthz

import (
	"strings"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/identity"
)

// authorize picks the first requirement whose schemes all passed with the scopes they ask
// (OR of ANDs, in the definition's order); the principal is the requirement's strongest
// (a token's over a key's over a password's over a certificate's). When none holds, the
// most telling failure answers: a bad credential over a missing scope over an unsupported
// scheme over a missing credential.
func (e *Enforcer) authorize(d *decision) bool {
	if d.settled {
		return true
	}
	var best failure
	for _, req := range d.op.Security {
		p, f := e.requirement(d, req)
		if f.fault == nil {
			d.principal = p
			return true
		}
		if f.rank() > best.rank() {
			best = f
		}
	}
	if best.fault == nil {
		best = failure{fault: &FaultInternal, reason: "the operation has no usable security requirement"}
	}
	d.deny(best.fault, best.reason)
	d.scope, d.challenge, d.key, d.dpop, d.principal = best.scope, best.challenge, best.key, best.dpop, best.principal
	return false
}

// failure is why one requirement did not hold.
type failure struct {
	fault     *Fault
	reason    string
	scope     string // the missing scope
	challenge challenge
	key       *apimodel.Scheme
	dpop      string
	missing   bool
	principal *identity.Principal // who lacked the scope
}

func (f failure) rank() int {
	switch {
	case f.fault == nil:
		return 0
	case f.missing, f.fault.Code == FaultMissing.Code:
		return 1
	case f.fault.Code == FaultUnsupported.Code:
		return 2
	case f.fault.Code == FaultScope.Code:
		return 3
	}
	return 4
}

// requirement weighs one requirement: its schemes in order, each credential (checked by
// authenticate) and then its scopes, up to the first that fails.
func (e *Enforcer) requirement(d *decision, req apimodel.Requirement) (*identity.Principal, failure) {
	var chosen *identity.Principal
	for _, use := range req {
		c := e.credentialFor(d, d.api.Schemes[use.Scheme])
		if c.fault != nil {
			return nil, failure{fault: c.fault, reason: c.reason, challenge: c.challenge, key: c.key, dpop: c.dpop, missing: c.missing}
		}
		if missing := missingScope(c.principal, use); missing != "" {
			return nil, failure{fault: &FaultScope, reason: "token lacks scope " + missing, scope: missing, principal: c.principal}
		}
		if chosen == nil || c.principal.Kind.Outranks(chosen.Kind) {
			chosen = c.principal
		}
	}
	return chosen, failure{}
}

// missingScope says what the principal lacks of use's scopes: the first missing one when it
// needs them all, or (space-separated, as WWW-Authenticate's scope lists them) all of them
// when any one would do and it has none.
func missingScope(p *identity.Principal, use apimodel.SchemeUse) string {
	if use.AnyScope {
		for _, s := range use.Scopes {
			if p.HasScope(s) {
				return ""
			}
		}
		return strings.Join(use.Scopes, " ")
	}
	for _, s := range use.Scopes {
		if !p.HasScope(s) {
			return s
		}
	}
	return ""
}
