package jwt

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-gw/tollgate/internal/defaults"
)

// IssuerConfig is one trusted token issuer.
type IssuerConfig struct {
	// Name labels the issuer in logs and metrics.
	Name string `json:"name"`
	// Issuer is the exact "iss" value its tokens carry.
	Issuer string `json:"issuer"`
	// Audiences: a token must name at least one of them in "aud". Required unless
	// AnyAudience is set, so that a token minted for another service is refused.
	Audiences   []string `json:"audiences,omitempty"`
	AnyAudience bool     `json:"anyAudience,omitempty"`
	// Where the keys come from: exactly one of a JWKS URL (fetched and refreshed), a JWKS
	// file, a PEM certificate or public key file, or an HMAC secret.
	JWKSURL         string `json:"jwksURL,omitempty"`
	JWKSFile        string `json:"jwksFile,omitempty"`
	CertificateFile string `json:"certificateFile,omitempty"`
	HMACSecret      []byte `json:"-"`
	// Discovery takes the JWKS URL from the issuer's metadata (OIDC Discovery or RFC 8414,
	// at DiscoveryURL if set, else at the issuer's well-known locations), refreshed with the
	// keys; it counts as the source of keys.
	Discovery    bool   `json:"discovery,omitempty"`
	DiscoveryURL string `json:"discoveryURL,omitempty"`
	// Algorithms allowed for this issuer. Default: every asymmetric algorithm (RS*, PS*,
	// ES*, EdDSA) with the key type checked against it; HS256 for an HMAC issuer. "none" is
	// never allowed; HS* only with an HMACSecret.
	Algorithms []string `json:"algorithms,omitempty"`
	// ClockSkew tolerated on exp, nbf and iat. Default 30s, at most 5m.
	ClockSkew time.Duration `json:"clockSkew,omitempty"`
	// ScopeClaim names the claim holding scopes. Default: "scope" (space-separated), then
	// "scp" (a list or a string).
	ScopeClaim string `json:"scopeClaim,omitempty"`
	// RefreshInterval for a JWKS URL (default 10m), and the least time between two fetches
	// triggered by an unknown key id (default 10s).
	RefreshInterval    time.Duration `json:"refreshInterval,omitempty"`
	MinRefreshInterval time.Duration `json:"minRefreshInterval,omitempty"`
	// FetchTimeout bounds one JWKS fetch (default 5s).
	FetchTimeout time.Duration `json:"fetchTimeout,omitempty"`
	// AcceptedTypes are the "typ" header values this issuer's access tokens may carry,
	// compared case-insensitively with "application/" optional; "" stands for a token
	// without typ. Default: "", "JWT", "at+jwt". RFC 9068 issuers: ["at+jwt"]. Types that
	// are never access tokens (logout+jwt, secevent+jwt, dpop+jwt, ...) are always refused.
	AcceptedTypes []string `json:"acceptedTypes,omitempty"`
	// DPoPBound requires every token to be DPoP-bound (RFC 9449 cnf.jkt); the enforcer
	// then needs its proof. Bound tokens need their proof whatever this says.
	DPoPBound bool `json:"dpopBound,omitempty"`
	// CertificateBound requires every token to be bound to the client certificate it is
	// presented with (RFC 8705 cnf x5t#S256). Bound tokens are checked whatever this says.
	CertificateBound bool `json:"certificateBound,omitempty"`
}

// Config configures a Verifier.
type Config struct {
	Issuers []IssuerConfig
	// CacheSize bounds the verified-token cache (default 100000 tokens; 0 uses the default,
	// a negative value disables the cache).
	CacheSize int
	// MaxTokenBytes refuses longer tokens unparsed (default 8192).
	MaxTokenBytes int
	// ClaimHeaders maps a claim name to a header sent to the backend with its value.
	ClaimHeaders map[string]string
	// CacheDir keeps each JWKS URL's last fetched document (and each discovered issuer's
	// metadata), loaded at start so that an enforcer started while the IdP is away still
	// verifies tokens ("" turns it off).
	CacheDir string
	// DiscoveryFetches counts metadata fetches (discovery.NewFetches); may be nil.
	DiscoveryFetches *prometheus.CounterVec
}

