package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// commandPaths are every command and verb the binary has, as its own completion lists them
// (so a new command is covered without editing this test).
func commandPaths(t *testing.T, prefix ...string) [][]string {
	t.Helper()
	o := tollgate(t, append(append([]string{"__complete"}, prefix...), "")...)
	var out [][]string
	for _, line := range strings.Split(o.stdout, "\n") {
		name, _, _ := strings.Cut(line, "\t")
		if name == "" || strings.HasPrefix(name, ":") || strings.HasPrefix(name, "-") {
			continue
		}
		path := append(append([]string(nil), prefix...), name)
		out = append(out, path)
		if name != "help" {
			out = append(out, commandPaths(t, path...)...)
		}
	}
	return out
}

// Every command and verb: --help, -h and `help CMD` print the same help on stdout and exit
// 0; ours carry a long description and examples; an unknown flag is a usage error (exit 2,
// the error and the usage on stderr).
func TestEveryCommandHasHelpAndRefusesUnknownFlags(t *testing.T) {
	paths := commandPaths(t)
	if len(paths) < 20 {
		t.Fatalf("only %d commands listed: %v", len(paths), paths)
	}
	seen := map[string]bool{}
	for _, p := range paths {
		name := strings.Join(p, " ")
		seen[name] = true
		help := tollgate(t, append(p, "--help")...)
		if help.code != 0 || help.stderr != "" || !strings.Contains(help.stdout, "Usage:") {
			t.Errorf("%s --help: exit %d, stderr %q, stdout %.100q", name, help.code, help.stderr, help.stdout)
			continue
		}
		if h := tollgate(t, append(p, "-h")...); h.code != 0 || h.stdout != help.stdout {
			t.Errorf("%s -h differs from --help (exit %d)", name, h.code)
		}
		if p[0] != "help" {
			if h := tollgate(t, append([]string{"help"}, p...)...); h.code != 0 || h.stdout != help.stdout {
				t.Errorf("help %s differs from %s --help (exit %d)", name, name, h.code)
			}
		}
		ours := p[0] != "completion" && p[0] != "help"
		if ours {
			desc, _, _ := strings.Cut(help.stdout, "Usage:")
			if len(strings.Fields(desc)) < 8 {
				t.Errorf("%s --help has no description: %q", name, desc)
			}
			if !strings.Contains(help.stdout, "Examples:\n  tollgate ") && !strings.Contains(help.stdout, "Examples:\n  TOKEN=") {
				t.Errorf("%s --help has no example:\n%s", name, help.stdout)
			}
		}
		if p[0] == "help" {
			continue
		}
		bad := tollgate(t, append(p, "--no-such-flag")...)
		if bad.code != 2 || !strings.Contains(bad.stderr, "unknown flag: --no-such-flag") || !strings.Contains(bad.stderr, "Usage:") {
			t.Errorf("%s --no-such-flag: exit %d, stderr %q", name, bad.code, bad.stderr)
		}
	}
	for _, want := range []string{"run", "authz", "xds", "apikey create", "apikey list", "apikey revoke", "user put", "user delete",
		"endpoints set", "endpoints get", "endpoints delete", "secret put", "secret delete", "validate", "apply", "token", "check",
		"bootstrap", "revoke", "hash", "version", "completion bash"} {
		if !seen[want] {
			t.Errorf("no command %q", want)
		}
	}
}

// Usage errors exit 2 and say what is wrong: an unknown command, a group without a verb or
// with an unknown one, a verb's flag given to another verb, a wrong number of arguments,
// nothing at all.
func TestUsageErrorsExit2(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"apikey"}, "tollgate apikey needs a verb"},
		{[]string{"apikey", "rotate"}, `unknown command "rotate" for "tollgate apikey"`},
		{[]string{"apikey", "list", "--ttl", "1h"}, "unknown flag: --ttl"},
		{[]string{"apikey", "revoke"}, "takes 1 argument(s), got 0"},
		{[]string{"endpoints", "set", "orders"}, "takes at least 2 argument(s), got 1"},
		{[]string{"token", "extra"}, "takes no arguments"},
		{[]string{"validate"}, "no definition given"},
		{[]string{"version", "-o", "xml"}, `-o "xml": want text or json`},
		{nil, "Usage:"},
	} {
		o := tollgate(t, c.args...)
		if o.code != 2 || !strings.Contains(o.stderr, c.want) || !strings.Contains(o.stderr, "Usage:") {
			t.Errorf("tollgate %v: exit %d, stderr %q; want exit 2 with %q and the usage", c.args, o.code, o.stderr, c.want)
		}
	}
	// Flags anywhere on the line: before, between and after the arguments.
	dir := t.TempDir()
	f := write(t, dir, "a.yaml", `openapi: 3.0.3
info: {title: a, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:8081]
paths: {/x: {get: {security: [{}], responses: {"200": {description: ok}}}}}
`)
	absent := filepath.Join(dir, "absent.yaml")
	for _, args := range [][]string{
		{"apply", "--config", absent, f},
		{"apply", f, "--config", absent},
		{"apply", "-f", f, "--config", absent, "--etcd", "127.0.0.1:1"},
	} {
		if o := tollgate(t, args...); o.code != 1 || !strings.Contains(o.stderr, "absent.yaml") {
			t.Errorf("tollgate %v: exit %d, %q; want the absent configuration reported", args, o.code, o.stderr)
		}
	}
}

