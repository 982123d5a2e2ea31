package test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

type metricDoc struct {
	kind   string
	labels []string
}

// readmeMetrics reads the README's metrics table.
func readmeMetrics(t *testing.T) map[string]metricDoc {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Metrics\n")
	if !ok {
		t.Fatal("no Metrics section in the README")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `(tollgate_[a-z0-9_]+)` \\| ([a-z]+) \\|([^|]*)\\|")
	out := map[string]metricDoc{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		sort.Strings(labels)
		out[m[1]] = metricDoc{m[2], labels}
	}
	if len(out) < 30 {
		t.Fatalf("only %d families read from the README's metrics table", len(out))
	}
	return out
}

// The README's metrics table is what the code registers — every family, none more — and
// what a running `tollgate run` exposes matches it in type and labels.
func TestMetricsTable(t *testing.T) {
	doc := readmeMetrics(t)

	// What the code registers: every metric name in a Name: or NewDesc of the product.
	registered := map[string]bool{}
	name := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*)"(tollgate_[a-z0-9_]+)"`)
	filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "test" || strings.HasPrefix(d.Name(), ".")) && p != ".." {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllStringSubmatch(string(b), -1) {
			registered[m[1]] = true
		}
		return nil
	})
	if len(registered) < 30 {
		t.Fatalf("only %d metric names found in the code", len(registered))
	}
	for n := range registered {
		if _, ok := doc[n]; !ok {
			t.Errorf("%s is registered but not in the README's metrics table", n)
		}
	}
	for n := range doc {
		if !registered[n] {
			t.Errorf("the README's metrics table lists %s, which nothing registers", n)
		}
	}

	// What a running server exposes, after some decisions.
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", "../examples/coffeebar/coffeebar.yaml")
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	token := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "read:menu").stdout)
	tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/menu", "-H", "Authorization: Bearer "+token)
	tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/menu")
	body := get(t, "http://"+p.admin+"/metrics")
	types := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (tollgate_[a-z0-9_]+) ([a-z]+)$`).FindAllStringSubmatch(body, -1) {
		types[m[1]] = m[2]
	}
	if len(types) < 20 || types["tollgate_decisions_total"] == "" {
		t.Fatalf("only %d families exposed: %v", len(types), types)
	}
	for fam, kind := range types {
		d, ok := doc[fam]
		if !ok {
			t.Errorf("%s is exposed but not in the README's metrics table", fam)
			continue
		}
		if d.kind != kind {
			t.Errorf("%s is a %s, the README says %s", fam, kind, d.kind)
		}
	}
	sample := regexp.MustCompile(`(?m)^(tollgate_[a-z0-9_]+?)(_bucket|_sum|_count)?(\{([^}]*)\})? `)
	for _, m := range sample.FindAllStringSubmatch(body, -1) {
		fam := m[1]
		if _, ok := types[fam]; !ok {
			fam += m[2] // a counter or gauge whose name ends in _count or _sum
		}
		var labels []string
		for _, kv := range regexp.MustCompile(`([a-z_]+)="`).FindAllStringSubmatch(m[4], -1) {
			if kv[1] != "le" {
				labels = append(labels, kv[1])
			}
		}
		sort.Strings(labels)
		if d, ok := doc[fam]; ok && strings.Join(labels, ",") != strings.Join(d.labels, ",") {
			t.Errorf("%s has labels %v, the README says %v", fam, labels, d.labels)
		}
	}
}
