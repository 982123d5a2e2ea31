// Package discovery reads an authorization server's metadata from its issuer URL alone:
// OpenID Connect Discovery 1.0 (/.well-known/openid-configuration appended to the issuer,
// §4) or, where that is not served, RFC 8414 (/.well-known/oauth-authorization-server
// inserted before the issuer's path, §3). The document's issuer must equal the configured
// one exactly (OIDC Discovery §4.3, RFC 8414 §3.3), so a document cannot redirect trust to
// another issuer's keys. The last good document is kept when a refresh fails and, in a
// local copy, across restarts.
package discovery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-gw/tollgate/internal/atomicfile"
)

// NewFetches makes the counter of document fetches that every Provider of a process shares
// (reg, if not nil, gets it).
func NewFetches(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_discovery_fetches_total",
		Help: "Issuer metadata (OIDC Discovery / RFC 8414) fetches by issuer and result: ok, error (the last good document stays)."}, []string{"issuer", "result"})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// Metadata is what the gateway takes from the document.
type Metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// Need says which endpoint a user of the document cannot do without.
type Need int

const (
	NeedJWKS          Need = iota // a JWT issuer: jwks_uri
	NeedIntrospection             // an opaque-token issuer: introspection_endpoint
)

// Config is one issuer's discovery.
type Config struct {
	// Name labels the issuer in metrics.
	Name string
	// Fetches, if set, counts fetches (NewFetches).
	Fetches *prometheus.CounterVec
	// Issuer is the issuer identifier, an https URL (http only on a loopback host).
	Issuer string
	// URL, if set, is the document's address; otherwise the well-known ones are tried.
	URL  string
	Need Need
	// CacheDir keeps the last good document ("" for none).
	CacheDir string
	Timeout  time.Duration // one fetch (default 5s)
	Client   *http.Client
}

// Provider holds an issuer's metadata.
type Provider struct {
	cfg      Config
	urls     []string // tried in order
	copyPath string
	doc      atomic.Pointer[Metadata]
	fetched  atomic.Int64 // unix ns of the last good fetch (or the copy's time)
}

// New checks the configuration and loads the local copy, if there is one. The copy is
// checked as a fetched document is; one that does not pass is ignored and reported.
func New(cfg Config) (*Provider, []error, error) {
	if err := secureURL(cfg.Issuer); err != nil {
		return nil, nil, fmt.Errorf("issuer %q cannot be discovered: %w", cfg.Issuer, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	p := &Provider{cfg: cfg, urls: WellKnown(cfg.Issuer)}
	if cfg.URL != "" {
		if err := secureURL(cfg.URL); err != nil {
			return nil, nil, fmt.Errorf("discoveryURL %q: %w", cfg.URL, err)
		}
		p.urls = []string{cfg.URL}
	}
	var warnings []error
	if cfg.CacheDir != "" {
		h := sha256.Sum256([]byte(cfg.Issuer + "\n" + strings.Join(p.urls, "\n")))
		p.copyPath = filepath.Join(cfg.CacheDir, "discovery-"+hex.EncodeToString(h[:8])+".json")
		if err := p.loadCopy(); err != nil && !errors.Is(err, os.ErrNotExist) {
			warnings = append(warnings, fmt.Errorf("discovery copy %s ignored: %w", p.copyPath, err))
		}
	}
	return p, warnings, nil
}

// WellKnown is where an issuer's metadata is looked for: OIDC's location, then RFC 8414's.
func WellKnown(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	oidc := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	rfc := *u
	rfc.RawPath = ""
	rfc.Path = "/.well-known/oauth-authorization-server" + u.Path
	if path == "" {
		rfc.Path = "/.well-known/oauth-authorization-server"
	}
	rfc.RawQuery, rfc.Fragment = "", ""
	return []string{oidc, strings.TrimSuffix(rfc.String(), "/")}
}

// Metadata is the last good document; nil before the first.
func (p *Provider) Metadata() *Metadata { return p.doc.Load() }

// Fetched is when the document was last fetched (zero before the first).
func (p *Provider) Fetched() time.Time {
	if t := p.fetched.Load(); t != 0 {
		return time.Unix(0, t)
	}
	return time.Time{}
}

// Issuer is the configured issuer identifier.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Refresh fetches the document. On failure the last good one stays; the error says why
// (for each location tried). It reports whether the document changed.
func (p *Provider) Refresh(ctx context.Context) (changed bool, err error) {
	changed, err = p.refresh(ctx)
	if p.cfg.Fetches != nil {
		result := "ok"
		if err != nil {
			result = "error"
		}
		p.cfg.Fetches.WithLabelValues(p.cfg.Name, result).Inc()
	}
	return changed, err
}

func (p *Provider) refresh(ctx context.Context) (bool, error) {
	var errs []error
	for _, u := range p.urls {
		data, md, err := p.fetch(ctx, u)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		old := p.doc.Swap(md)
		p.fetched.Store(time.Now().UnixNano())
		if p.copyPath != "" && (old == nil || *old != *md) {
			if werr := atomicfile.Write(p.copyPath, data); werr != nil {
				return true, fmt.Errorf("document taken, but its copy was not written: %w", werr)
			}
		}
		return old == nil || *old != *md, nil
	}
	return false, errors.Join(errs...)
}

func (p *Provider) fetch(ctx context.Context, u string) ([]byte, *Metadata, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	md, err := p.parse(data)
	return data, md, err
}

// parse reads and checks a document: its issuer is the configured one, and the endpoint
// the user needs is there and secure.
func (p *Provider) parse(data []byte) (*Metadata, error) {
	var md Metadata
	if err := json.Unmarshal(data, &md); err != nil {
		return nil, fmt.Errorf("not a metadata document: %w", err)
	}
	if md.Issuer != p.cfg.Issuer {
		return nil, fmt.Errorf("the document is for issuer %q, not %q (OIDC Discovery §4.3, RFC 8414 §3.3)", md.Issuer, p.cfg.Issuer)
	}
	for _, ep := range []struct {
		name, v string
		need    bool
	}{{"jwks_uri", md.JWKSURI, p.cfg.Need == NeedJWKS}, {"introspection_endpoint", md.IntrospectionEndpoint, p.cfg.Need == NeedIntrospection}} {
		if ep.v == "" {
			if ep.need {
				return nil, fmt.Errorf("the document has no %s", ep.name)
			}
			continue
		}
		if err := secureURL(ep.v); err != nil {
			if ep.need {
				return nil, fmt.Errorf("%s %q: %w", ep.name, ep.v, err)
			}
			// Not used here: dropped rather than refusing the document.
			if ep.name == "jwks_uri" {
				md.JWKSURI = ""
			} else {
				md.IntrospectionEndpoint = ""
			}
		}
	}
	return &md, nil
}

func (p *Provider) loadCopy() error {
	data, err := os.ReadFile(p.copyPath)
	if err != nil {
		return err
	}
	md, err := p.parse(data)
	if err != nil {
		return err
	}
	p.doc.Store(md)
	if fi, err := os.Stat(p.copyPath); err == nil {
		p.fetched.Store(fi.ModTime().UnixNano())
	}
	return nil
}

// secureURL accepts https URLs, and http ones only on a loopback host (a test or a
// sidecar IdP): metadata and keys fetched in clear text could be anyone's.
func secureURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("not an absolute URL without credentials or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			return nil
		}
		return errors.New("http is allowed only on a loopback host; use https")
	}
	return fmt.Errorf("scheme %q is not https", u.Scheme)
}
