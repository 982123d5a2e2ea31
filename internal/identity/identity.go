// Package identity is who a request speaks for, whatever credential proved it: the
// principal a verifier returns (a token's claims, a certificate's subject, a user, an API
// key's application), its kind, and why a credential was refused. It holds types only;
// the verifiers live in policies/, the decisions in extauthz.
package identity

import (
	"errors"
	"fmt"
	"time"
)

// Kind is how the caller authenticated.
type Kind uint8

// The kinds of credential.
const (
	None      Kind = iota // nothing was needed
	MutualTLS             // a client certificate
	Basic                 // a user name and password
	APIKey                // an API key
	Opaque                // an opaque token, introspected
	JWT                   // a JWT, verified
)

var kindNames = [...]string{None: "none", MutualTLS: "mtls", Basic: "basic", APIKey: "apikey", Opaque: "opaque", JWT: "jwt"}

// String is the kind as logs, metadata and access logs show it.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Outranks says whether a principal of kind k speaks for the request rather than one of
// kind other, when one requirement takes several credentials: a token's over a key's over a
// password's over a certificate's.
func (k Kind) Outranks(other Kind) bool {
	rank := func(k Kind) Kind { return min(k, Opaque) } // a JWT and an opaque token rank alike
	return rank(k) > rank(other)
}

// Principal is what a verified credential says about its caller.
type Principal struct {
	Kind     Kind
	Issuer   string // the issuer's configured name ("mtls", "basic", "apikey" for those kinds)
	Subject  string
	ClientID string // azp, client_id or cid
	TokenID  string // jti, or the API key's id
	Audience []string
	Scopes   []string
	Expiry   time.Time
	IssuedAt time.Time // zero when unknown
	// TokenHash is the hex SHA-256 of the token: how a token without a jti is revoked.
	TokenHash string
	// CertThumbprint: a certificate's RFC 8705 x5t#S256 — of the client certificate for
	// MutualTLS, of the certificate a token is bound to (cnf) for tokens.
	CertThumbprint string
	// KeyThumbprint is a token's RFC 9449 cnf.jkt: good only with a DPoP proof by that key.
	KeyThumbprint string
	Claims        map[string]any
	// Headers are the backend headers configured from claims.
	Headers []Header
}

// Header is one header for the backend.
type Header struct{ Name, Value string }

// HasScope reports whether the principal was granted scope s.
func (p *Principal) HasScope(s string) bool {
	for _, have := range p.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// Failure is why a credential was refused.
type Failure uint8

// The kinds of refusal.
const (
	Malformed   Failure = iota + 1 // not a credential of its kind at all (not a JWT, say)
	Invalid                        // bad signature, unknown issuer or key, wrong audience, not yet valid, ...
	Expired                        // exp has passed
	Inactive                       // an introspected token the IdP says is not active
	Unavailable                    // the IdP could not be asked
)

// Error is a refused credential. Reason is safe to show to the caller: it never holds the
// credential.
type Error struct {
	Failure Failure
	Reason  string
}

func (e *Error) Error() string { return e.Reason }

// Refuse makes an Error.
func Refuse(f Failure, format string, args ...any) *Error {
	return &Error{Failure: f, Reason: fmt.Sprintf(format, args...)}
}

// FailureOf is err's Failure (Invalid for an error that is not an *Error).
func FailureOf(err error) Failure {
	var e *Error
	if errors.As(err, &e) {
		return e.Failure
	}
	return Invalid
}

// Printable reports whether a principal's value (a claim, a subject) may go into a header
// or a log line: no control characters (tab aside) and at most 4 KiB. Values that fail it
// are not passed on.
func Printable(s string) bool {
	if len(s) > 4096 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Confirmation reads a token's "cnf" (RFC 7800), from a JWT's claims or an introspection
// response (RFC 7662 §2.2, RFC 9449 §6.2): an x5t#S256 certificate thumbprint (RFC 8705
// §3.1) or a jkt key thumbprint (RFC 9449 §6). nil means the token is not bound. A cnf that
// is not an object, a member of the wrong type, or only confirmation methods Tollgate
// cannot check is refused: a token that says it is bound must never pass as unbound.
func Confirmation(raw any) (x5t, jkt string, err error) {
	if raw == nil {
		return "", "", nil
	}
	cnf, ok := raw.(map[string]any)
	if !ok {
		return "", "", Refuse(Invalid, "cnf is not an object (RFC 7800 §3.1)")
	}
	for name, v := range cnf {
		s, isString := v.(string)
		switch name {
		case "x5t#S256":
			if !isString || s == "" {
				return "", "", Refuse(Invalid, "cnf x5t#S256 is not a thumbprint string (RFC 8705 §3.1)")
			}
			x5t = s
		case "jkt":
			if !isString || s == "" {
				return "", "", Refuse(Invalid, "cnf jkt is not a thumbprint string (RFC 9449 §6.1)")
			}
			jkt = s
		}
	}
	if x5t == "" && jkt == "" {
		return "", "", Refuse(Invalid, "cnf holds no confirmation method this gateway can check (x5t#S256 or jkt)")
	}
	return x5t, jkt, nil
}
