package ratelimit

import (
	"fmt"
	"github.com/tollgate-gw/tollgate/internal/definitions"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// WSO2 API Microgateway's throttling policies file (policies.yaml): three lists of named
// policies, each {count, unitTime, timeUnit[, stopOnQuota]}.
var wso2Sections = []string{"resourcePolicies", "applicationPolicies", "subscriptionPolicies"}

// IsWSO2Policies reports whether a document is WSO2's throttling policies file.
func IsWSO2Policies(data []byte) bool {
	var d map[string]any
	if yaml.Unmarshal(data, &d) != nil {
		return false
	}
	for _, s := range wso2Sections {
		if _, ok := d[s]; ok {
			return true
		}
	}
	return false
}

type wso2Policy struct {
	Count       int    `json:"count"`
	UnitTime    int    `json:"unitTime"`
	TimeUnit    string `json:"timeUnit"`
	StopOnQuota *bool  `json:"stopOnQuota"`
}

var wso2Units = map[string]time.Duration{
	"ms": time.Millisecond, "sec": time.Second, "s": time.Second, "second": time.Second,
	"min": time.Minute, "m": time.Minute, "minute": time.Minute,
	"hour": time.Hour, "h": time.Hour, "day": 24 * time.Hour, "d": 24 * time.Hour,
}

// ParseWSO2Policies reads WSO2's policies file as Tollgate policies. Names keep their case
// (WSO2's tier names are case-sensitive: 10kPerMin and 10KPerMin are two policies). A WSO2
// policy lets its whole count through at once, as WSO2's windows do (burst = count), and
// stopOnQuota: false (let requests over the quota through) becomes a shadow policy. The
// warnings name what was read differently.
func ParseWSO2Policies(data []byte) ([]Policy, []string, error) {
	var doc map[string][]map[string]wso2Policy
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("$: %v", err)
	}
	for k := range doc {
		if !slices.Contains(wso2Sections, k) {
			return nil, nil, fmt.Errorf("$.%s: unknown section (known: %s)", k, strings.Join(wso2Sections, ", "))
		}
	}
	var out []Policy
	var warnings []string
	byName := map[string]string{}
	for _, section := range wso2Sections {
		for i, entry := range doc[section] {
			at := fmt.Sprintf("$.%s[%d]", section, i)
			if len(entry) != 1 {
				return nil, nil, fmt.Errorf("%s: want one policy name with its settings", at)
			}
			for name, w := range entry {
				p, warning, err := w.policy(at+"."+name, name)
				if err != nil {
					return nil, nil, err
				}
				rendered := string(p.Document())
				if prev, dup := byName[name]; dup && prev != rendered {
					return nil, nil, fmt.Errorf("%s.%s: policy %s is defined again with other settings (policy names are one namespace here)", at, name, name)
				} else if dup {
					continue
				}
				byName[name] = rendered
				out = append(out, p)
				if warning != "" {
					warnings = append(warnings, warning)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, warnings, nil
}

// policy is one WSO2 policy, at at, as a Tollgate policy, with a warning when it is read
// differently.
func (w wso2Policy) policy(at, name string) (Policy, string, error) {
	if name == "" || strings.ContainsAny(name, "/ ") {
		return Policy{}, "", fmt.Errorf("%s: %q must be a name without '/' or spaces", at, name)
	}
	unit, ok := wso2Units[strings.ToLower(w.TimeUnit)]
	if !ok {
		return Policy{}, "", fmt.Errorf("%s.timeUnit: %q must be ms, sec, min, hour or day", at, w.TimeUnit)
	}
	if w.Count <= 0 || w.UnitTime <= 0 {
		return Policy{}, "", fmt.Errorf("%s: count and unitTime must be positive", at)
	}
	p := Policy{Name: name, Limit: Limit{Count: w.Count, Period: time.Duration(w.UnitTime) * unit, Burst: w.Count}}
	if w.Count == 2147483647 {
		p = Policy{Name: name, Unlimited: true} // WSO2's way of writing unlimited
	}
	if w.StopOnQuota != nil && !*w.StopOnQuota {
		p.Shadow = true
		return p, at + ".stopOnQuota: false: counted and reported, never denied (a shadow policy)", nil
	}
	return p, "", nil
}

// Document renders the policy as the document ParsePolicy reads (what is stored in etcd).
func (p Policy) Document() []byte {
	d := map[string]any{"kind": Kind, "name": p.Name}
	if p.Unlimited {
		d["rate"] = "unlimited"
	} else {
		d["rate"] = fmt.Sprintf("%d/%s", p.Limit.Count, unitOf(p.Limit.Period))
		d["burst"] = p.Limit.Burst
	}
	if p.Key != "" {
		d["key"] = p.Key
	}
	if p.Shadow {
		d["shadow"] = true
	}
	b, _ := yaml.Marshal(d)
	return b
}

func unitOf(d time.Duration) string {
	switch d {
	case time.Second:
		return "second"
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return d.String()
}

// Reader reads throttling policy documents for internal/definitions: Tollgate's policies
// and WSO2's policies file.
type Reader struct{}

// IsPolicy implements definitions.PolicyReader.
func (Reader) IsPolicy(data []byte) bool { return IsPolicy(data) }

// Parse implements definitions.PolicyReader.
func (Reader) Parse(data []byte) (definitions.Policy, error) {
	p, err := ParsePolicy(data)
	return definitions.Policy{Name: p.Name, Data: data}, err
}

// IsWSO2 implements definitions.PolicyReader.
func (Reader) IsWSO2(data []byte) bool { return IsWSO2Policies(data) }

// ParseWSO2 implements definitions.PolicyReader: each policy in Tollgate's form.
func (Reader) ParseWSO2(data []byte) ([]definitions.Policy, []string, error) {
	pols, warnings, err := ParseWSO2Policies(data)
	if err != nil {
		return nil, nil, err
	}
	out := make([]definitions.Policy, len(pols))
	for i, p := range pols {
		out[i] = definitions.Policy{Name: p.Name, Data: p.Document()}
	}
	return out, warnings, nil
}
