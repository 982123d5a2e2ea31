package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// corpus is the folder of real public OpenAPI descriptions beside the project (see its
// README). It is read in place, never copied.
const corpus = "../../shared/openapi"

// corpusDocs lists the root documents named in the corpus README's table.
func corpusDocs(t *testing.T) []string {
	b, err := os.ReadFile(filepath.Join(corpus, "README.md"))
	if err != nil {
		t.Skipf("the corpus of public descriptions is not here (%v)", err)
	}
	var docs []string
	row := regexp.MustCompile("^\\| [a-z0-9-]+ \\| [^|]+ \\| `([^`]+)` \\|")
	for _, line := range strings.Split(string(b), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			docs = append(docs, filepath.Join(corpus, m[1]))
		}
	}
	if len(docs) == 0 {
		t.Fatal("the corpus README lists no documents")
	}
	return docs
}

// docOp is an operation as the document states it, read here independently of the product
// (another YAML library, no OpenAPI library): its effective security alternatives, each a
// map of scheme name to scopes.
type docOp struct {
	method, path string
	security     []map[string][]string
	declared     bool // the document declares security for it (else: Tollgate's default)
}

type docReading struct {
	ops     []docOp
	schemes map[string]string // name → oauth2, openIdConnect, bearer, basic, apiKey, mutualTLS
}

func readJSONish(t *testing.T, path string) map[string]any {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j := b
	if !strings.HasSuffix(path, ".json") {
		if j, err = yaml.YAMLToJSON(b); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// deref follows an object's $ref (another file's, relative to dir, or the root's own).
func deref(t *testing.T, root map[string]any, dir string, v any) (any, string) {
	m, _ := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return v, dir
	}
	file, frag, _ := strings.Cut(ref, "#")
	doc := any(root)
	if file != "" {
		p := filepath.Join(dir, file)
		doc, dir = readJSONish(t, p), filepath.Dir(p)
	}
	for _, part := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if part != "" {
			doc = doc.(map[string]any)[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]
		}
	}
	return deref(t, root, dir, doc)
}

func readDoc(t *testing.T, path string) docReading {
	root := readJSONish(t, path)
	dir := filepath.Dir(path)
	r := docReading{schemes: map[string]string{}}
	defs := root["securityDefinitions"]
	if c, ok := root["components"].(map[string]any); ok {
		defs, _ = deref(t, root, dir, c["securitySchemes"])
	}
	defsMap, _ := defs.(map[string]any)
	for name, v := range defsMap {
		s, _ := deref(t, root, dir, v)
		sm := s.(map[string]any)
		kind, _ := sm["type"].(string)
		if kind == "http" {
			kind, _ = sm["scheme"].(string)
			kind = strings.ToLower(kind)
		}
		r.schemes[name] = kind
	}
	reqs := func(v any) []map[string][]string {
		var out []map[string][]string
		list, _ := v.([]any)
		for _, e := range list {
			alt := map[string][]string{}
			m, _ := e.(map[string]any)
			for name, scopes := range m {
				alt[name] = []string{}
				l, _ := scopes.([]any)
				for _, s := range l {
					alt[name] = append(alt[name], fmt.Sprint(s))
				}
			}
			out = append(out, alt)
		}
		return out
	}
	global, hasGlobal := root["security"]
	for p, item := range root["paths"].(map[string]any) {
		it, _ := deref(t, root, dir, item)
		for m, o := range it.(map[string]any) {
			if !slicesContains([]string{"get", "put", "post", "delete", "patch", "options", "head", "trace"}, m) {
				continue
			}
			op := o.(map[string]any)
			d := docOp{method: strings.ToUpper(m), path: p}
			switch sec, ok := op["security"]; {
			case ok:
				d.security, d.declared = reqs(sec), true
			case hasGlobal:
				d.security, d.declared = reqs(global), true
			}
			r.ops = append(r.ops, d)
		}
	}
	sort.Slice(r.ops, func(i, j int) bool {
		return r.ops[i].path+" "+r.ops[i].method < r.ops[j].path+" "+r.ops[j].method
	})
	return r
}

