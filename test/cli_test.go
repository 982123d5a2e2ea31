// Package test holds black-box tests of the built tollgate binary: the commands a user
// types, on real ports, with the embedded etcd.
package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/xds/build"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tollgate-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tollgate")
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", binary, "../cmd/tollgate") // as `make build`
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tollgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type out struct {
	stdout, stderr string
	code           int
}

func tollgate(t *testing.T, args ...string) out {
	t.Helper()
	return stdin(t, "", args...)
}

// stdin runs the binary with standard input.
func stdin(t *testing.T, in string, args ...string) out {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(in)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	o := out{stdout: so.String(), stderr: se.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		o.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o
}

// write writes content at name (slash-separated, its folders made) below dir.
func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `openapi: 3.0.3
info: {title: Shop, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
paths:
  /items: {get: {security: [{}], responses: {"200": {description: ok}}}}
`

func TestValidateReportsEveryProblemWithFileAndPath(t *testing.T) {
	dir := t.TempDir()
	badYAML := write(t, dir, "bad-yaml.yaml", "openapi: 3.0.3\ninfo: [\n")
	badExt := write(t, dir, "bad-ext.yaml", "openapi: 3.0.3\ninfo: {title: A, version: v1}\nx-wso2-production-endpoints: 42\npaths:\n  /a: {get: {responses: {\"200\": {description: ok}}}}\n")
	dupOp := write(t, dir, "dup.yaml", good+"  /items/{a}: {get: {responses: {\"200\": {description: ok}}}}\n  /items/{b}: {get: {security: [{}], responses: {\"200\": {description: ok}}}}\n")
	badTmpl := write(t, dir, "tmpl.yaml", good+"  /items/{id: {get: {responses: {\"200\": {description: ok}}}}\n")
	ok := write(t, dir, "ok.yaml", good)

	o := tollgate(t, "validate", "-f", badYAML, "-f", badExt, dupOp, badTmpl, ok)
	if o.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", o.code, o.stdout, o.stderr)
	}
	for _, want := range []string{
		badYAML + ": $: line 2: did not find expected node content",
		badExt + ": $.x-wso2-production-endpoints: must be an endpoint object",
		dupOp + ": $.paths['/items/{b}'].get: duplicate operation",
		badTmpl + ": $.paths['/items/{id']: ",
	} {
		if !strings.Contains(o.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, o.stderr)
		}
	}
	if !strings.Contains(o.stdout, ok+": ok: shop/v1") {
		t.Errorf("stdout: %s", o.stdout)
	}
	if o := tollgate(t, "validate", ok); o.code != 0 {
		t.Errorf("a good file: exit %d %s", o.code, o.stderr)
	}
}

