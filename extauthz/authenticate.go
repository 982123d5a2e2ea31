package extauthz

import (
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/identity"
)

// credential is one credential's check: a principal, or the fault it earns.
type credential struct {
	principal *identity.Principal
	fault     *Fault
	reason    string
	challenge challenge        // how a 401 for it asks for the credential
	key       *apimodel.Scheme // the API key scheme, for its challenge
	dpop      string           // the challenge is DPoP (decision.dpop)
	missing   bool             // nothing was presented (ranks below a bad credential)
}

// challenge is the WWW-Authenticate a 401 carries: Bearer (OAuth2 and bearer tokens) unless
// the credential that answered is another kind's.
type challenge uint8

const (
	challengeBearer challenge = iota
	challengeBasic            // Basic (RFC 7617)
	challengeAPIKey           // APIKey, naming where the key goes (no registered scheme: Kong's Key is the like)
	challengeNone             // a client certificate: TLS asks for it, not HTTP
)

// authenticator checks the request's credential for one kind of scheme.
type authenticator interface {
	authenticate(d *decision, s apimodel.Scheme) credential
}

// authenticators is the table of credential kinds, one file each (authn_*.go). A new kind
// is a file and an entry here.
func authenticators(e *Enforcer) map[apimodel.SchemeType]authenticator {
	return map[apimodel.SchemeType]authenticator{
		apimodel.SchemeBearer:    bearerAuth{e},
		apimodel.SchemeMutualTLS: certAuth{e},
		apimodel.SchemeBasic:     basicAuth{e},
		apimodel.SchemeAPIKey:    apiKeyAuth{e},
	}
}

// authenticate checks the credentials the operation's requirements name, each at most once
// however many requirements share it: in each requirement, in order, until one fails.
// It decides nothing; authorize weighs the results with the scopes.
func (e *Enforcer) authenticate(d *decision) bool {
	if d.settled {
		return true
	}
	for _, req := range d.op.Security {
		for _, use := range req {
			if c := e.credentialFor(d, d.api.Schemes[use.Scheme]); c.fault != nil {
				break
			}
		}
	}
	return true
}

// credentialFor is the check of scheme s's credential, made once per request.
func (e *Enforcer) credentialFor(d *decision, s apimodel.Scheme) *credential {
	key := memoKey(s)
	if c := d.creds.get(key); c != nil {
		return c
	}
	var c credential
	if a := e.authenticators[s.Type]; a != nil {
		c = a.authenticate(d, s)
	} else {
		c = credential{fault: &FaultUnsupported, reason: "unknown scheme " + s.Name}
	}
	return d.creds.put(key, c)
}

// memoKey names what a scheme's check depends on: the kind for a token, a certificate or
// a password (one per request), the scheme for an API key (its place differs) and for a
// bearer scheme that accepts only some issuers.
func memoKey(s apimodel.Scheme) string {
	if s.Type == apimodel.SchemeAPIKey || s.Type == apimodel.SchemeBearer && len(s.Issuers) > 0 {
		return s.Name
	}
	return string(s.Type)
}

// credentialMemo holds a request's credential checks; a request has one or two.
type credentialMemo struct {
	n    int
	keys [4]string
	vals [4]credential
	more map[string]*credential
}

func (m *credentialMemo) get(key string) *credential {
	for i := range m.n {
		if m.keys[i] == key {
			return &m.vals[i]
		}
	}
	return m.more[key]
}

func (m *credentialMemo) put(key string, c credential) *credential {
	if m.n < len(m.keys) {
		m.keys[m.n], m.vals[m.n] = key, c
		m.n++
		return &m.vals[m.n-1]
	}
	if m.more == nil {
		m.more = map[string]*credential{}
	}
	m.more[key] = &c
	return &c
}

// certificate is the client certificate's check, shared by the peer stage and the
// mutualTLS scheme.
func (e *Enforcer) certificate(d *decision) *credential {
	return e.credentialFor(d, apimodel.Scheme{Type: apimodel.SchemeMutualTLS})
}