func slicesContains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// Every public description of the corpus (Swagger 2.0, OpenAPI 3.0 and 3.1; up to 3.5 MB;
// multi-file ones; with their own defects) goes through validate, is served by `tollgate
// run -f` (every operation a route over ADS, or named in a warning), and a few operations
// of each are decided by the security the document itself states: without credentials,
// with a token lacking the scopes, and with one that has them.
func TestRealPublicDescriptions(t *testing.T) {
	docs := corpusDocs(t)
	dir := t.TempDir()
	type api struct {
		doc, id, base string
		served        int
		reading       docReading
	}
	var apis []api
	run := []string{"run", "--dev"}
	okLine := regexp.MustCompile(`: ok: (\S+) at (\S+), (\d+) operations`)
	for _, doc := range docs {
		o := tollgate(t, "validate", "-f", doc)
		m := okLine.FindStringSubmatch(o.stdout)
		if o.code != 0 || m == nil {
			t.Errorf("%s: validate exit %d:\n%s%s", doc, o.code, o.stdout, o.stderr)
			continue
		}
		var served int
		fmt.Sscan(m[3], &served)
		r := readDoc(t, doc)
		// Each operation is served, or named in a warning that says why not.
		notServed := strings.Count(o.stderr, "served as that operation") + strings.Count(o.stderr, "so this operation is not served")
		if served+notServed != len(r.ops) {
			t.Errorf("%s: %d operations served and %d named in warnings; the document has %d:\n%s", doc, served, notServed, len(r.ops), o.stderr)
		}
		apis = append(apis, api{doc: doc, id: m[1], base: m[2], served: served, reading: r})
		run = append(run, "-f", doc)
	}
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	srv := startTollgate(t, append(run, "--config", cfg)...)
	select {
	case <-srv.up:
	case <-srv.done:
		t.Fatalf("tollgate run exited:\n%s", strings.Join(srv.stderr, "\n"))
	case <-time.After(60 * time.Second):
		t.Fatal("tollgate run did not come up in 60s")
	}
	waitReady(t, "http://"+p.admin+"/readyz")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	e := connectEnvoy(t, ctx, p.xds, "corpus")
	c := e.waitFor("every description's routes", 60*time.Second, func(c config) bool {
		for _, a := range apis {
			if countOps(c.Routes, a.id) != a.served {
				return false
			}
		}
		return true
	})
	routes := map[string]bool{}
	for _, r := range c.Routes {
		routes[r] = true
	}

	token := func(scopes []string) string {
		o := tollgate(t, "token", "--config", cfg, "--scope", strings.Join(scopes, " "))
		if o.code != 0 {
			t.Fatalf("token: %s", o.stderr)
		}
		return strings.TrimSpace(o.stdout)
	}
	anyToken := token([]string{"nothing-in-particular"})
	decide := func(a api, op docOp, bearer, want string) {
		path := a.base + regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(op.path, "x1")
		args := []string{"check", "--config", cfg, "--method", op.method, "--path", path, "--api", a.id, "--operation", op.method + " " + op.path}
		if bearer != "" {
			args = append(args, "-H", "Authorization: Bearer "+bearer)
		}
		o := tollgate(t, args...)
		if !strings.Contains(o.stdout, want) {
			t.Errorf("%s: %s %s (%v) with a token %v: want %s, got %s%s", filepath.Base(a.doc), op.method, op.path, op.security, bearer != "", want, firstLine(o.stdout), o.stderr)
		}
	}
	bearerKind := map[string]bool{"oauth2": true, "openIdConnect": true, "bearer": true}
	for _, a := range apis {
		decided := map[string]bool{}
		for _, op := range a.reading.ops {
			if !routes[a.id+" "+op.method+" "+op.path] {
				continue // merged with another (named in a warning)
			}
			open := op.declared && len(op.security) == 0 // security: [] opts out
			for _, alt := range op.security {
				open = open || len(alt) == 0
			}
			switch {
			case !op.declared && !decided["default"]:
				// No security stated anywhere: any valid token, as WSO2 gateways did.
				decided["default"] = true
				decide(a, op, "", "DENIED 401")
				decide(a, op, anyToken, "ALLOWED 200")
			case open && !decided["open"]:
				decided["open"] = true
				decide(a, op, "", "ALLOWED 200")
			case !open && op.declared && len(op.security) > 1 && !decided["alternatives"]:
				// Alternatives, none open: nothing presented is nothing proven.
				decided["alternatives"] = true
				decide(a, op, "", "DENIED 401")
			case !open && op.declared && len(op.security) == 1 && len(op.security[0]) == 1:
				for name, scopes := range op.security[0] {
					kind := a.reading.schemes[name]
					switch {
					case bearerKind[kind] && len(scopes) == 0 && !decided["bearer"]:
						decided["bearer"] = true
						decide(a, op, "", "DENIED 401")
						decide(a, op, anyToken, "ALLOWED 200")
					case bearerKind[kind] && len(scopes) > 0 && !decided["scoped"]:
						decided["scoped"] = true
						decide(a, op, "", "DENIED 401")
						decide(a, op, anyToken, "DENIED 403")
						decide(a, op, token(scopes), "ALLOWED 200")
					case (kind == "apiKey" || kind == "basic") && !decided[kind]:
						decided[kind] = true
						decide(a, op, "", "DENIED 401")
						decide(a, op, anyToken, "DENIED 401")
					}
				}
			}
		}
		if len(decided) == 0 {
			t.Errorf("%s: no operation was decided", a.doc)
		}
		t.Logf("%s: %s at %s, %d operations served; decided: %v", filepath.Base(a.doc), a.id, a.base, a.served, decided)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