// The bash completion script loads into bash and registers tollgate; zsh's and fish's are
// printed.
func TestCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed for the completion test")
	}
	out, err := exec.Command("bash", "-c", "source <("+binary+" completion bash) && complete -p tollgate").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "tollgate") {
		t.Fatalf("bash completion: %v\n%s", err, out)
	}
	for shell, want := range map[string]string{"zsh": "#compdef tollgate", "fish": "complete -c tollgate"} {
		if o := tollgate(t, "completion", shell); o.code != 0 || !strings.Contains(o.stdout, want) {
			t.Errorf("completion %s: exit %d, %.200q", shell, o.code, o.stdout)
		}
	}
	// It completes verbs and flags from the binary itself.
	if o := tollgate(t, "__complete", "apikey", "cr"); !strings.Contains(o.stdout, "create") {
		t.Errorf("completing `apikey cr`: %q", o.stdout)
	}
}

// version prints the module version, the VCS revision it was built from (the checkout's
// HEAD) and the Go version, as text and as JSON.
func TestVersion(t *testing.T) {
	o := tollgate(t, "version", "-o", "json")
	var v struct{ Version, Revision, Time, GoVersion string }
	if o.code != 0 || json.Unmarshal([]byte(o.stdout), &v) != nil || v.Version == "" || !strings.HasPrefix(v.GoVersion, "go") {
		t.Fatalf("version -o json: exit %d, %q", o.code, o.stdout)
	}
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		if v.Revision != strings.TrimSpace(string(head)) || v.Time == "" {
			t.Errorf("revision %q (%s), want the checkout's HEAD %s", v.Revision, v.Time, head)
		}
	} else {
		t.Logf("no git checkout: revision %q not compared", v.Revision)
	}
	text := tollgate(t, "version")
	if text.code != 0 || !strings.Contains(text.stdout, "tollgate "+v.Version) || !strings.Contains(text.stdout, v.GoVersion) ||
		(v.Revision != "" && !strings.Contains(text.stdout, v.Revision)) {
		t.Errorf("version: %q", text.stdout)
	}
}

// The configuration is --config, else $TOLLGATE_CONFIG, else ./tollgate.yaml, else the
// defaults — seen through bootstrap, which prints the xds.listen it read.
func TestConfigLookupOrder(t *testing.T) {
	dir := t.TempDir()
	flagCfg := write(t, dir, "flag.yaml", "xds: {listen: 127.0.0.1:11001}\n")
	envCfg := write(t, dir, "env.yaml", "xds: {listen: 127.0.0.1:11002}\n")
	write(t, dir, "tollgate.yaml", "xds: {listen: 127.0.0.1:11003}\n")
	empty := t.TempDir()
	run := func(cwd, env string, args ...string) string {
		cmd := exec.Command(binary, append([]string{"bootstrap", "--node-id", "e"}, args...)...)
		cmd.Dir = cwd
		cmd.Env = append(os.Environ(), "TOLLGATE_CONFIG="+env)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bootstrap in %s (TOLLGATE_CONFIG=%q) %v: %v", cwd, env, args, err)
		}
		for _, port := range []string{"11001", "11002", "11003", "18000"} {
			if strings.Contains(string(out), "port_value: "+port) {
				return port
			}
		}
		t.Fatalf("no known xds port in:\n%s", out)
		return ""
	}
	for _, c := range []struct {
		cwd, env string
		args     []string
		want     string
	}{
		{dir, envCfg, []string{"--config", flagCfg}, "11001"},
		{dir, envCfg, nil, "11002"},
		{dir, "", nil, "11003"},
		{empty, "", nil, "18000"},
	} {
		if got := run(c.cwd, c.env, c.args...); got != c.want {
			t.Errorf("in %s, TOLLGATE_CONFIG=%q, %v: xds port %s, want %s", c.cwd, c.env, c.args, got, c.want)
		}
	}
}

// init writes the configuration reference (the README's, every field with its default)
// and a starter definition; both are accepted as written; a second init leaves them alone.
func TestInitOutputIsValid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gw")
	if o := tollgate(t, "init", dir); o.code != 0 || !strings.Contains(o.stdout, "wrote "+filepath.Join(dir, "tollgate.yaml")) {
		t.Fatalf("init: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "tollgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	readme, _ := os.ReadFile("../README.md")
	if !strings.Contains(string(readme), "```yaml\n"+string(cfg)+"```") {
		t.Error("init's tollgate.yaml is not the README's configuration reference")
	}
	if o := tollgate(t, "validate", "-f", filepath.Join(dir, "api.yaml")); o.code != 0 || !strings.Contains(o.stdout, "ok: hello/v1") {
		t.Errorf("the starter definition: exit %d %s %s", o.code, o.stdout, o.stderr)
	}
	// Commands run in the directory find its tollgate.yaml (strictly decoded: every field
	// it writes is one the configuration has).
	cmd := exec.Command(binary, "bootstrap", "--node-id", "e")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "port_value: 18000") {
		t.Errorf("bootstrap with init's configuration: %v\n%s", err, b)
	}
	write(t, dir, "api.yaml", "mine")
	if o := tollgate(t, "init", dir); o.code != 1 || !strings.Contains(o.stderr, "exists") {
		t.Errorf("a second init: exit %d %q", o.code, o.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "api.yaml")); string(b) != "mine" {
		t.Error("a second init overwrote a file")
	}
	if o := tollgate(t, "init", dir, "--force"); o.code != 0 {
		t.Errorf("init --force: exit %d %s", o.code, o.stderr)
	}
}

// A release build (make release, the Dockerfile) stamps its version into the binary; the
// version command and tollgate_build_info say it.
func TestReleaseVersionIsStamped(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tollgate")
	build := exec.Command("go", "build", "-ldflags", "-X github.com/tollgate-gw/tollgate/internal/buildinfo.version=v9.8.7-test", "-o", bin, "../cmd/tollgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	var v struct{ Version string }
	if err != nil || json.Unmarshal(out, &v) != nil || v.Version != "v9.8.7-test" {
		t.Errorf("a stamped build says %q (%v)", out, err)
	}
}
