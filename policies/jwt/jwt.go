// Package jwt verifies bearer JWTs against configured issuers: keys from a JWKS URL (fetched,
// cached, refreshed in the background and on an unknown kid, kept while the IdP is down), a
// JWKS file, a PEM certificate or an HMAC secret; a per-issuer algorithm allow-list with the
// key type checked against the algorithm; audiences; exp/nbf/iat with bounded skew. Verified
// tokens are cached by hash until they expire, so a repeated token costs no signature check.
package jwt

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/defaults"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/identity"
)

// refuse is identity.Refuse: every refusal carries its kind of failure.
func refuse(f identity.Failure, format string, args ...any) *identity.Error {
	return identity.Refuse(f, format, args...)
}

type issuer struct {
	cfg     IssuerConfig
	types   map[string]bool // accepted typ values, normalized; "" is a token without typ
	allowed map[string]bool
	audSet  map[string]bool
	src     *source
}

// Verifier checks tokens. It is safe for concurrent use; call Run to keep JWKS keys fresh.
type Verifier struct {
	issuers   map[string]*issuer // by iss
	parser    *gojwt.Parser
	cache     *cache
	maxBytes  int
	headers   []claimHeader
	log       *zap.Logger
	m         *metrics
	now       func() time.Time
	waitLimit time.Duration
}

type claimHeader struct{ claim, header string }

// New builds a Verifier. The registerer gets the verifier's metrics (nil: not exported).
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Verifier, error) {
	m := newMetrics(reg)
	v := &Verifier{issuers: map[string]*issuer{}, maxBytes: cfg.MaxTokenBytes, log: log, m: m, now: time.Now, waitLimit: 3 * time.Second}
	if v.maxBytes == 0 {
		v.maxBytes = defaults.MaxTokenBytes
	}
	size := cfg.CacheSize
	if size == 0 {
		size = defaults.TokenCacheSize
	}
	v.cache = newCache(size)
	client := &http.Client{Timeout: 10 * time.Second}
	methods := map[string]bool{}
	for _, c := range cfg.Issuers {
		c.setDefaults()
		if err := c.validate(); err != nil {
			return nil, err
		}
		if _, dup := v.issuers[c.Issuer]; dup {
			return nil, fmt.Errorf("issuer %q is configured twice", c.Issuer)
		}
		src, err := newSource(c, client, log, m, cfg)
		if err != nil {
			return nil, fmt.Errorf("loading keys of issuer %q: %w", c.Name, err)
		}
		is := &issuer{cfg: c, types: map[string]bool{}, allowed: map[string]bool{}, audSet: map[string]bool{}, src: src}
		for _, t := range c.AcceptedTypes {
			is.types[normalType(t)] = true
		}
		for _, a := range c.Algorithms {
			is.allowed[a] = true
			methods[a] = true
		}
		for _, a := range c.Audiences {
			is.audSet[a] = true
		}
		v.issuers[c.Issuer] = is
		if src.remote() && reg != nil {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tollgate_jwks_age_seconds",
				Help:        "Seconds since the issuer's keys were last fetched (for keys from the local copy, since the copy was written); absent until there are keys.",
				ConstLabels: prometheus.Labels{"issuer": c.Name}}, func() float64 {
				if t := src.fetched.Load(); t != 0 {
					return time.Since(time.Unix(0, t)).Seconds()
				}
				return -1
			}))
		}
	}
	valid := make([]string, 0, len(methods))
	for a := range methods {
		valid = append(valid, a)
	}
	sort.Strings(valid)
	// Claims are checked per issuer below; the parser checks structure and signature only.
	v.parser = gojwt.NewParser(gojwt.WithValidMethods(valid), gojwt.WithoutClaimsValidation(), gojwt.WithJSONNumber())
	for claim, header := range cfg.ClaimHeaders {
		v.headers = append(v.headers, claimHeader{claim, header})
	}
	sort.Slice(v.headers, func(i, j int) bool { return v.headers[i].claim < v.headers[j].claim })
	return v, nil
}

