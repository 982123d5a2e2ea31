package extauthz

import "testing"

// The enforcer's path matching sees what Envoy routes after normalize_path, merge_slashes
// and the escaped-slash unescaping that the generated listeners turn on.
func TestPathsAreNormalizedLikeEnvoys(t *testing.T) {
	for in, want := range map[string]string{
		"/coffeebar/v1/menu":              "/coffeebar/v1/menu",
		"/coffeebar//v1///menu":           "/coffeebar/v1/menu",
		"/coffeebar/v1/staff/../menu":     "/coffeebar/v1/menu",
		"/coffeebar/./v1/menu":            "/coffeebar/v1/menu",
		"/coffeebar/v1/menu%2F..%2Fstaff": "/coffeebar/v1/staff",
		"/coffeebar%5Cv1%5cmenu":          "/coffeebar/v1/menu",
		"/../../etc/passwd":               "/etc/passwd",
		"/coffeebar/v1/menu/":             "/coffeebar/v1/menu/",
		"/coffeebar/v1/menu/.":            "/coffeebar/v1/menu/",
	} {
		if got := normalizePath(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
