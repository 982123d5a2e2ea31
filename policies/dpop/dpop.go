// Package dpop checks DPoP proofs (RFC 9449): a JWT the client signs per request with a key
// of its own, carrying that public key in its header, the request's method and URI, the
// time, a unique id and the hash of the access token it goes with. An access token bound to
// the key (cnf.jkt, the key's RFC 7638 thumbprint) is good only with such a proof, so a
// stolen token alone is useless. Proof ids are remembered for the proof's lifetime to refuse
// replays: in memory per enforcer, or in Redis so that replicas share them.
package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/defaults"

	"github.com/MicahParks/jwkset"
	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/tollgate-gw/tollgate/policies/jwt"
)

// Config says how proofs are checked.
type Config struct {
	// Algorithms a proof may be signed with (default: ES256, ES384, ES512, PS256, PS384,
	// PS512, RS256, RS384, RS512, EdDSA). Symmetric algorithms and none never.
	Algorithms []string
	// MaxAge is how old a proof's iat may be (default 60s); ClockSkew how far in the
	// future (default 5s). A proof id is remembered for MaxAge + ClockSkew.
	MaxAge    time.Duration
	ClockSkew time.Duration
	// Replay remembers proof ids (default: an in-memory cache of 100000 ids).
	Replay Replay
	// MaxBytes refuses longer proofs unparsed (default 4096).
	MaxBytes int
	// Nonces, if set, requires every proof to carry a nonce the gateway gave out (RFC 9449
	// §8); one without is refused with UseNonce, and the answer carries a new one.
	Nonces *Nonces
}

// Replay remembers proof ids: Seen reports whether id was seen within ttl before, and
// records it.
type Replay interface {
	Seen(ctx context.Context, id string, ttl time.Duration) (bool, error)
}

// Request is the HTTP request a proof must match, as Envoy forwards it.
type Request struct {
	Method, Scheme, Host, Path string
	// AccessToken the proof goes with ("" when none): the proof's ath is its hash.
	AccessToken string
}

// Proof is what a valid proof says.
type Proof struct {
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the proof's key, base64url: what a
	// bound token's cnf.jkt must be.
	Thumbprint string
	ID         string
	// RenewNonce: the proof's nonce is past half its life; give the client a new one.
	RenewNonce bool
}

// Error is a refused proof; Reason never holds the proof. UseNonce says that the proof
// lacks a good server nonce (RFC 9449 §8: answered with error use_dpop_nonce and a nonce).
type Error struct {
	Reason   string
	UseNonce bool
}

func (e *Error) Error() string { return e.Reason }

func refuse(format string, args ...any) *Error { return &Error{Reason: fmt.Sprintf(format, args...)} }

// Checker verifies proofs.
type Checker struct {
	cfg     Config
	allowed map[string]bool
	parser  *gojwt.Parser
	now     func() time.Time
}

// defaultAlgorithms are every asymmetric JWS algorithm; Ed25519 is RFC 9864's name for
// EdDSA over Ed25519.
var defaultAlgorithms = []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA", "Ed25519"}

// New makes a Checker.
func New(cfg Config) (*Checker, error) {
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = defaultAlgorithms
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = defaults.DPoPMaxAge
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 5 * time.Second
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 4096
	}
	if cfg.Replay == nil {
		cfg.Replay = NewMemory(defaults.ReplayCacheSize)
	}
	c := &Checker{cfg: cfg, allowed: map[string]bool{}, now: time.Now}
	for _, a := range cfg.Algorithms {
		known := false
		for _, d := range defaultAlgorithms {
			known = known || a == d
		}
		if !known {
			return nil, fmt.Errorf("dpop: algorithm %q is not an asymmetric JWS algorithm (known: %s)", a, strings.Join(defaultAlgorithms, ", "))
		}
		c.allowed[a] = true
	}
	c.parser = gojwt.NewParser(gojwt.WithValidMethods(cfg.Algorithms), gojwt.WithoutClaimsValidation(), gojwt.WithJSONNumber())
	return c, nil
}

// Algorithms are the proof algorithms accepted, for the DPoP challenge's algs.
func (c *Checker) Algorithms() []string { return c.cfg.Algorithms }

