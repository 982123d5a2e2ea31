// Package introspect validates opaque (non-JWT) bearer tokens by OAuth 2.0 Token
// Introspection (RFC 7662) against the issuer's endpoint, authenticating with the gateway's
// client credentials. Answers are cached by token hash — active ones never past the token's
// exp, inactive ones for a short time — so a repeated token costs no call, and concurrent
// requests with the same new token share one call.
package introspect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tollgate-gw/tollgate/internal/defaults"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/tollgate-gw/tollgate/internal/ctxtime"
	"github.com/tollgate-gw/tollgate/internal/discovery"
	"github.com/tollgate-gw/tollgate/internal/identity"
)

// Config is one introspecting issuer.
type Config struct {
	Name string
	URL  string // the introspection endpoint
	// Discover takes the endpoint from the issuer's metadata instead (introspection_endpoint,
	// RFC 8414 §2; at DiscoveryURL if set, else Issuer's well-known locations), refreshed
	// every RefreshInterval (default 10m) and kept across outages and restarts (CacheDir).
	Discover         bool
	Issuer           string
	DiscoveryURL     string
	RefreshInterval  time.Duration
	CacheDir         string
	DiscoveryFetches *prometheus.CounterVec
	ClientID         string
	ClientSecret     []byte
	// Audiences, when set, must include one of the token's aud values.
	Audiences []string
	Timeout   time.Duration // one call (default 2s)
	// ActiveTTL bounds how long an active answer is reused (default 5m, never past exp);
	// InactiveTTL is how long an inactive one is (default 30s).
	ActiveTTL, InactiveTTL time.Duration
	CacheSize              int // default 100000
	ScopeClaim             string
	ClaimHeaders           map[string]string
}

// Introspector validates opaque tokens.
type Introspector struct {
	cfg    Config
	disc   *discovery.Provider // the endpoint comes from the issuer's metadata
	client *http.Client
	log    *zap.Logger
	group  singleflight.Group
	now    func() time.Time

	mu    sync.RWMutex
	cache map[[32]byte]entry

	calls *prometheus.CounterVec
	hits  prometheus.Counter
}

type entry struct {
	id     *identity.Principal // nil: inactive, or refused
	until  time.Time
	refuse *identity.Error // an active token refused all the same (a cnf that cannot be read)
}

// New makes an introspector; reg (may be nil) gets its metrics.
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Introspector, error) {
	if cfg.DiscoveryURL != "" {
		cfg.Discover = true
	}
	if cfg.Discover == (cfg.URL != "") {
		return nil, fmt.Errorf("introspection issuer %q: set either its endpoint URL or discovery", cfg.Name)
	}
	if !cfg.Discover {
		u, err := url.Parse(cfg.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("introspection issuer %q: URL %q is not an http(s) URL", cfg.Name, cfg.URL)
		}
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("introspection issuer %q: clientID is required (RFC 7662 calls are authenticated)", cfg.Name)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaults.IntrospectionTimeout
	}
	if cfg.ActiveTTL == 0 {
		cfg.ActiveTTL = defaults.ActiveTTL
	}
	if cfg.InactiveTTL == 0 {
		cfg.InactiveTTL = defaults.InactiveTTL
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = defaults.TokenCacheSize
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = defaults.RefreshInterval
	}
	var disc *discovery.Provider
	if cfg.Discover {
		var warnings []error
		var err error
		disc, warnings, err = discovery.New(discovery.Config{Name: cfg.Name, Issuer: cfg.Issuer, URL: cfg.DiscoveryURL, Need: discovery.NeedIntrospection,
			CacheDir: cfg.CacheDir, Timeout: cfg.Timeout, Fetches: cfg.DiscoveryFetches})
		if err != nil {
			return nil, fmt.Errorf("introspection issuer %q: %w", cfg.Name, err)
		}
		for _, w := range warnings {
			log.Warn("issuer metadata copy unusable", zap.String("issuer", cfg.Name), zap.Error(w))
		}
	}
	i := &Introspector{disc: disc, cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, log: log, now: time.Now, cache: map[[32]byte]entry{},
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_introspection_calls_total", Help: "Introspection calls by issuer and result: active, inactive, refused, error.",
			ConstLabels: prometheus.Labels{"issuer": cfg.Name}}, []string{"result"}),
		hits: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_introspection_cache_hits_total", Help: "Opaque tokens answered from the cache, by issuer.",
			ConstLabels: prometheus.Labels{"issuer": cfg.Name}}),
	}
	if reg != nil {
		reg.MustRegister(i.calls, i.hits)
	}
	return i, nil
}

// Name is the issuer's configured name.
func (i *Introspector) Name() string { return i.cfg.Name }

// endpoint is where tokens are introspected ("" while the metadata is unknown).
func (i *Introspector) endpoint() string {
	if i.disc == nil {
		return i.cfg.URL
	}
	if md := i.disc.Metadata(); md != nil {
		return md.IntrospectionEndpoint
	}
	return ""
}

// Ready reports whether the endpoint is known (always, unless it is discovered).
func (i *Introspector) Ready() bool { return i.endpoint() != "" }

// Run keeps discovered metadata fresh until ctx ends: every RefreshInterval, sooner after a
// failure (the last good document stays meanwhile). Without discovery it returns at once.
func (i *Introspector) Run(ctx context.Context) {
	if i.disc == nil {
		return
	}
	retry := time.Second
	for {
		wait := i.cfg.RefreshInterval
		changed, err := i.disc.Refresh(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			i.log.Warn("issuer metadata fetch failed; keeping the last good document", zap.String("issuer", i.cfg.Name), zap.Bool("have", i.Ready()), zap.Error(err))
			wait, retry = min(retry, wait), min(retry*2, time.Minute)
		default:
			retry = time.Second
			if changed {
				i.log.Info("issuer metadata read", zap.String("issuer", i.cfg.Name), zap.String("introspection_endpoint", i.endpoint()))
			}
		}
		if !ctxtime.Sleep(ctx, wait) {
			return
		}
	}
}

