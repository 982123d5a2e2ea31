package buildinfo

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestReadAndMetric(t *testing.T) {
	i := Read()
	if i.GoVersion != runtime.Version() || i.Version == "" {
		t.Errorf("build info %+v", i)
	}
	reg := prometheus.NewRegistry()
	Register(reg)
	want := `# HELP tollgate_build_info The running build: module version, VCS revision and Go version (always 1).
# TYPE tollgate_build_info gauge
tollgate_build_info{goversion="` + i.GoVersion + `",revision="` + i.Revision + `",version="` + i.Version + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tollgate_build_info"); err != nil {
		t.Error(err)
	}
}
