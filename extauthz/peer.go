package extauthz

import "github.com/tollgate-gw/tollgate/internal/apimodel"

// peer applies the API's own mutual TLS (x-tollgate-mutual-tls): required — no trusted
// client certificate, no request (no certificate at all: 900902, or WSO2's 900901 for a
// definition written for WSO2); optional — a trusted certificate is enough, and the
// operation's requirements are not asked. An open operation asks none either.
func (e *Enforcer) peer(d *decision) bool {
	switch d.api.MutualTLS {
	case apimodel.MutualTLSRequired:
		c := e.certificate(d)
		if c.fault != nil {
			f := c.fault
			if c.missing && d.api.WSO2 {
				f = &FaultCertificateRequired // WSO2's code for it (MutualSSLAuthenticator)
			}
			d.deny(f, c.reason)
			d.challenge = challengeNone // TLS asks for a certificate, not HTTP
			return false
		}
		d.principal = c.principal
	case apimodel.MutualTLSOptional:
		if c := e.certificate(d); c.fault == nil {
			d.principal, d.settled = c.principal, true // a trusted certificate is enough
		}
	}
	if d.op.Open() {
		d.settled = true
	}
	return true
}
