package extauthz

import (
	"cmp"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/identity"
	"github.com/tollgate-gw/tollgate/policies/mtls"
)

// certAuth checks the client certificate Envoy forwards (source.certificate; or
// x-forwarded-client-cert behind another TLS-terminating proxy, when configured), with the
// chain Envoy puts in XFCC to complete the path to a trusted CA.
type certAuth struct{ e *Enforcer }

func (a certAuth) authenticate(d *decision, _ apimodel.Scheme) credential {
	v := a.e.cfg.Certificates
	pem := d.attrs.GetSource().GetCertificate()
	// The chain Envoy sends in XFCC (Chain=, as the generated configuration asks): its
	// certificates are only intermediates, so they are taken from wherever they come.
	xfcc, _ := header(d.h, "x-forwarded-client-cert")
	chain := mtls.ChainFromXFCC(xfcc)
	if pem == "" && v != nil && v.FromXFCC() {
		pem = cmp.Or(mtls.CertFromXFCC(xfcc), chain)
	}
	switch {
	case pem == "":
		return credential{fault: &FaultMissingCertificate, reason: "no client certificate", missing: true, challenge: challengeNone}
	case v == nil:
		return credential{fault: &FaultInvalid, reason: "no trusted client CA configured (authz.mutualTLS.caFiles)", challenge: challengeNone}
	}
	id, err := v.Verify(pem, chain)
	if err != nil {
		return credential{fault: &FaultInvalid, reason: err.Error(), challenge: challengeNone}
	}
	return credential{principal: &identity.Principal{Kind: identity.MutualTLS, Subject: id.Subject, Issuer: "mtls", CertThumbprint: id.Thumbprint}}
}
