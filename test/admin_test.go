package test

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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

// The start-up banner's hints work as printed for an instance on non-default ports with its
// own data directory: the token they mint is accepted by the check they give.
func TestBannerHintsReachThisInstance(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "tollgate.yaml", p, "")
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "--data-dir", filepath.Join(dir, "elsewhere"), "-f", "../examples/coffeebar/coffeebar.yaml")
	srv.waitUp()
	time.Sleep(200 * time.Millisecond) // the banner's last lines
	srv.mu.Lock()
	banner := strings.Join(srv.stdout, "\n")
	srv.mu.Unlock()
	tokenLine := regexp.MustCompile(`TOKEN=\$\((.*)\)`).FindStringSubmatch(banner)
	checkLine := regexp.MustCompile(`(?m)^\s+(\S+ check .*)$`).FindStringSubmatch(banner)
	if tokenLine == nil || checkLine == nil {
		t.Fatalf("no token or check hint in the banner:\n%s", banner)
	}
	if !strings.Contains(tokenLine[1], "--config "+cfg) || !strings.Contains(tokenLine[1], "--data-dir") {
		t.Errorf("the token hint does not name this instance's configuration and data directory: %s", tokenLine[1])
	}
	waitReady(t, "http://"+p.admin+"/readyz")
	tok, err := exec.Command("bash", "-c", tokenLine[1]).Output()
	if err != nil {
		t.Fatalf("%s: %v", tokenLine[1], err)
	}
	check := exec.Command("bash", "-c", checkLine[1])
	check.Env = append(os.Environ(), "TOKEN="+strings.TrimSpace(string(tok)))
	out, err := check.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ALLOWED 200") {
		t.Errorf("%s: %v\n%s", checkLine[1], err, out)
	}
	// The admin port says which build this is.
	if m := get(t, "http://"+p.admin+"/metrics"); !regexp.MustCompile(`tollgate_build_info\{goversion="go[^"]+",revision="[^"]*",version="[^"]+"\} 1`).MatchString(m) {
		t.Errorf("no tollgate_build_info in /metrics")
	}
}