// Verify checks one proof against the request (RFC 9449 §4.3).
func (c *Checker) Verify(ctx context.Context, proof string, r Request) (Proof, error) {
	if err := c.checkShape(proof); err != nil {
		return Proof{}, err
	}
	claims := gojwt.MapClaims{}
	var thumb string
	_, err := c.parser.ParseWithClaims(proof, claims, func(t *gojwt.Token) (any, error) {
		pub, tp, err := proofKey(t)
		thumb = tp
		return pub, err
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return Proof{}, e
		}
		return Proof{}, refuse("the DPoP proof's signature or algorithm is invalid")
	}
	jti, _ := claims["jti"].(string)
	if jti == "" || len(jti) > 256 {
		return Proof{}, refuse("the proof has no jti (RFC 9449 §4.2)")
	}
	if err := c.checkClaims(claims, r); err != nil {
		return Proof{}, err
	}
	renew, err := c.checkNonce(claims)
	if err != nil {
		return Proof{}, err
	}
	// Checked last: a proof that fails another check must not use up its id.
	if err := c.checkReplay(ctx, thumb, jti); err != nil {
		return Proof{}, err
	}
	return Proof{Thumbprint: thumb, ID: jti, RenewNonce: renew}, nil
}

// Nonce is the server nonce to give clients ("" when nonces are not required).
func (c *Checker) Nonce() string {
	if c.cfg.Nonces == nil {
		return ""
	}
	return c.cfg.Nonces.Current()
}

// checkNonce requires, when nonces are on, a nonce the gateway gave out that is still good.
func (c *Checker) checkNonce(claims gojwt.MapClaims) (renew bool, err error) {
	if c.cfg.Nonces == nil {
		return false, nil
	}
	v, _ := claims["nonce"].(string)
	if v == "" {
		return false, &Error{Reason: "the proof has no nonce, and this gateway requires one (RFC 9449 §8)", UseNonce: true}
	}
	renew, err = c.cfg.Nonces.check(v)
	if err != nil {
		return false, &Error{Reason: "the proof's nonce: " + err.Error() + " (RFC 9449 §8)", UseNonce: true}
	}
	return renew, nil
}

// checkShape refuses what is not one compact JWT of an accepted size.
func (c *Checker) checkShape(proof string) error {
	switch {
	case proof == "":
		return refuse("no DPoP proof (RFC 9449 §7.1: a DPoP-bound token needs the DPoP header)")
	case len(proof) > c.cfg.MaxBytes:
		return refuse("DPoP proof longer than %d bytes", c.cfg.MaxBytes)
	case strings.Count(proof, ".") != 2 || strings.ContainsAny(proof, ", "):
		return refuse("the DPoP header is not one compact JWT (RFC 9449 §4.3: exactly one proof)")
	}
	return nil
}

// proofKey is the key a proof is signed with, from its own header, and its thumbprint: the
// header must say dpop+jwt, carry no critical extension and hold a public key that fits the
// algorithm.
func proofKey(t *gojwt.Token) (any, string, error) {
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "dpop+jwt") {
		return nil, "", refuse("the proof's typ must be dpop+jwt (RFC 9449 §4.2)")
	}
	if _, has := t.Header["crit"]; has {
		return nil, "", refuse("the proof has a critical extension this gateway does not understand (RFC 7515 §4.1.11)")
	}
	pub, thumb, err := headerKey(t.Header["jwk"])
	if err != nil {
		return nil, "", err
	}
	if !jwt.AlgorithmFits(t.Method.Alg(), pub) {
		return nil, "", refuse("the proof's key does not fit algorithm %s", t.Method.Alg())
	}
	return pub, thumb, nil
}