// Verify asks whether an opaque token is active, from the cache when it can.
func (i *Introspector) Verify(ctx context.Context, token string) (*identity.Principal, error) {
	if len(token) > defaults.MaxTokenBytes || strings.ContainsAny(token, " \t\r\n") {
		return nil, identity.Refuse(identity.Malformed, "malformed opaque token")
	}
	h := sha256.Sum256([]byte(token))
	now := i.now()
	i.mu.RLock()
	e, ok := i.cache[h]
	i.mu.RUnlock()
	if ok && now.Before(e.until) {
		i.hits.Inc()
		return answer(e)
	}
	v, err, _ := i.group.Do(string(h[:]), func() (any, error) {
		e, err := i.introspect(ctx, token, h)
		if err != nil {
			return nil, err
		}
		i.store(h, e)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return answer(v.(entry))
}

func answer(e entry) (*identity.Principal, error) {
	if e.refuse != nil {
		return nil, e.refuse
	}
	if e.id == nil {
		return nil, identity.Refuse(identity.Inactive, "the token is not active")
	}
	return e.id, nil
}

func (i *Introspector) store(h [32]byte, e entry) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.cache) >= i.cfg.CacheSize {
		now := i.now()
		for k, old := range i.cache {
			if !now.Before(old.until) || len(i.cache) >= i.cfg.CacheSize {
				delete(i.cache, k)
			}
			if len(i.cache) < i.cfg.CacheSize*9/10 {
				break
			}
		}
	}
	i.cache[h] = e
}

// response is the RFC 7662 answer.
type response struct {
	Active   bool            `json:"active"`
	Scope    string          `json:"scope"`
	ClientID string          `json:"client_id"`
	Sub      string          `json:"sub"`
	Exp      int64           `json:"exp"`
	Iat      int64           `json:"iat"`
	Jti      string          `json:"jti"`
	Iss      string          `json:"iss"`
	Aud      json.RawMessage `json:"aud"`
	// Cnf binds the token to a certificate (x5t#S256, RFC 8705 §3.2) or a DPoP key (jkt,
	// RFC 9449 §6.2), as a JWT's cnf does.
	Cnf any `json:"cnf"`
}

func (i *Introspector) introspect(ctx context.Context, token string, h [32]byte) (entry, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), i.cfg.Timeout)
	defer cancel()
	endpoint := i.endpoint()
	if endpoint == "" {
		return entry{}, i.unavailable(errors.New("the issuer's metadata has not been fetched yet, so its introspection_endpoint is unknown"))
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return entry{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(i.cfg.ClientID), url.QueryEscape(string(i.cfg.ClientSecret)))
	resp, err := i.client.Do(req)
	if err != nil {
		return entry{}, i.unavailable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return entry{}, i.unavailable(fmt.Errorf("HTTP %d", resp.StatusCode))
	}
	var r response
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return entry{}, i.unavailable(fmt.Errorf("answer is not JSON: %w", err))
	}
	now := i.now()
	if !r.Active || (r.Exp != 0 && !now.Before(time.Unix(r.Exp, 0))) {
		i.calls.WithLabelValues("inactive").Inc()
		return entry{until: now.Add(i.cfg.InactiveTTL)}, nil
	}
	aud := audiences(r.Aud)
	if len(i.cfg.Audiences) > 0 && !anyOf(aud, i.cfg.Audiences) {
		i.calls.WithLabelValues("inactive").Inc()
		return entry{until: now.Add(i.cfg.InactiveTTL)}, nil
	}
	i.calls.WithLabelValues("active").Inc()
	id := &identity.Principal{Issuer: i.cfg.Name, Subject: r.Sub, ClientID: r.ClientID, TokenID: r.Jti, Audience: aud,
		Scopes: strings.Fields(r.Scope), TokenHash: hex.EncodeToString(h[:]), Kind: identity.Opaque,
		Claims: map[string]any{"sub": r.Sub, "client_id": r.ClientID, "scope": r.Scope, "iss": r.Iss, "jti": r.Jti}}
	until := now.Add(i.cfg.ActiveTTL)
	if id.CertThumbprint, id.KeyThumbprint, err = identity.Confirmation(r.Cnf); err != nil {
		// It says it is bound and cannot be checked: never passed as unbound.
		i.calls.WithLabelValues("refused").Inc()
		return entry{refuse: err.(*identity.Error), until: until}, nil
	}
	if r.Exp != 0 {
		id.Expiry = time.Unix(r.Exp, 0)
		until = minTime(until, id.Expiry)
	}
	if r.Iat != 0 {
		id.IssuedAt = time.Unix(r.Iat, 0)
	}
	for claim, header := range i.cfg.ClaimHeaders {
		if v, ok := id.Claims[claim].(string); ok && v != "" && !strings.ContainsAny(v, "\r\n\x00") {
			id.Headers = append(id.Headers, identity.Header{Name: header, Value: v})
		}
	}
	return entry{id: id, until: until}, nil
}

func (i *Introspector) unavailable(err error) error {
	i.calls.WithLabelValues("error").Inc()
	i.log.Warn("introspection failed", zap.String("issuer", i.cfg.Name), zap.Error(err))
	return identity.Refuse(identity.Unavailable, "the token could not be checked with its issuer")
}

func audiences(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

func anyOf(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
