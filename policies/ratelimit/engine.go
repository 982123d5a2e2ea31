package ratelimit

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// Backend keeps the counters: Local or Redis.
type Backend interface {
	Take(ctx context.Context, key string, lim Limit) (Result, error)
}

// Level is where a policy applies; it picks the fault code of a deny.
type Level int

// The levels, in the order a request is checked.
const (
	LevelAPI Level = iota + 1
	LevelResource
	LevelApplication
	LevelSubscription
	LevelCustom
)

// Request is what a decision needs to know about a request.
type Request struct {
	API, Operation       string // API id, operation key
	APIPolicy, OpPolicy  string // attached in the definition
	AppPolicy, SubPolicy string // from the token's claims
	ClientID, Subject    string
	IP                   string
	Headers              map[string]string // request headers, names in lower case
	Claims               map[string]any    // the token's claims
}

// Decision is the answer: allowed, or the level and policy that said no; with the most
// restrictive counter's state for the RateLimit headers.
type Decision struct {
	Allowed bool
	Level   Level
	Policy  string
	// NotFound is set when a named policy does not exist: the request is denied.
	NotFound bool
	Limit    Limit
	Result   Result
	Counted  bool // some limited policy applied
}

// Engine holds the policies (built-in, and from etcd's policies/ range) and decides.
type Engine struct {
	backend Backend
	log     *zap.Logger

	mu       sync.Mutex
	stored   map[string]Policy
	policies atomic.Pointer[map[string]Policy]

	decisions *prometheus.CounterVec
	shadowed  *prometheus.CounterVec
	rejected  prometheus.Counter
	counters  sync.Map // policy name → *policyCounters
}

// policyCounters are one policy's series, looked up once rather than by label per decision.
type policyCounters struct{ allow, deny, shadowed prometheus.Counter }

func (e *Engine) countersOf(name string) *policyCounters {
	if c, ok := e.counters.Load(name); ok {
		return c.(*policyCounters)
	}
	c, _ := e.counters.LoadOrStore(name, &policyCounters{
		allow: e.decisions.WithLabelValues(name, "allow"), deny: e.decisions.WithLabelValues(name, "deny"),
		shadowed: e.shadowed.WithLabelValues(name)})
	return c.(*policyCounters)
}

// NewEngine makes an engine over a backend; reg (may be nil) gets its metrics.
func NewEngine(b Backend, log *zap.Logger, reg prometheus.Registerer) *Engine {
	e := &Engine{backend: b, log: log, stored: map[string]Policy{},
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_ratelimit_decisions_total", Help: "Throttling decisions by policy and result (allow, deny)."}, []string{"policy", "result"}),
		shadowed:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_ratelimit_shadow_denials_total", Help: "Requests a shadow policy would have denied."}, []string{"policy"}),
		rejected:  prometheus.NewCounter(prometheus.CounterOpts{Name: "tollgate_ratelimit_policies_rejected_total", Help: "Stored throttling policies that failed to parse (the last good version stays)."}),
	}
	if reg != nil {
		reg.MustRegister(e.decisions, e.shadowed, e.rejected)
	}
	e.publish()
	return e
}

func (e *Engine) publish() {
	m := make(map[string]Policy, len(Builtin)+len(e.stored))
	for k, v := range Builtin {
		m[k] = v
	}
	for k, v := range e.stored {
		m[k] = v
	}
	e.policies.Store(&m)
}

// Reset replaces the stored policies (the store.Sink of policies/).
func (e *Engine) Reset(kvs []store.KV) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stored = map[string]Policy{}
	for _, kv := range kvs {
		e.apply(kv.Key, kv.Value)
	}
	e.publish()
}

// Update applies one change to the stored policies.
func (e *Engine) Update(ev store.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Deleted {
		delete(e.stored, ev.Key)
	} else {
		e.apply(ev.Key, ev.Value)
	}
	e.publish()
}

func (e *Engine) apply(key string, value []byte) {
	p, err := ParsePolicy(value)
	if err == nil && p.Name != key {
		err = errName
	}
	if err != nil {
		// The last good version of the policy stays.
		e.rejected.Inc()
		e.log.Error("throttling policy rejected", zap.String("key", store.Policies+key), zap.Error(err))
		return
	}
	e.stored[key] = p
}

