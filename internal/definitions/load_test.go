package definitions_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/definitions"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const api = `openapi: 3.0.3
info: {title: Shop, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
paths: {/items: {get: {responses: {"200": {description: ok}}}}}
`

// Load reads APIs, Tollgate policies and WSO2's policies file, several documents per file;
// a second definition of one name is a problem (the good ones are still returned).
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	multi := write(t, dir, "multi.yaml", api+"---\nkind: ThrottlingPolicy\nname: gold\nrate: 10/minute\n")
	wso2 := write(t, dir, "policies.yaml", "resourcePolicies:\n  - 3PerMin: {count: 3, unitTime: 1, timeUnit: min}\n")
	defs, report := definitions.Load([]string{multi, wso2}, ratelimit.Reader{})
	if !report.OK() || len(defs) != 3 {
		t.Fatalf("%d definitions, report %+v", len(defs), report)
	}
	if defs[0].API == nil || defs[0].API.ID() != "shop/v1" || defs[1].Policy.Name != "gold" || defs[2].Policy.Name != "3PerMin" {
		t.Errorf("definitions %+v", defs)
	}
	if !strings.Contains(defs[1].File, "(document 2)") || !strings.Contains(string(defs[2].Data), "ThrottlingPolicy") {
		t.Errorf("file %q, stored WSO2 policy %s", defs[1].File, defs[2].Data)
	}
	dup := write(t, dir, "dup.yaml", api)
	defs, report = definitions.Load([]string{multi, dup, filepath.Join(dir, "absent.yaml")}, ratelimit.Reader{})
	if report.OK() || len(defs) != 2 || len(report.Problems) != 2 || !strings.Contains(report.Problems[0], "API shop/v1 is also defined in") {
		t.Errorf("a duplicate and a missing file: %d definitions, %+v", len(defs), report.Problems)
	}
}

func TestStarterValidates(t *testing.T) {
	defs, report := definitions.LoadFrom([]string{"-"}, bytes.NewReader(definitions.Starter), ratelimit.Reader{})
	if !report.OK() || len(defs) != 1 || defs[0].API.ID() != "hello/v1" || len(defs[0].API.Operations) != 2 {
		t.Errorf("the starter: %v %+v", report, defs)
	}
}
