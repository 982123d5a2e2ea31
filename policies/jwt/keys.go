package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/tollgate-gw/tollgate/internal/ctxtime"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/atomicfile"
	"github.com/tollgate-gw/tollgate/internal/discovery"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// key is one verification key.
type key struct {
	kid string
	alg string // the JWK's "alg", if it named one
	pub any    // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte (HMAC)
}

// keyMap is an immutable set of keys, swapped whole on refresh. One kid may name several
// keys (RFC 7517 §4.5 does not forbid an RSA and an EC key with one kid): a token's key is
// picked by kid and algorithm together.
type keyMap struct {
	byKID map[string][]*key
	all   []*key
}

func newKeyMap(keys []*key) *keyMap {
	m := &keyMap{byKID: make(map[string][]*key, len(keys)), all: keys}
	for _, k := range keys {
		if k.kid != "" {
			m.byKID[k.kid] = append(m.byKID[k.kid], k)
		}
	}
	return m
}

// find picks the key for a token: the key with its kid that fits alg, or the only key that
// fits alg when the token names no kid or the issuer has a single static key.
func (m *keyMap) find(kid, alg string) *key {
	if m == nil {
		return nil
	}
	if kid != "" && len(m.byKID) > 0 {
		for _, k := range m.byKID[kid] {
			if fits(alg, k) {
				return k
			}
		}
		return nil
	}
	var found *key
	for _, k := range m.all {
		if fits(alg, k) {
			if found != nil {
				return nil // ambiguous
			}
			found = k
		}
	}
	return found
}

// AlgorithmFits says whether a public key may verify signatures of alg: RSA of at least
// 2048 bits for RS/PS, the algorithm's curve for ES, Ed25519 for EdDSA. (DPoP proofs carry
// their key; the same rules apply to it.)
func AlgorithmFits(alg string, pub any) bool {
	if _, symmetric := pub.([]byte); symmetric {
		return false
	}
	return fits(alg, &key{pub: pub})
}

// fits says whether key k may verify a token signed with alg: the key type must be the
// algorithm's (no RSA key for HS256, no P-384 key for ES256), and a JWK that names its
// algorithm allows only that one.
func fits(alg string, k *key) bool {
	if k.alg != "" && k.alg != alg && !(edDSA(k.alg) && edDSA(alg)) {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		p, ok := k.pub.(*rsa.PublicKey)
		return ok && p.N.BitLen() >= 2048
	case "ES256":
		return curve(k.pub) == elliptic.P256()
	case "ES384":
		return curve(k.pub) == elliptic.P384()
	case "ES512":
		return curve(k.pub) == elliptic.P521()
	case "EdDSA", "Ed25519":
		_, ok := k.pub.(ed25519.PublicKey)
		return ok
	case "HS256", "HS384", "HS512":
		_, ok := k.pub.([]byte)
		return ok
	}
	return false
}

// edDSA reports whether alg names EdDSA: "EdDSA", or "Ed25519", which RFC 9864 defines as
// the same algorithm over the one curve; a JWK of either name verifies a token of the other
// (its key type is still checked).
func edDSA(alg string) bool { return alg == "EdDSA" || alg == "Ed25519" }

// ed25519Method is RFC 9864's fully specified "Ed25519": EdDSA over Ed25519 alone, the name
// current JOSE libraries write for Ed25519 keys in place of the polymorphic "EdDSA".
type ed25519Method struct{ *gojwt.SigningMethodEd25519 }

func (ed25519Method) Alg() string { return "Ed25519" }

func init() {
	gojwt.RegisterSigningMethod("Ed25519", func() gojwt.SigningMethod { return ed25519Method{gojwt.SigningMethodEdDSA} })
}

func curve(pub any) elliptic.Curve {
	if p, ok := pub.(*ecdsa.PublicKey); ok {
		return p.Curve
	}
	return nil
}

// skipped is a JWK that parseJWKS left out, and why ("invalid", "unsupported",
// "symmetric", "encryption").
type skipped struct {
	kid, reason, detail string
}

// parseJWKS reads a JWK Set document (jwkset does the key decoding and checks). Private
// parts are dropped. A key that cannot be used — invalid (an EC point off its curve, say),
// of an unsupported type, symmetric, or for encryption — is skipped and reported, never the
// whole set (RFC 7517 §5: ignore the keys you cannot use), so a valid key published beside
// a bad one is still picked up. Only a document that is not a JWK Set is an error.
func parseJWKS(data []byte) ([]*key, []skipped, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("JWKS is not JSON: %w", err)
	}
	var keys []*key
	var skips []skipped
	for _, m := range set.Keys {
		if m.USE != "" && m.USE != jwkset.UseSig {
			skips = append(skips, skipped{m.KID, "encryption", "use " + string(m.USE)})
			continue
		}
		j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if errors.Is(err, jwkset.ErrUnsupportedKey) {
			skips = append(skips, skipped{m.KID, "unsupported", err.Error()})
			continue
		}
		if err != nil {
			skips = append(skips, skipped{m.KID, "invalid", err.Error()})
			continue
		}
		pub := j.Key()
		switch p := pub.(type) {
		case *rsa.PrivateKey:
			pub = &p.PublicKey
		case *ecdsa.PrivateKey:
			pub = &p.PublicKey
		case ed25519.PrivateKey:
			pub = p.Public()
		case []byte:
			skips = append(skips, skipped{m.KID, "symmetric", "symmetric keys never come from a JWKS"})
			continue
		}
		keys = append(keys, &key{kid: m.KID, alg: string(m.ALG), pub: pub})
	}
	return keys, skips, nil
}

