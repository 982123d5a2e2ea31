package extauthz

import "github.com/tollgate-gw/tollgate/internal/apimodel"

// peer applies the API's own mutual TLS (x-tollgate-mutual-tls): required — no trusted
// client certificate, no request; optional — a trusted certificate is enough, and the
// operation's requirements are not asked. An open operation asks none either.
func (e *Enforcer) peer(d *decision) bool {
	switch d.api.MutualTLS {
	case apimodel.MutualTLSRequired:
		c := e.certificate(d)
		if c.fault != nil {
			d.deny(c.fault, c.reason)
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
