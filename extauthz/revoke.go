package extauthz

import (
	"github.com/tollgate-gw/tollgate/internal/identity"
	"github.com/tollgate-gw/tollgate/policies/revocation"
)

// revocation refuses a token revoked since it was issued — by its id, its hash, its
// subject or its client — cached or not (the list is in memory, followed from etcd).
func (e *Enforcer) revocation(d *decision) bool {
	p, rl := d.principal, e.cfg.Revocations
	if rl == nil || p == nil || p.Kind != identity.JWT && p.Kind != identity.Opaque {
		return true
	}
	if rl.Revoked(revocation.Token{ID: p.TokenID, Hash: p.TokenHash, Subject: p.Subject, ClientID: p.ClientID, IssuedAt: p.IssuedAt}) {
		d.deny(&FaultRevoked, "token revoked")
		d.principal = nil
		return false
	}
	return true
}