// The README tour, end to end: run --dev with the examples, mint a token, check, change a
// definition live, and see a broken apply refused with the good one still in force.
func TestTour(t *testing.T) {
	dir := t.TempDir()
	authz, adm, etcdC, xdsAddr := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	cfg := write(t, dir, "tollgate.yaml", fmt.Sprintf(`dataDir: %s
etcd:
  embeddedClientAddr: %s
  embeddedPeerAddr: %s
authz:
  listen: %s
  claimHeaders: {sub: x-user}
xds:
  listen: %s
admin:
  listen: %s
log:
  level: warn
`, filepath.Join(dir, "data"), etcdC, testutil.FreeAddr(t), authz, xdsAddr, adm))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	run := exec.CommandContext(ctx, binary, "run", "--dev", "--config", cfg, "-f", "../examples/coffeebar/coffeebar.yaml", "-f", "../examples/coffeebar/orders-per-user.yaml")
	stdout, _ := run.StdoutPipe()
	run.Stderr = io.Discard
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); run.Wait() }()
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Tollgate is up") {
				up <- true
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(60 * time.Second):
		t.Fatal("tollgate run did not come up")
	}
	waitReady(t, "http://"+adm+"/readyz")

	tok := tollgate(t, "token", "--config", cfg, "--scope", "read:menu")
	if tok.code != 0 {
		t.Fatalf("token: %s", tok.stderr)
	}
	bearer := "Authorization: Bearer " + strings.TrimSpace(tok.stdout)
	o := tollgate(t, "check", "--config", cfg, "--method", "GET", "--path", "/coffeebar/v1/menu", "-H", bearer)
	if o.code != 0 || !strings.Contains(o.stdout, "ALLOWED 200") || !strings.Contains(o.stdout, "x-user: dev-user") {
		t.Fatalf("check GET /menu: exit %d\n%s%s", o.code, o.stdout, o.stderr)
	}
	o = tollgate(t, "check", "--config", cfg, "--method", "POST", "--path", "/coffeebar/v1/menu", "-H", bearer)
	if o.code != 3 || !strings.Contains(o.stdout, "DENIED 403") || !strings.Contains(o.stdout, `"code":900910`) {
		t.Fatalf("check POST /menu: exit %d\n%s", o.code, o.stdout)
	}

	// Throttling: the example policy lets a user place 3 orders at once, then 429.
	orders := tollgate(t, "token", "--config", cfg, "--scope", "write:order", "--sub", "hungry")
	ordersBearer := "Authorization: Bearer " + strings.TrimSpace(orders.stdout)
	for i := range 3 {
		if o := tollgate(t, "check", "--config", cfg, "--method", "POST", "--path", "/coffeebar/v1/order", "-H", ordersBearer); !strings.Contains(o.stdout, "ALLOWED") {
			t.Fatalf("order %d: %s", i, o.stdout)
		}
	}
	if o := tollgate(t, "check", "--config", cfg, "--method", "POST", "--path", "/coffeebar/v1/order", "-H", ordersBearer); !strings.Contains(o.stdout, "DENIED 429") || !strings.Contains(o.stdout, "900802") || !strings.Contains(o.stdout, "retry-after") {
		t.Fatalf("fourth order: %s", o.stdout)
	}

	// Basic auth: a staff user stored with `tollgate user put` opens the rota.
	put := exec.Command(binary, "user", "put", "staff-1", "--config", cfg, "--etcd", etcdC)
	put.Stdin = strings.NewReader("rota-password\n")
	if out, err := put.CombinedOutput(); err != nil {
		t.Fatalf("user put: %v %s", err, out)
	}
	basicAuth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("staff-1:rota-password"))
	testutil.Eventually(t, "basic user", func() bool {
		o := tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/staff/rota", "-H", basicAuth)
		return strings.Contains(o.stdout, "ALLOWED")
	})
	wrongBasic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("staff-1:nope"))
	if o := tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/staff/rota", "-H", wrongBasic); !strings.Contains(o.stdout, "DENIED 401") || !strings.Contains(o.stdout, "900911") {
		t.Errorf("wrong basic password: %s", o.stdout)
	}

	// Revoke a token: every enforcer denies it at once.
	other := tollgate(t, "token", "--config", cfg, "--scope", "read:menu")
	otherBearer := "Authorization: Bearer " + strings.TrimSpace(other.stdout)
	if o := tollgate(t, "revoke", "--config", cfg, "--etcd", etcdC, "--token", strings.TrimSpace(other.stdout), "--reason", "test"); o.code != 0 {
		t.Fatalf("revoke: %s %s", o.stdout, o.stderr)
	}
	testutil.Eventually(t, "revoked token denied", func() bool {
		o := tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/menu", "-H", otherBearer)
		return strings.Contains(o.stdout, "DENIED 401") && strings.Contains(o.stdout, "Token revoked")
	})

	// A live change: GET /menu now needs another scope. No restart.
	cb, _ := os.ReadFile("../examples/coffeebar/coffeebar.yaml")
	changed := write(t, dir, "cb.yaml", strings.Replace(string(cb), "[read:menu]", "[read:menu:v2]", 1))
	if o := tollgate(t, "apply", "--config", cfg, "--etcd", etcdC, "-f", changed); o.code != 0 {
		t.Fatalf("apply: %s%s", o.stdout, o.stderr)
	}
	testutil.Eventually(t, "live change", func() bool {
		o := tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/menu", "-H", bearer)
		return strings.Contains(o.stdout, "DENIED 403")
	})

	// A broken apply stores nothing; the last good definition stays in force.
	broken := write(t, dir, "broken.yaml", strings.Replace(string(cb), "/order/{orderId}", "/order/{orderId", 1))
	o = tollgate(t, "apply", "--config", cfg, "--etcd", etcdC, "-f", "../examples/petstore/petstore.yaml", "-f", broken)
	if o.code != 1 || !strings.Contains(o.stderr, "nothing was stored") {
		t.Fatalf("broken apply: exit %d %s", o.code, o.stderr)
	}
	time.Sleep(300 * time.Millisecond)
	o = tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/order/1", "-H", bearer)
	if !strings.Contains(o.stdout, "DENIED 403") {
		t.Errorf("after a broken apply the good definition should still decide: %s", o.stdout)
	}
	if o = tollgate(t, "check", "--config", cfg, "--path", "/petstore/v1/pets", "-H", bearer); !strings.Contains(o.stdout, "DENIED 404") {
		t.Errorf("petstore came with a failed apply: %s", o.stdout)
	}

	// One apply of several definitions is one etcd transaction; the running server loads
	// every one of them (it once took only the first event of a transaction).
	if o := tollgate(t, "apply", "--config", cfg, "--etcd", etcdC, "-f", "../examples/petstore/petstore.yaml", "-f", "../examples/online-store/online-store.yaml"); o.code != 0 {
		t.Fatalf("apply of two definitions: %s%s", o.stdout, o.stderr)
	}
	for _, path := range []string{"/petstore/v1/pets", "/store/v1/items"} {
		testutil.Eventually(t, "live API "+path, func() bool {
			o := tollgate(t, "check", "--config", cfg, "--path", path, "-H", bearer)
			return o.stdout != "" && !strings.Contains(o.stdout, "DENIED 404")
		})
	}

	// The control plane serves the API to an Envoy of the default group.
	conn, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The routes are scoped by first path segment: coffeebar's scope names its table.
	stream.Send(&discoverygrpc.DiscoveryRequest{Node: &corev3.Node{Id: "tour", Cluster: "default"}, TypeUrl: resourcev3.RouteType, ResourceNames: []string{build.ScopeRouteName("coffeebar")}})
	rds, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rds.String(), "coffeebar/v1 GET /menu") {
		t.Errorf("the route table lacks coffeebar's routes: %.300s", rds.String())
	}
	// Service discovery from the command line: the key's addresses reach the control plane.
	if o := tollgate(t, "endpoints", "set", "searchItem_etcd_key", "http://10.1.1.1:80", "http://10.1.1.2:80", "--config", cfg, "--etcd", etcdC); o.code != 0 {
		t.Fatalf("endpoints set: %s %s", o.stdout, o.stderr)
	}
	if o := tollgate(t, "endpoints", "get", "searchItem_etcd_key", "--config", cfg, "--etcd", etcdC); !strings.Contains(o.stdout, "10.1.1.2") {
		t.Errorf("endpoints get: %s %s", o.stdout, o.stderr)
	}
	// Flags before the key work too.
	if o := tollgate(t, "endpoints", "set", "--config", cfg, "--etcd", etcdC, "flags_first_key", "http://10.1.1.3:80"); o.code != 0 || !strings.Contains(o.stdout, "endpoints/flags_first_key") {
		t.Errorf("endpoints set with flags first: %s %s", o.stdout, o.stderr)
	}
	if o := tollgate(t, "endpoints", "set", "k", "not a url", "--config", cfg, "--etcd", etcdC); o.code == 0 {
		t.Error("a bad address was stored")
	}
	if o := tollgate(t, "bootstrap", "--config", cfg, "--node-id", "e1"); o.code != 0 || !strings.Contains(o.stdout, "ads_config") || !strings.Contains(o.stdout, "api_type: GRPC\n") {
		t.Errorf("bootstrap: %s %s", o.stdout, o.stderr)
	}
	if o := tollgate(t, "bootstrap", "--config", cfg, "--node-id", "e1", "--delta"); o.code != 0 || !strings.Contains(o.stdout, "api_type: DELTA_GRPC\n") {
		t.Errorf("bootstrap --delta: %s %s", o.stdout, o.stderr)
	}

	// Metrics and health on the admin port (coffeebar, then petstore and online-store).
	body := get(t, "http://"+adm+"/metrics")
	for _, m := range []string{"tollgate_authz_decisions_total", "tollgate_apis 3", "tollgate_jwt_verifications_total"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	if !strings.Contains(get(t, "http://"+adm+"/healthz"), "ok") {
		t.Error("healthz")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			last = string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %s", url, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