type nameError struct{}

func (nameError) Error() string { return "the policy's name differs from its key" }

var errName = nameError{}

// Policy returns a policy by name.
func (e *Engine) Policy(name string) (Policy, bool) {
	p, ok := (*e.policies.Load())[name]
	return p, ok
}

// Decide checks a request against every policy that applies — API, resource, application,
// subscription — and the first that says no decides. Shadow policies are counted and
// reported, never obeyed.
func (e *Engine) Decide(ctx context.Context, r Request) Decision {
	policies := *e.policies.Load()
	d := Decision{Allowed: true}
	for _, a := range [...]struct {
		level Level
		name  string
	}{{LevelAPI, r.APIPolicy}, {LevelResource, r.OpPolicy}, {LevelApplication, r.AppPolicy}, {LevelSubscription, r.SubPolicy}} {
		if a.name == "" {
			continue
		}
		p, ok := policies[a.name]
		if !ok {
			return Decision{Level: a.level, Policy: a.name, NotFound: true}
		}
		if p.Unlimited {
			continue
		}
		key, ok := counterKey(a.level, p, r)
		if !ok {
			continue // nothing to count by (e.g. no such header): the policy does not apply
		}
		res, err := e.backend.Take(ctx, key, p.Limit)
		if err != nil {
			e.log.Warn("throttling backend", zap.Error(err))
			continue
		}
		level := a.level
		if p.Custom() {
			level = LevelCustom
		}
		if !res.Allowed {
			if p.Shadow {
				e.countersOf(p.Name).shadowed.Inc()
				continue
			}
			e.countersOf(p.Name).deny.Inc()
			return Decision{Level: level, Policy: p.Name, Limit: p.Limit, Result: res, Counted: true}
		}
		e.countersOf(p.Name).allow.Inc()
		if !d.Counted || res.Remaining < d.Result.Remaining {
			d.Limit, d.Result, d.Policy, d.Level = p.Limit, res, p.Name, level
		}
		d.Counted = true
	}
	return d
}

// Take counts one request against the named policy in the counter key, for callers that
// choose their own keys (the Envoy rate limit service). found is false for an unknown policy.
func (e *Engine) Take(ctx context.Context, policy, key string) (p Policy, r Result, found bool, err error) {
	p, found = e.Policy(policy)
	if !found || p.Unlimited {
		return p, Result{Allowed: true}, found, nil
	}
	r, err = e.backend.Take(ctx, p.Name+"|"+key, p.Limit)
	if err == nil && !r.Allowed && p.Shadow {
		e.countersOf(p.Name).shadowed.Inc()
		r.Allowed = true
	}
	return p, r, true, err
}

// counterKey names the counter a request is counted in: the policy, where it is attached,
// and the value it counts by.
func counterKey(level Level, p Policy, r Request) (string, bool) {
	by := p.Key
	if by == "" {
		by = [...]string{"", "api", "resource", "application", "subscription"}[level]
	}
	var value string
	switch {
	case by == "api":
		value = r.API
	case by == "resource":
		value = r.API + " " + r.Operation
	case by == "application":
		value = r.ClientID
	case by == "subscription":
		value = r.ClientID + "@" + r.API
	case by == "user":
		value = r.Subject
	case by == "ip":
		value = r.IP
	case strings.HasPrefix(by, "header:"):
		value = r.Headers[strings.ToLower(by[len("header:"):])]
	case strings.HasPrefix(by, "claim:"):
		value, _ = r.Claims[by[len("claim:"):]].(string)
	}
	if value == "" {
		return "", false
	}
	// Per API unless the policy counts across APIs (application, user, custom keys at the
	// application or subscription level are the caller's, wherever they call).
	scope := ""
	if level == LevelAPI || level == LevelResource {
		scope = r.API
	}
	return p.Name + "|" + by + "|" + scope + "|" + value, true
}

// Seconds rounds a duration up to whole seconds, for Retry-After and RateLimit-Reset.
func Seconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
