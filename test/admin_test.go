package test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The profiler is off unless admin.profiling says so; on, it serves pprof's index and a
// CPU profile over the admin port.
func TestAdminProfilingIsOptIn(t *testing.T) {
	for _, on := range []bool{false, true} {
		dir := t.TempDir()
		p := newPorts(t)
		extra := ""
		if on {
			extra = ", profiling: true"
		}
		srv := startTollgate(t, "run", "--config", serverConfig(t, dir, "tollgate.yaml", p, "", extra))
		srv.waitUp()
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=0.2"} {
			resp, err := http.Get("http://" + p.admin + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case !on && resp.StatusCode != http.StatusNotFound:
				t.Errorf("profiling off: GET %s = %d, want 404", path, resp.StatusCode)
			case on && (resp.StatusCode != http.StatusOK || len(body) == 0):
				t.Errorf("profiling on: GET %s = %d with %d bytes", path, resp.StatusCode, len(body))
			case on && path == "/debug/pprof/" && !strings.Contains(string(body), "goroutine"):
				t.Errorf("profiling on: the index lists no goroutine profile: %.200s", body)
			}
		}
		srv.stop()
	}
}