// checkClaims holds the proof's claims to the request: its method and URI, a recent issue
// time, and the access token's hash.
func (c *Checker) checkClaims(claims gojwt.MapClaims, r Request) error {
	if htm, _ := claims["htm"].(string); htm != r.Method {
		return refuse("the proof's htm is not the request's method (RFC 9449 §4.3)")
	}
	if htu, _ := claims["htu"].(string); !sameURI(htu, r) {
		return refuse("the proof's htu is not the request's URI (RFC 9449 §4.3)")
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil {
		return refuse("the proof has no numeric iat (RFC 9449 §4.2)")
	}
	now := c.now()
	if iat.Time.After(now.Add(c.cfg.ClockSkew)) || iat.Time.Before(now.Add(-c.cfg.MaxAge)) {
		return refuse("the proof's iat is outside the accepted window (RFC 9449 §4.3: at most %v old)", c.cfg.MaxAge)
	}
	if r.AccessToken != "" {
		if ath, _ := claims["ath"].(string); ath != AccessTokenHash(r.AccessToken) {
			return refuse("the proof's ath is not the hash of the access token (RFC 9449 §4.3)")
		}
	}
	return nil
}

// AccessTokenHash is a proof's ath for token: base64url of its SHA-256 (RFC 9449 §4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// checkReplay refuses a proof whose id (with its key) was seen within its lifetime.
func (c *Checker) checkReplay(ctx context.Context, thumb, jti string) error {
	id := sha256.Sum256([]byte(thumb + " " + jti))
	seen, err := c.cfg.Replay.Seen(ctx, hex.EncodeToString(id[:16]), c.cfg.MaxAge+2*c.cfg.ClockSkew)
	if err != nil {
		return refuse("the proof's jti could not be checked for replay: %v", err)
	}
	if seen {
		return refuse("the proof was used before (RFC 9449 §11.1: jti replayed)")
	}
	return nil
}

// headerKey reads the proof's jwk header: a public key (never private parts or a
// symmetric key) and its RFC 7638 thumbprint.
func headerKey(v any) (any, string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, "", refuse("the proof has no jwk header (RFC 9449 §4.2)")
	}
	raw, _ := json.Marshal(m)
	var j jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, "", refuse("the proof's jwk is not a JWK")
	}
	if j.D != "" || j.P != "" || j.Q != "" || j.DP != "" || j.DQ != "" || j.QI != "" || j.K != "" || len(j.OTH) > 0 {
		return nil, "", refuse("the proof's jwk holds a private or symmetric key (RFC 9449 §4.2)")
	}
	key, err := jwkset.NewJWKFromMarshal(j, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, "", refuse("the proof's jwk is not a usable public key")
	}
	var members map[string]string
	switch key.Key().(type) {
	case *ecdsa.PublicKey:
		members = map[string]string{"crv": string(j.CRV), "kty": "EC", "x": j.X, "y": j.Y}
	case *rsa.PublicKey:
		members = map[string]string{"e": j.E, "kty": "RSA", "n": j.N}
	case ed25519.PublicKey:
		members = map[string]string{"crv": string(j.CRV), "kty": "OKP", "x": j.X}
	default:
		return nil, "", refuse("the proof's jwk is not an EC, RSA or OKP public key")
	}
	return key.Key(), Thumbprint(members), nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of a key's required members: SHA-256 of their
// JSON in lexicographic order without white space, base64url.
func Thumbprint(members map[string]string) string {
	// encoding/json writes map keys sorted and no spaces: RFC 7638 §3's form.
	b, _ := json.Marshal(members)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sameURI compares htu with the request's URI after RFC 3986 syntax- and scheme-based
// normalization, ignoring query and fragment (RFC 9449 §4.3): the case of scheme, host and
// percent-encodings (§6.2.2.1), percent-encoded unreserved characters decoded and nothing
// else (§6.2.2.2: %2F is not /), dot segments removed (§6.2.2.3, §5.2.4), an empty path
// as "/" and the scheme's default port dropped (§6.2.3).
func sameURI(htu string, r Request) bool {
	u, err := url.Parse(htu)
	if err != nil || u.Host == "" {
		return false
	}
	path, _, _ := strings.Cut(r.Path, "?")
	want, err := url.Parse(strings.ToLower(r.Scheme) + "://" + r.Host + path)
	if err != nil {
		return false
	}
	return normalScheme(u) == normalScheme(want) && normalHost(u) == normalHost(want) && normalPath(u) == normalPath(want)
}

func normalScheme(u *url.URL) string { return strings.ToLower(u.Scheme) }

func normalHost(u *url.URL) string {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" || port == "443" && normalScheme(u) == "https" || port == "80" && normalScheme(u) == "http" {
		return host
	}
	return host + ":" + port
}

func normalPath(u *url.URL) string {
	p := percentNormal(u.EscapedPath())
	if p == "" {
		return "/"
	}
	return removeDotSegments(p)
}

// percentNormal decodes the percent-encodings of unreserved characters (ALPHA, DIGIT,
// "-", ".", "_", "~") and writes the others' hex digits in upper case (RFC 3986 §2.3,
// §6.2.2.1, §6.2.2.2); every other character stays as it is.
func percentNormal(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			b.WriteByte(p[i])
			continue
		}
		c := unhex(p[i+1])<<4 | unhex(p[i+2])
		if unreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteString(strings.ToUpper(p[i+1 : i+3]))
		}
		i += 2
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// removeDotSegments is RFC 3986 §5.2.4's algorithm: "." and ".." segments go, and nothing
// else changes (unlike path.Clean, empty segments and a trailing slash stay).
func removeDotSegments(in string) string {
	var out []string // output segments, each with its leading "/"
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "/..":
			in = "/"
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "." || in == "..":
			in = ""
		default:
			// The first segment, with its leading "/" if any, up to the next "/".
			end := strings.IndexByte(in[1:], '/')
			if end < 0 {
				end = len(in)
			} else {
				end++
			}
			out = append(out, in[:end])
			in = in[end:]
		}
	}
	return strings.Join(out, "")
}
