package build

import (
	"testing"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// An API is keyed by its base path's first segment only when every request it serves
// starts with that segment followed by "/" (or ends there with no query).
func TestScopeKey(t *testing.T) {
	op := func(paths ...string) []apimodel.Operation {
		var out []apimodel.Operation
		for _, p := range paths {
			out = append(out, apimodel.Operation{Method: "GET", Path: p})
		}
		return out
	}
	for _, c := range []struct {
		base string
		ops  []apimodel.Operation
		want string
	}{
		{"/shop/v1", op("/items", "/"), "shop"}, // "/shop/v1?x" is still keyed "shop"
		{"/shop", op("/items", "/items/{id}"), "shop"},
		{"/shop", op("/items", "/"), ""}, // "/shop?page=2"
		{"/shop", op("/*"), ""},          // the wildcard answers on /shop too
		{"/", op("/pets"), ""},           // a root API's requests start anywhere
		{"/{tenant}/orders", op("/x"), ""},
		{"/shop/{version}", op("/x"), "shop"},
	} {
		a := &apimodel.API{BasePath: c.base, Operations: c.ops}
		if got := scopeKey(a); got != c.want {
			t.Errorf("base %s: key %q, want %q", c.base, got, c.want)
		}
	}
	for path, want := range map[string]string{"/shop/v1/items?x=1": "shop", "/shop?page=2": "shop?page=2", "/": "", "/shop": "shop"} {
		if got := ScopeOf(path); got != want {
			t.Errorf("ScopeOf(%q) = %q, want %q", path, got, want)
		}
	}
}
