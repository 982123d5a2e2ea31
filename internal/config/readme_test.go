package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"
)

// The configuration reference (internal/config/reference.yaml, which the README shows and
// tollgate init writes) is the defaults, field for field: a field missing from it,
// misspelt, or with another value than the code's default fails here.
func TestREADMEConfigurationReferenceIsTheDefaults(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Configuration reference.*?```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("no yaml block under the configuration reference")
	}
	if string(m[1]) != string(Reference) {
		t.Errorf("the README's configuration reference is not internal/config/reference.yaml (what tollgate init writes); copy one to the other")
	}
	m[1] = Reference
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(path, m[1], 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatalf("the README's configuration does not load: %v", err)
	}
	// Every field is written out, not left to its default.
	var written map[string]any
	j, err := yaml.YAMLToJSON(m[1])
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(j, &written)
	b, _ := json.Marshal(Default())
	var all map[string]any
	json.Unmarshal(b, &all)
	for _, missing := range missingKeys(all, written, "") {
		t.Errorf("the README's configuration reference lacks %s", missing)
	}
	g, w := plain(t, got), plain(t, Default())
	for k := range w {
		if !reflect.DeepEqual(g[k], w[k]) {
			t.Errorf("%s: README %v\ncode   %v", k, g[k], w[k])
		}
	}
}

// plain is c as JSON values, with empty lists and maps dropped (the README writes [] and {}
// where the code leaves nil).
func plain(t *testing.T, c Config) map[string]any {
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return prune(m).(map[string]any)
}

func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if p := prune(e); p == nil {
				delete(x, k)
			} else {
				x[k] = p
			}
		}
		if len(x) == 0 {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

// missingKeys lists the paths of want's keys that have lacks.
func missingKeys(want, have map[string]any, at string) []string {
	var out []string
	for k, v := range want {
		h, ok := have[k]
		if !ok {
			out = append(out, at+k)
			continue
		}
		if wm, ok := v.(map[string]any); ok {
			hm, _ := h.(map[string]any)
			out = append(out, missingKeys(wm, hm, at+k+".")...)
		}
	}
	return out
}
