package test

import (
	"os/exec"
	"strings"
	"testing"
)

// Arrows point down: internal/ is the ground floor that the enforcer (extauthz), the control
// plane (xds) and the policies stand on, so no package under it imports one of them; the
// composition root that wires them together lives with the command (cmd/tollgate/internal).
func TestInternalImportsNothingAboveIt(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "../internal/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const module = "github.com/tollgate-gw/tollgate/"
	packages := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		packages++
		for _, imp := range fields[1:] {
			rest, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			for _, upper := range []string{"extauthz", "xds", "policies", "cmd"} {
				if rest == upper || strings.HasPrefix(rest, upper+"/") {
					t.Errorf("%s imports %s", fields[0], imp)
				}
			}
		}
	}
	if packages < 10 {
		t.Fatalf("go list found %d packages under internal/", packages)
	}
}