// Run keeps remote key sets fresh until ctx ends.
func (v *Verifier) Run(ctx context.Context) {
	done := make(chan struct{})
	n := 0
	for _, is := range v.issuers {
		if is.src.remote() {
			n++
			go func() { is.src.Run(ctx); done <- struct{}{} }()
		}
	}
	for range n {
		<-done
	}
}

// Ready reports whether every issuer has keys (a JWKS URL has been fetched once).
func (v *Verifier) Ready() bool {
	for _, is := range v.issuers {
		if !is.src.ready() {
			return false
		}
	}
	return true
}

// Issuers is the number of configured issuers.
func (v *Verifier) Issuers() int { return len(v.issuers) }

// Verify checks a compact JWT and returns who it speaks for. A token seen before and not
// yet expired comes from the cache without a signature check.
func (v *Verifier) Verify(ctx context.Context, token string) (*identity.Principal, error) {
	if len(token) > v.maxBytes {
		v.m.verify.WithLabelValues("malformed").Inc()
		return nil, refuse(identity.Malformed, "token longer than %d bytes", v.maxBytes)
	}
	now := v.now()
	h := tokenHash(token)
	if id := v.cache.get(h, now.UnixNano()); id != nil {
		v.m.cacheHits.Inc()
		return id, nil
	}
	id, until, err := v.verify(ctx, token, now, h)
	if err != nil {
		v.m.verify.WithLabelValues(failureLabel(identity.FailureOf(err))).Inc()
		return nil, err
	}
	v.m.verify.WithLabelValues("ok").Inc()
	v.cache.put(h, id, until.UnixNano(), now.UnixNano())
	return id, nil
}

func failureLabel(f identity.Failure) string {
	switch f {
	case identity.Malformed:
		return "malformed"
	case identity.Expired:
		return "expired"
	}
	return "invalid"
}

func (v *Verifier) verify(ctx context.Context, token string, now time.Time, h [32]byte) (*identity.Principal, time.Time, error) {
	if strings.Count(token, ".") != 2 {
		return nil, time.Time{}, refuse(identity.Malformed, "not a JWT: want three dot-separated parts")
	}
	claims := gojwt.MapClaims{}
	var is *issuer
	tok, err := v.parser.ParseWithClaims(token, claims, func(t *gojwt.Token) (any, error) {
		var e *identity.Error
		is, e = v.issuerOf(claims)
		if e != nil {
			return nil, e
		}
		return v.keyFor(ctx, is, t)
	})
	if err != nil {
		return nil, time.Time{}, parseFailure(err)
	}
	if e := checkCrit(tok.Header); e != nil {
		return nil, time.Time{}, e
	}
	if e := is.checkType(tok.Header); e != nil {
		return nil, time.Time{}, e
	}
	exp, err := v.checkTimes(is, claims, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	aud := audiences(claims["aud"])
	if !is.cfg.AnyAudience && !anyIn(aud, is.audSet) {
		return nil, time.Time{}, refuse(identity.Invalid, "the token is not for this audience")
	}
	id := &identity.Principal{Issuer: is.cfg.Name, Audience: aud, Expiry: exp, Claims: claims, TokenHash: hex.EncodeToString(h[:]), Kind: identity.JWT}
	if err := is.bind(id, claims); err != nil {
		return nil, time.Time{}, err
	}
	v.describe(id, is, claims)
	return id, exp, nil
}

// issuerOf is the configured issuer of a token's claims.
func (v *Verifier) issuerOf(claims gojwt.MapClaims) (*issuer, *identity.Error) {
	iss, _ := claims["iss"].(string)
	if is := v.issuers[iss]; is != nil {
		return is, nil
	}
	return nil, refuse(identity.Invalid, "unknown issuer")
}

// keyFor is the issuer's key that verifies t: of an algorithm the issuer allows, with the
// token's kid, of the type the algorithm needs. A kid not known makes the key set be
// fetched again in the background (rate-limited), waited for at most waitLimit and half of
// what is left of the call's deadline: Envoy gives ext_authz 500 ms by default, and a Check
// that waits on an IdP that hangs must still answer 401 within it, not let Envoy answer 503
// — or let anyone make every Check wait by inventing key ids.
func (v *Verifier) keyFor(ctx context.Context, is *issuer, t *gojwt.Token) (any, error) {
	alg := t.Method.Alg()
	if !is.allowed[alg] {
		return nil, refuse(identity.Invalid, "algorithm %s is not allowed for this issuer", alg)
	}
	kid, _ := t.Header["kid"].(string)
	k := is.src.keys.Load().find(kid, alg)
	if k == nil {
		// Perhaps the IdP rotated its keys: fetch again (rate-limited) and look once more.
		if wait := is.src.refresh(); wait != nil {
			budget := v.waitLimit
			if deadline, ok := ctx.Deadline(); ok {
				budget = min(budget, time.Until(deadline)/2)
			}
			timer := time.NewTimer(budget)
			select {
			case <-wait:
			case <-ctx.Done():
			case <-timer.C:
			}
			timer.Stop()
			k = is.src.keys.Load().find(kid, alg)
		}
	}
	if k == nil {
		return nil, refuse(identity.Invalid, "no key of this issuer matches the token's kid and algorithm")
	}
	if !fits(alg, k) {
		return nil, refuse(identity.Invalid, "the key's type does not match algorithm %s", alg)
	}
	return k.pub, nil
}

// parseFailure is why the parser refused a token.
func parseFailure(err error) *identity.Error {
	var e *identity.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, gojwt.ErrTokenMalformed):
		return refuse(identity.Malformed, "malformed token")
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid):
		return refuse(identity.Invalid, "signature or algorithm is invalid")
	}
	return refuse(identity.Invalid, "token could not be verified")
}