// parsePEM reads a certificate or public key (PEM) as an issuer's single key.
func parsePEM(data []byte) (*key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return &key{pub: cert.PublicKey}, nil
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		return &key{pub: pub}, nil
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		return &key{pub: pub}, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a certificate or public key", block.Type)
}

// source holds an issuer's keys. Static sources (file, PEM, HMAC) load once; a JWKS URL is
// fetched by Run, refreshed periodically and on demand, and keeps its last good keys when
// the IdP is down.
type source struct {
	keys atomic.Pointer[keyMap]

	url     string
	disc    *discovery.Provider // the JWKS URL comes from the issuer's metadata
	client  *http.Client
	every   time.Duration
	minGap  time.Duration
	timeout time.Duration
	log     *zap.Logger
	m       *metrics
	issuer  string

	// copyPath keeps the last JWKS fetched, so a restart while the IdP is away still has
	// keys ("" when off). fetched is when keys were last fetched (or the copy written).
	copyPath string
	fetched  atomic.Int64

	// skippedOf is the hash of the last document whose unusable keys were reported: each
	// document's are logged and counted once, not at every refresh.
	skippedOf [32]byte

	mu        sync.Mutex
	lastFetch time.Time
	waiting   chan struct{} // closed when the fetch asked for by refresh ends
	kick      chan struct{}
}

func newSource(c IssuerConfig, client *http.Client, log *zap.Logger, m *metrics, cfg Config) (*source, error) {
	s := &source{url: c.JWKSURL, client: client, every: c.RefreshInterval, minGap: c.MinRefreshInterval,
		timeout: c.FetchTimeout, log: log, m: m, issuer: c.Name, kick: make(chan struct{}, 1)}
	switch {
	case c.JWKSURL != "" || c.Discovery:
		copyOf := c.JWKSURL
		if c.Discovery {
			// Keyed by the issuer, not by the jwks_uri of the day, so that a restart
			// finds it before the metadata is fetched.
			copyOf = "discovery:" + c.Issuer
			disc, warnings, err := discovery.New(discovery.Config{Name: c.Name, Issuer: c.Issuer, URL: c.DiscoveryURL, Need: discovery.NeedJWKS,
				CacheDir: cfg.CacheDir, Timeout: c.FetchTimeout, Client: client, Fetches: cfg.DiscoveryFetches})
			if err != nil {
				return nil, err
			}
			for _, w := range warnings {
				log.Warn("issuer metadata copy unusable", zap.String("issuer", c.Name), zap.Error(w))
			}
			s.disc = disc
		}
		// Keys arrive when Run fetches them; until then, from the last fetch's copy.
		if cfg.CacheDir != "" {
			h := sha256.Sum256([]byte(copyOf))
			s.copyPath = filepath.Join(cfg.CacheDir, "jwks-"+hex.EncodeToString(h[:8])+".json")
			s.loadCopy()
		}
	case c.JWKSFile != "":
		data, err := os.ReadFile(c.JWKSFile)
		if err != nil {
			return nil, err
		}
		keys, skips, err := parseJWKS(data)
		if err == nil && len(keys) == 0 {
			err = errors.New("no usable signing key")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.JWKSFile, err)
		}
		s.noteSkipped(data, skips)
		s.keys.Store(newKeyMap(keys))
	case c.CertificateFile != "":
		data, err := os.ReadFile(c.CertificateFile)
		if err != nil {
			return nil, err
		}
		k, err := parsePEM(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.CertificateFile, err)
		}
		s.keys.Store(newKeyMap([]*key{k}))
	default:
		s.keys.Store(newKeyMap([]*key{{pub: append([]byte(nil), c.HMACSecret...)}}))
	}
	return s, nil
}

func (s *source) remote() bool { return s.url != "" || s.disc != nil }

// jwksURL is where the keys are fetched: the configured URL, or the one the issuer's
// metadata names ("" before the metadata is known).
func (s *source) jwksURL() string {
	if s.disc == nil {
		return s.url
	}
	if md := s.disc.Metadata(); md != nil {
		return md.JWKSURI
	}
	return ""
}

// discover refreshes the issuer's metadata, keeping the last good document when it fails.
func (s *source) discover(ctx context.Context) {
	if s.disc == nil {
		return
	}
	changed, err := s.disc.Refresh(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("issuer metadata fetch failed; keeping the last good document", zap.String("issuer", s.issuer), zap.Bool("have", s.disc.Metadata() != nil), zap.Error(err))
	case changed:
		s.log.Info("issuer metadata read", zap.String("issuer", s.issuer), zap.String("jwks_uri", s.jwksURL()))
	}
}

