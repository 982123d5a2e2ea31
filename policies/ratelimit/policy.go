package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Kind is the `kind` of a policy document, which `tollgate apply` tells from an API by it.
const Kind = "ThrottlingPolicy"

// Policy is a named throttling policy.
type Policy struct {
	Name      string
	Limit     Limit
	Unlimited bool
	// Key is what is counted: "" (the level's default), api, resource, application,
	// subscription, user, ip, header:<name> or claim:<name>.
	Key string
	// Shadow counts and reports, never denies.
	Shadow bool
}

// GetName is the policy's name; empty for a nil policy.
func (p *Policy) GetName() string {
	if p == nil {
		return ""
	}
	return p.Name
}

// Custom reports whether the policy counts by a custom key (a header, the IP, a claim).
func (p Policy) Custom() bool {
	return p.Key == "ip" || strings.HasPrefix(p.Key, "header:") || strings.HasPrefix(p.Key, "claim:")
}

// document is a policy as written (YAML or JSON).
type document struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Rate   string `json:"rate"` // "100/minute", "10/s", "unlimited"
	Burst  int    `json:"burst"`
	Key    string `json:"key"`
	Shadow bool   `json:"shadow"`
}

// IsPolicy reports whether a document is a throttling policy rather than an API.
func IsPolicy(data []byte) bool {
	var d struct {
		Kind string `json:"kind"`
	}
	return yaml.Unmarshal(data, &d) == nil && d.Kind == Kind
}

// ParsePolicy reads and checks a policy document:
//
//	kind: ThrottlingPolicy
//	name: gold
//	rate: 100/minute          # per second|minute|hour|day (s, m, h, d), or "unlimited"
//	burst: 10                 # most requests at once (default: a tenth of the count, at least 1)
//	key: application          # what to count by (default: where the policy is attached)
//	shadow: false             # count and report only
func ParsePolicy(data []byte) (Policy, error) {
	var d document
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		return Policy{}, fmt.Errorf("$: %v", err)
	}
	if d.Kind != Kind {
		return Policy{}, fmt.Errorf("$.kind: want %q", Kind)
	}
	if d.Name == "" || strings.ContainsAny(d.Name, "/ ") {
		return Policy{}, fmt.Errorf("$.name: %q must be a non-empty name without '/' or spaces", d.Name)
	}
	p := Policy{Name: d.Name, Key: d.Key, Shadow: d.Shadow}
	if strings.EqualFold(d.Rate, "unlimited") {
		p.Unlimited = true
		return p, nil
	}
	lim, err := ParseRate(d.Rate)
	if err != nil {
		return Policy{}, fmt.Errorf("$.rate: %v", err)
	}
	if d.Burst < 0 {
		return Policy{}, fmt.Errorf("$.burst: must not be negative")
	}
	if d.Burst > 0 {
		lim.Burst = d.Burst
	}
	p.Limit = lim
	switch {
	case d.Key == "", d.Key == "api", d.Key == "resource", d.Key == "application", d.Key == "subscription", d.Key == "user", d.Key == "ip":
	case strings.HasPrefix(d.Key, "header:") && len(d.Key) > len("header:"):
	case strings.HasPrefix(d.Key, "claim:") && len(d.Key) > len("claim:"):
	default:
		return Policy{}, fmt.Errorf("$.key: %q must be api, resource, application, subscription, user, ip, header:NAME or claim:NAME", d.Key)
	}
	return p, nil
}

// ParseRate reads "COUNT/UNIT" with UNIT second, minute, hour or day (or s, m, h, d).
func ParseRate(s string) (Limit, error) {
	count, unit, ok := strings.Cut(strings.ReplaceAll(s, " ", ""), "/")
	n, err := strconv.Atoi(count)
	if !ok || err != nil || n <= 0 {
		return Limit{}, fmt.Errorf("%q: want COUNT/UNIT like 100/minute", s)
	}
	var period time.Duration
	switch strings.ToLower(unit) {
	case "s", "sec", "second":
		period = time.Second
	case "m", "min", "minute":
		period = time.Minute
	case "h", "hour":
		period = time.Hour
	case "d", "day":
		period = 24 * time.Hour
	default:
		// A duration ("2m", "500ms") for periods that are not one unit.
		d, err := time.ParseDuration(unit)
		if err != nil || d < time.Millisecond {
			return Limit{}, fmt.Errorf("%q: unit must be second, minute, hour or day, or a duration like 2m", s)
		}
		period = d
	}
	return Limit{Count: n, Period: period, Burst: max(1, n/10)}, nil
}

// Builtin are the tier names of WSO2 API Manager's default policies, so that definitions
// naming them import unchanged. A policy stored in etcd under the same name wins.
var Builtin = func() map[string]Policy {
	m := map[string]Policy{"Unlimited": {Name: "Unlimited", Unlimited: true}}
	for name, rate := range map[string]string{
		"Gold": "5000/minute", "Silver": "2000/minute", "Bronze": "1000/minute", "Unauthenticated": "500/minute",
		"10KPerMin": "10000/minute", "20KPerMin": "20000/minute", "50KPerMin": "50000/minute",
		"10PerMin": "10/minute", "20PerMin": "20/minute", "50PerMin": "50/minute",
	} {
		l, _ := ParseRate(rate)
		m[name] = Policy{Name: name, Limit: l}
	}
	return m
}()