// bind reads the token's confirmation (cnf) into id, refusing a token the issuer wants
// bound that is not.
func (is *issuer) bind(id *identity.Principal, claims gojwt.MapClaims) error {
	var err error
	if id.CertThumbprint, id.KeyThumbprint, err = identity.Confirmation(claims["cnf"]); err != nil {
		return err
	}
	if is.cfg.DPoPBound && id.KeyThumbprint == "" {
		return refuse(identity.Invalid, "this issuer's tokens must be DPoP-bound (cnf jkt)")
	}
	if is.cfg.CertificateBound && id.CertThumbprint == "" {
		return refuse(identity.Invalid, "this issuer's tokens must be bound to a client certificate (cnf x5t#S256)")
	}
	return nil
}

// describe fills in who the token speaks for: issue time, subject, token id, client,
// scopes and the claims passed on as headers.
func (v *Verifier) describe(id *identity.Principal, is *issuer, claims gojwt.MapClaims) {
	if iat, err := claims.GetIssuedAt(); err == nil && iat != nil {
		id.IssuedAt = iat.Time
	}
	id.Subject, _ = claims["sub"].(string)
	id.TokenID, _ = claims["jti"].(string)
	for _, c := range []string{"azp", "client_id", "cid"} {
		if s, ok := claims[c].(string); ok && s != "" {
			id.ClientID = s
			break
		}
	}
	id.Scopes = scopes(claims, is.cfg.ScopeClaim)
	for _, ch := range v.headers {
		if val, ok := headerValue(claims[ch.claim]); ok {
			id.Headers = append(id.Headers, identity.Header{Name: ch.header, Value: val})
		}
	}
}

// checkCrit applies RFC 7515 §4.1.11: "crit" lists header parameters that are extensions
// the recipient must understand or reject the token. Tollgate understands none, so a token
// with "crit" is refused — also when the list is empty (which the RFC forbids) or names a
// parameter the header does not have.
func checkCrit(header map[string]any) *identity.Error {
	c, ok := header["crit"]
	if !ok {
		return nil
	}
	list, _ := c.([]any)
	if len(list) == 0 {
		return refuse(identity.Invalid, "crit must be a non-empty list (RFC 7515 §4.1.11)")
	}
	for _, n := range list {
		name, _ := n.(string)
		if _, present := header[name]; !present || name == "" {
			return refuse(identity.Invalid, "crit names a header parameter the token does not have (RFC 7515 §4.1.11)")
		}
	}
	return refuse(identity.Invalid, "the token needs a critical extension this gateway does not understand (RFC 7515 §4.1.11)")
}