// ready reports whether the source has keys.
func (s *source) ready() bool { return s.keys.Load() != nil }

// Run fetches the JWKS now, then every refresh interval and whenever refresh asks, until ctx
// ends. A failed fetch keeps the keys it had and is retried sooner.
func (s *source) Run(ctx context.Context) {
	if !s.remote() {
		return
	}
	retry := time.Second
	kicked := false
	for {
		s.mu.Lock()
		s.lastFetch = time.Now()
		s.mu.Unlock()
		if !kicked {
			// The metadata with every scheduled fetch; an unknown key id asks for keys only.
			s.discover(ctx)
		}
		kicked = false
		err := s.fetch(ctx)
		s.mu.Lock()
		if s.waiting != nil {
			close(s.waiting)
			s.waiting = nil
		}
		s.mu.Unlock()
		wait := s.every
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.m.jwksFetch.WithLabelValues(s.issuer, "error").Inc()
			s.log.Warn("JWKS fetch failed; keeping the keys we have", zap.String("issuer", s.issuer), zap.String("url", s.jwksURL()), zap.Error(err))
			wait = min(retry, s.every)
			// Without any keys every token is refused: retry often until the first fetch.
			ceiling := time.Minute
			if !s.ready() {
				ceiling = 5 * time.Second
			}
			retry = min(retry*2, ceiling)
		} else {
			s.m.jwksFetch.WithLabelValues(s.issuer, "ok").Inc()
			retry = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.kick:
			t.Stop()
			kicked = true
			// Asked for a fetch: honour the least gap between two fetches.
			s.mu.Lock()
			gap := s.minGap - time.Since(s.lastFetch)
			s.mu.Unlock()
			if gap > 0 && !ctxtime.Sleep(ctx, gap) {
				return
			}
		}
	}
}

func (s *source) fetch(ctx context.Context) error {
	url := s.jwksURL()
	if url == "" {
		return errors.New("the issuer's metadata has not been fetched yet, so its jwks_uri is unknown")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	keys, skips, err := parseJWKS(data)
	if err != nil {
		return err
	}
	s.noteSkipped(data, skips)
	if len(keys) == 0 {
		return errors.New("JWKS holds no usable signing key")
	}
	if s.copyPath != "" {
		if err := atomicfile.Write(s.copyPath, data); err != nil {
			s.log.Warn("writing the JWKS copy failed", zap.String("issuer", s.issuer), zap.String("file", s.copyPath), zap.Error(err))
		}
	}
	s.keys.Store(newKeyMap(keys))
	s.fetched.Store(time.Now().UnixNano())
	return nil
}

// noteSkipped reports a document's unusable keys: one log line and a count per reason,
// once per document.
func (s *source) noteSkipped(data []byte, skips []skipped) {
	h := sha256.Sum256(data)
	s.mu.Lock()
	seen := h == s.skippedOf
	s.skippedOf = h
	s.mu.Unlock()
	if seen || len(skips) == 0 {
		return
	}
	var kids, reasons []string
	for _, k := range skips {
		s.m.keysSkipped.WithLabelValues(s.issuer, k.reason).Inc()
		kids = append(kids, k.kid)
		reasons = append(reasons, k.reason+": "+k.detail)
	}
	s.log.Warn("JWKS keys skipped; the others are used", zap.String("issuer", s.issuer), zap.Strings("kids", kids), zap.Strings("reasons", reasons))
}

// loadCopy takes the keys of the last JWKS fetched in an earlier run.
func (s *source) loadCopy() {
	data, err := os.ReadFile(s.copyPath)
	if err != nil {
		return
	}
	keys, _, err := parseJWKS(data)
	if err != nil || len(keys) == 0 {
		s.log.Warn("JWKS copy unusable; ignored", zap.String("issuer", s.issuer), zap.String("file", s.copyPath), zap.Error(err))
		return
	}
	s.keys.Store(newKeyMap(keys))
	if fi, err := os.Stat(s.copyPath); err == nil {
		s.fetched.Store(fi.ModTime().UnixNano())
	}
	s.log.Info("JWKS from the local copy until the first fetch", zap.String("issuer", s.issuer), zap.Int("keys", len(keys)))
}

// refresh asks Run for a fetch because a token named a key we do not have. It returns a
// channel closed when that fetch ends, or nil when a fetch happened too recently (so a flood
// of made-up key ids costs the IdP one request per MinRefreshInterval at most).
func (s *source) refresh() <-chan struct{} {
	if !s.remote() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting != nil {
		return s.waiting
	}
	// Too soon after the last fetch: Run fetches once the gap has passed, and this request
	// does not wait for it.
	soon := time.Since(s.lastFetch) < s.minGap
	if !soon {
		s.waiting = make(chan struct{})
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return s.waiting
}