var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}

const maxSkew = 5 * time.Minute

func (c *IssuerConfig) setDefaults() {
	if c.Name == "" {
		c.Name = c.Issuer
	}
	if len(c.Algorithms) == 0 {
		if len(c.HMACSecret) > 0 {
			c.Algorithms = []string{"HS256"}
		} else {
			c.Algorithms = asymmetric
		}
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = defaults.ClockSkew
	}
	if c.AcceptedTypes == nil {
		c.AcceptedTypes = []string{"", "JWT", "at+jwt"}
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = defaults.RefreshInterval
	}
	if c.MinRefreshInterval == 0 {
		c.MinRefreshInterval = defaults.MinRefreshInterval
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = 5 * time.Second
	}
}

func (c *IssuerConfig) validate() error {
	for _, check := range []func() error{c.validateSource, c.validateTrust, c.validateAlgorithms} {
		if err := check(); err != nil {
			return fmt.Errorf("issuer %q: %w", c.Name, err)
		}
	}
	return nil
}

// validateSource checks the issuer's name and that its keys come from exactly one place.
func (c *IssuerConfig) validateSource() error {
	if c.Issuer == "" {
		return errors.New("issuer (the iss value) is required")
	}
	sources := 0
	for _, s := range []string{c.JWKSURL, c.JWKSFile, c.CertificateFile} {
		if s != "" {
			sources++
		}
	}
	if c.DiscoveryURL != "" {
		c.Discovery = true
	}
	if c.Discovery {
		sources++
	}
	if len(c.HMACSecret) > 0 {
		sources++
	}
	if sources != 1 {
		return errors.New("set exactly one of jwksURL, jwksFile, certificateFile, an HMAC secret or discovery")
	}
	if len(c.HMACSecret) > 0 && len(c.HMACSecret) < 32 {
		return errors.New("the HMAC secret must be at least 32 bytes")
	}
	return nil
}

// validateTrust checks what a token must carry to be accepted: an audience, times within
// the skew, a type that is an access token's.
func (c *IssuerConfig) validateTrust() error {
	if len(c.Audiences) == 0 && !c.AnyAudience {
		return errors.New("audiences are required (set anyAudience: true to accept any, which is unsafe)")
	}
	if c.ClockSkew < 0 || c.ClockSkew > maxSkew {
		return fmt.Errorf("clockSkew %v must be between 0 and %v", c.ClockSkew, maxSkew)
	}
	if len(c.AcceptedTypes) == 0 {
		return errors.New("acceptedTypes must list at least one typ (\"\" for tokens without one)")
	}
	for _, t := range c.AcceptedTypes {
		if nonAccessTypes[normalType(t)] {
			return fmt.Errorf("acceptedTypes: %q is never an access token", t)
		}
	}
	return nil
}

// validateAlgorithms checks the algorithms allowed: never none, HMAC ones only with (and
// only for) an HMAC secret, asymmetric ones known.
func (c *IssuerConfig) validateAlgorithms() error {
	hmac := len(c.HMACSecret) > 0
	for _, a := range c.Algorithms {
		switch {
		case strings.EqualFold(a, "none"):
			return errors.New("algorithm none is never allowed")
		case strings.HasPrefix(a, "HS") && !hmac:
			return fmt.Errorf("%s needs an HMAC secret", a)
		case strings.HasPrefix(a, "HS") && !slices.Contains([]string{"HS256", "HS384", "HS512"}, a):
			return fmt.Errorf("unknown algorithm %q", a)
		case strings.HasPrefix(a, "HS"):
		case hmac:
			return fmt.Errorf("an HMAC issuer allows only HS256/HS384/HS512, not %s", a)
		case !slices.Contains(asymmetric, a):
			return fmt.Errorf("unknown algorithm %q (known: %s, HS256/384/512)", a, strings.Join(asymmetric, ", "))
		}
	}
	return nil
}
