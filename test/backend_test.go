package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/definitions"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// The example backend (examples/backend) answers every operation of every example, on the
// ports the examples name, echoing what it received — so the README's tour through Envoy
// has something at the end of every route. Also the starter API `tollgate init` writes.
func TestExampleBackendAnswersEveryExample(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "backend")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/backend").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/backend: %v\n%s", err, out)
	}
	backend := exec.Command(bin)
	stdout, _ := backend.StdoutPipe()
	if err := backend.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Process.Kill(); backend.Wait() })
	listening := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for len(listening) < 7 && sc.Scan() {
		if m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			listening[m[1]] = true
		}
	}
	go io.Copy(io.Discard, stdout)
	if len(listening) < 7 {
		t.Fatalf("the backend listens on %v, want the examples' seven ports", listening)
	}

	if o := tollgate(t, "init", filepath.Join(dir, "starter")); o.code != 0 {
		t.Fatalf("init: %s", o.stderr)
	}
	files, _ := filepath.Glob("../examples/*/*.yaml")
	files = append(files, filepath.Join(dir, "starter", "api.yaml"))
	var paths []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".cases.yaml") && isAPIExample(filepath.Dir(f)) {
			paths = append(paths, f)
		}
	}
	defs, report := definitions.Load(paths, ratelimit.Reader{})
	if !report.OK() {
		t.Fatalf("the examples do not load: %v", report.Problems)
	}
	calls := 0
	for _, d := range defs {
		if d.API == nil {
			continue
		}
		for i := range d.API.Operations {
			op := &d.API.Operations[i]
			for _, eps := range []apimodel.Endpoints{pick(op.Production, d.API.Production), pick(op.Sandbox, d.API.Sandbox)} {
				for _, ep := range eps.URLs {
					calls++
					call(t, d.API.ID()+" "+op.Key(), op.Method, ep.URL, op.Path)
				}
			}
		}
	}
	if calls < 20 {
		t.Errorf("only %d operations called: the examples were not walked", calls)
	}
	// Trouble on request: a status and a delay.
	resp, err := http.Get("http://127.0.0.1:8081/coffeebar/menu?status=503&delay=200ms")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("?status=503: %d", resp.StatusCode)
	}
	for _, port := range []string{"8081", "8087"} {
		if resp, err := http.Get("http://127.0.0.1:" + port + "/healthz"); err != nil || resp.StatusCode != 200 {
			t.Errorf("health on %s: %v %v", port, resp, err)
		}
	}
}

func pick(op, api apimodel.Endpoints) apimodel.Endpoints {
	if len(op.URLs) > 0 {
		return op
	}
	return api
}

// call sends one operation's request to one endpoint URL, as Envoy would after its route
// (the endpoint's path, then the operation's, path parameters filled), and checks the echo.
func call(t *testing.T, what, method, endpoint, path string) {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatalf("%s: endpoint %q: %v", what, endpoint, err)
	}
	want := strings.TrimSuffix(u.Path, "/") + regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "42")
	req, _ := http.NewRequest(method, u.Scheme+"://"+u.Host+want+"?from=test", strings.NewReader(`{"x":1}`))
	req.Header.Set("X-User", "alice")
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("%s at %s: %v", what, endpoint, err)
		return
	}
	defer resp.Body.Close()
	var echo struct {
		Method, Path, Port string
		Query              map[string][]string
		Headers            map[string]string
	}
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil || resp.StatusCode != 200 {
		t.Errorf("%s at %s: %d %v", what, endpoint, resp.StatusCode, err)
		return
	}
	if echo.Method != method || echo.Path != want || echo.Port != u.Port() || echo.Headers["x-user"] != "alice" || fmt.Sprint(echo.Query["from"]) != "[test]" {
		t.Errorf("%s at %s: echo %+v, want %s %s on port %s", what, endpoint, echo, method, want, u.Port())
	}
}