// checkType applies the issuer's accepted "typ" values (RFC 8725 §3.11, RFC 9068 §4): a
// logout token, a security event or a DPoP proof of the same issuer is not an access token.
func (is *issuer) checkType(header map[string]any) *identity.Error {
	typ := ""
	if t, ok := header["typ"]; ok {
		s, isString := t.(string)
		if !isString || s == "" {
			return refuse(identity.Invalid, "typ must be a non-empty string")
		}
		typ = normalType(s)
	}
	if nonAccessTypes[typ] {
		return refuse(identity.Invalid, "typ %q is not an access token (RFC 8725 §3.11)", typ)
	}
	if !is.types[typ] {
		if typ == "" {
			return refuse(identity.Invalid, "this issuer's tokens must carry a typ (RFC 9068 §2.1: at+jwt)")
		}
		return refuse(identity.Invalid, "typ %q is not accepted for this issuer", typ)
	}
	return nil
}

// normalType compares media types the way RFC 7515 §4.1.9 says: case-insensitively, with
// "application/" optional.
func normalType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	return strings.TrimPrefix(t, "application/")
}

// nonAccessTypes are JWT types that are never access tokens, whatever an issuer accepts.
var nonAccessTypes = map[string]bool{
	"logout+jwt":              true, // OpenID Connect back-channel logout
	"secevent+jwt":            true, // RFC 8417 security event tokens
	"dpop+jwt":                true, // RFC 9449 DPoP proofs
	"token-introspection+jwt": true, // RFC 9701 introspection responses
	"oauth-authz-req+jwt":     true, // RFC 9101 request objects
	"kb+jwt":                  true, // SD-JWT key binding
	"entity-statement+jwt":    true, // OpenID Federation
	"jwk-set+jwt":             true, // signed key sets
}

func (v *Verifier) checkTimes(is *issuer, claims gojwt.MapClaims, now time.Time) (time.Time, error) {
	skew := is.cfg.ClockSkew
	expAt, err := claims.GetExpirationTime()
	if err != nil {
		return time.Time{}, refuse(identity.Malformed, "exp is not a number")
	}
	if expAt == nil {
		return time.Time{}, refuse(identity.Invalid, "the token has no exp")
	}
	if !now.Before(expAt.Add(skew)) {
		return time.Time{}, refuse(identity.Expired, "the token expired")
	}
	nbf, err := claims.GetNotBefore()
	if err != nil {
		return time.Time{}, refuse(identity.Malformed, "nbf is not a number")
	}
	if nbf != nil && now.Add(skew).Before(nbf.Time) {
		return time.Time{}, refuse(identity.Invalid, "the token is not valid yet")
	}
	iat, err := claims.GetIssuedAt()
	if err != nil {
		return time.Time{}, refuse(identity.Malformed, "iat is not a number")
	}
	if iat != nil && now.Add(skew).Before(iat.Time) {
		return time.Time{}, refuse(identity.Invalid, "the token was issued in the future")
	}
	// Accepted up to exp+skew, but cached no longer than exp.
	return expAt.Time, nil
}

func audiences(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, 0, len(t))
		for _, a := range t {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func anyIn(list []string, set map[string]bool) bool {
	for _, s := range list {
		if set[s] {
			return true
		}
	}
	return false
}

func scopes(claims gojwt.MapClaims, claim string) []string {
	names := []string{"scope", "scp"}
	if claim != "" {
		names = []string{claim}
	}
	for _, n := range names {
		switch t := claims[n].(type) {
		case string:
			return strings.Fields(t)
		case []any:
			out := make([]string, 0, len(t))
			for _, s := range t {
				if str, ok := s.(string); ok {
					out = append(out, str)
				}
			}
			return out
		}
	}
	return nil
}

// headerValue renders a claim for a header, refusing what would break or smuggle headers.
func headerValue(v any) (string, bool) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case bool:
		s = strconv.FormatBool(t)
	case interface{ String() string }: // json.Number
		s = t.String()
	case []any:
		parts := make([]string, 0, len(t))
		for _, p := range t {
			ps, ok := p.(string)
			if !ok {
				return "", false
			}
			parts = append(parts, ps)
		}
		s = strings.Join(parts, ",")
	default:
		return "", false
	}
	return s, identity.Printable(s)
}
