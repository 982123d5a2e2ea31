package extauthz

import (
	"errors"
	"slices"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/identity"
	"github.com/tollgate-gw/tollgate/policies/dpop"
)

// bearerAuth checks a token in the API's auth header: a JWT (verified, cached) or an opaque
// token (introspected), as "Bearer <token>" or — bound to a key — "DPoP <token>" with its
// proof (RFC 9449); a certificate-bound token goes only with its certificate (RFC 8705).
type bearerAuth struct{ e *Enforcer }

// tokenFaults is the fault of a refused token by failure; any other is 900901.
var tokenFaults = map[identity.Failure]*Fault{
	identity.Malformed:   &FaultMalformed,
	identity.Expired:     &FaultExpired,
	identity.Inactive:    &FaultInactive,
	identity.Unavailable: &FaultInternal,
}

func (a bearerAuth) authenticate(d *decision, s apimodel.Scheme) credential {
	e, api := a.e, d.api
	challenge := ""
	if api.DPoP {
		challenge = "challenge"
	}
	raw, present := header(d.h, api.AuthHeader)
	if !present || strings.TrimSpace(raw) == "" {
		return credential{fault: &FaultMissing, reason: "no " + api.AuthHeader + " header", dpop: challenge, missing: true}
	}
	scheme, token, ok := tokenOf(raw)
	if !ok {
		return credential{fault: &FaultMissing, reason: "the " + api.AuthHeader + " header is not a Bearer or DPoP credential", dpop: challenge, missing: true}
	}
	var p *identity.Principal
	var err error
	switch {
	case len(e.cfg.Opaque) > 0 && strings.Count(token, ".") != 2:
		p, err = a.introspect(d, s, token)
	case e.tokens == nil:
		return credential{fault: &FaultInvalid, reason: "no token issuer is configured"}
	default:
		p, err = e.tokens.Verify(d.ctx, token)
	}
	if err == nil && len(s.Issuers) > 0 && !slices.Contains(s.Issuers, p.Issuer) {
		err = identity.Refuse(identity.Invalid, "the token's issuer %q is not one that scheme %q accepts", p.Issuer, s.Name)
	}
	if err != nil {
		c := credential{fault: &FaultInvalid, reason: err.Error()}
		if f := tokenFaults[identity.FailureOf(err)]; f != nil {
			c.fault = f
		}
		if scheme == "dpop" {
			c.dpop = "invalid_token"
		}
		return c
	}
	if c := a.possession(d, scheme, token, p); c.fault != nil {
		return c
	}
	if p.CertThumbprint == "" && api.CertificateBound {
		return credential{fault: &FaultInvalid, reason: "this API takes only certificate-bound tokens"}
	}
	if p.CertThumbprint != "" {
		// RFC 8705 §3: a certificate-bound token goes only with its certificate.
		if c := e.certificate(d); c.fault != nil || c.principal.CertThumbprint != p.CertThumbprint {
			return credential{fault: &FaultInvalid, reason: "certificate-bound token presented without its certificate"}
		}
	}
	return credential{principal: p}
}

// introspect asks the opaque-token issuers the scheme accepts (all, unless it names some),
// in order, until one finds the token active or refuses it for a reason of its own. A token
// no issuer knows is inactive; when one could not be asked and none knew it, the answer is
// that it could not be checked (503), not that it is inactive.
func (a bearerAuth) introspect(d *decision, s apimodel.Scheme, token string) (*identity.Principal, error) {
	var last error
	asked := 0
	for _, is := range a.e.cfg.Opaque {
		if len(s.Issuers) > 0 && !slices.Contains(s.Issuers, is.Name()) {
			continue
		}
		asked++
		p, err := is.Verify(d.ctx, token)
		switch identity.FailureOf(err) {
		case identity.Inactive:
			if last == nil {
				last = err
			}
			continue
		case identity.Unavailable:
			last = err
			continue
		}
		return p, err
	}
	if asked == 0 {
		return nil, identity.Refuse(identity.Invalid, "no opaque-token issuer that scheme %q accepts is configured", s.Name)
	}
	return nil, last
}

// possession applies RFC 9449: a DPoP-bound token (cnf.jkt) passes only with the DPoP
// scheme and a proof by its key for this request, never as a Bearer token; the DPoP scheme
// takes only bound tokens; an API with x-tollgate-dpop takes nothing else.
func (a bearerAuth) possession(d *decision, scheme, token string, p *identity.Principal) credential {
	refuse := func(code, reason string) credential {
		return credential{fault: &FaultInvalid, reason: reason, dpop: code}
	}
	if scheme != "dpop" {
		switch {
		case p.KeyThumbprint != "":
			return refuse("invalid_token", "a DPoP-bound token presented as a Bearer token (RFC 9449 §7.1)")
		case d.api.DPoP:
			return refuse("invalid_token", "this API takes only DPoP-bound tokens with their proof")
		}
		return credential{}
	}
	proofs := a.e.cfg.DPoP
	if proofs == nil {
		return credential{fault: &FaultUnsupported, reason: "DPoP proofs are not checked by this gateway"}
	}
	if p.KeyThumbprint == "" {
		return refuse("invalid_token", "the DPoP scheme with a token that is not DPoP-bound (RFC 9449 §7.1)")
	}
	proof, n := headerValues(d.h, "dpop")
	if n > 1 {
		return refuse("invalid_dpop_proof", "more than one DPoP header (RFC 9449 §4.3)")
	}
	h := d.h
	got, err := proofs.Verify(d.ctx, proof, dpop.Request{Method: h.GetMethod(), Scheme: h.GetScheme(), Host: h.GetHost(), Path: h.GetPath(), AccessToken: token})
	if e, ok := errors.AsType[*dpop.Error](err); ok && e.UseNonce {
		return refuse("use_dpop_nonce", err.Error())
	}
	if err != nil {
		return refuse("invalid_dpop_proof", err.Error())
	}
	if got.Thumbprint != p.KeyThumbprint {
		return refuse("invalid_dpop_proof", "the proof is not signed by the key the token is bound to (RFC 9449 §6.1)")
	}
	d.newNonce = got.RenewNonce
	return credential{}
}

// tokenOf takes the token out of "Bearer <token>" or "DPoP <token>" (scheme
// case-insensitive); scheme is "bearer" or "dpop".
func tokenOf(v string) (scheme, token string, ok bool) {
	v = strings.TrimSpace(v)
	name, rest, found := strings.Cut(v, " ")
	if !found {
		name, rest, found = strings.Cut(v, "\t")
	}
	if !found {
		return "", "", false
	}
	switch {
	case strings.EqualFold(name, "bearer"):
		scheme = "bearer"
	case strings.EqualFold(name, "dpop"):
		scheme = "dpop"
	default:
		return "", "", false
	}
	token = strings.TrimSpace(rest)
	return scheme, token, token != ""
}
