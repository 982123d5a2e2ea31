package store

import "testing"

// ParseDiscovery remembers what it read, and a caller that changes what it was given does
// not change what the next caller gets.
func TestParseDiscoveryRemembersWithoutSharing(t *testing.T) {
	raw := `["http://10.0.0.1:80", {"url": "http://10.0.0.2:80", "weight": 3}]`
	a, err := ParseDiscovery(raw)
	if err != nil || len(a) != 2 {
		t.Fatal(a, err)
	}
	a[0].Host = "changed"
	b, _ := ParseDiscovery(raw)
	if b[0].Host != "10.0.0.1" || b[1].Weight != 3 {
		t.Errorf("the second read got %+v", b)
	}
	if _, err := ParseDiscovery("not a url"); err == nil {
		t.Error("an unusable value parsed")
	}
	if _, err := ParseDiscovery("not a url"); err == nil {
		t.Error("an unusable value parsed the second time")
	}
}
