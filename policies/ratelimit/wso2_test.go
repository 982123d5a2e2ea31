package ratelimit

import (
	"strings"
	"testing"
	"time"
)

func TestWSO2PoliciesFile(t *testing.T) {
	const file = `resourcePolicies:
  - 2PerMin: {count: 2, unitTime: 1, timeUnit: min}
  - 5Per2Sec: {count: 5, unitTime: 2, timeUnit: sec}
applicationPolicies:
  - AppHour: {count: 100, unitTime: 1, timeUnit: hour}
subscriptionPolicies:
  - Lenient: {count: 10, unitTime: 1, timeUnit: min, stopOnQuota: false}
  - Everything: {count: 2147483647, unitTime: 1, timeUnit: min}
`
	if !IsWSO2Policies([]byte(file)) || IsWSO2Policies([]byte("kind: ThrottlingPolicy\nname: x\nrate: 1/s\n")) {
		t.Fatal("IsWSO2Policies")
	}
	pols, warnings, err := ParseWSO2Policies([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Policy{}
	for _, p := range pols {
		got[p.Name] = p
		// What is stored reads back as the same policy.
		back, err := ParsePolicy(p.Document())
		if err != nil || back != p {
			t.Errorf("%s stored as %s reads back as %+v (%v)", p.Name, p.Document(), back, err)
		}
	}
	if p := got["2PerMin"]; p.Limit != (Limit{Count: 2, Period: time.Minute, Burst: 2}) {
		t.Errorf("2PerMin: %+v", p)
	}
	if p := got["5Per2Sec"]; p.Limit != (Limit{Count: 5, Period: 2 * time.Second, Burst: 5}) {
		t.Errorf("5Per2Sec: %+v", p)
	}
	if !got["Everything"].Unlimited || !got["Lenient"].Shadow || len(warnings) != 1 || !strings.Contains(warnings[0], "stopOnQuota") {
		t.Errorf("unlimited/shadow: %+v %+v %v", got["Everything"], got["Lenient"], warnings)
	}
	for bad, want := range map[string]string{
		"resourcePolicies:\n  - X: {count: 1, unitTime: 1, timeUnit: fortnight}\n":                                                                "timeUnit",
		"resourcePolicies:\n  - X: {count: 0, unitTime: 1, timeUnit: min}\n":                                                                      "positive",
		"resourcePolicies:\n  - X: {count: 1, unitTime: 1, timeUnit: min, burst: 2}\n":                                                            "unknown field",
		"resourcePolicies:\n  - X: {count: 1, unitTime: 1, timeUnit: min}\napplicationPolicies:\n  - X: {count: 2, unitTime: 1, timeUnit: min}\n": "defined again",
	} {
		if _, _, err := ParseWSO2Policies([]byte(bad)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", bad, err, want)
		}
	}
}
