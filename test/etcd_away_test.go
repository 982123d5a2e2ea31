package test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// `make run`, as the README gives it: an Envoy that connects while the process starts gets
// every example's listeners, routes, clusters and endpoints in the first configuration it
// holds — and again after a restart over the same data directory without -f.
func TestMakeRunServesEveryExampleInTheFirstSnapshot(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	runArgs := makeRunArgs(t)
	want := expected(t, filesOf(runArgs))
	for _, r := range []string{"coffeebar/v1 GET /menu", "petstore/1.0.0 GET /pets", "online-store/v1 GET /searchItem"} {
		if !slices.Contains(want.Routes, r) {
			t.Fatalf("the examples should route %q; they route %q", r, want.Routes)
		}
	}

	for i, args := range [][]string{
		append([]string{"run", "--config", cfg}, runArgs...),
		{"run", "--config", cfg}, // a restart: the APIs are in the data directory's etcd
	} {
		srv := startTollgate(t, args...)
		env := connectEnvoy(t, t.Context(), p.xds, "envoy-start")
		got := env.waitFor("a complete configuration", 60*time.Second, func(config) bool { return true })
		if diff := sameConfig(got, want); diff != nil {
			t.Errorf("start %d: the first configuration is not every example's:\n%s", i, strings.Join(diff, "\n"))
		}
		srv.stop()
	}
}

// A control plane and an enforcer that were in step once, restarted while etcd is away,
// serve the local copy (the same configuration, the same decisions), say so in /readyz,
// and catch up when etcd returns: a change made meanwhile arrives.
func TestServersStartFromTheLocalCopyWhileEtcdIsAway(t *testing.T) {
	e := testutil.StartEtcd(t)
	proxy := testutil.NewProxy(t, strings.TrimPrefix(e.Endpoint(), "http://"))
	dir := t.TempDir()
	px, pa := newPorts(t), newPorts(t)
	xdsCfg := serverConfig(t, dir, "xds.yaml", px, proxy.Addr())
	authzCfg := serverConfig(t, dir, "authz.yaml", pa, proxy.Addr())
	files := filesOf(makeRunArgs(t))
	if o := tollgate(t, append([]string{"apply", "--config", xdsCfg}, flagEach("-f", files)...)...); o.code != 0 {
		t.Fatalf("apply: %s %s", o.stdout, o.stderr)
	}
	tollgate(t, "endpoints", "set", "searchItem_etcd_key", "http://10.1.1.1:80", "--config", xdsCfg)

	start := func() (*proc, *proc) {
		x := startTollgate(t, "xds", "--config", xdsCfg)
		a := startTollgate(t, "authz", "--dev", "--config", authzCfg)
		x.waitUp()
		a.waitUp()
		return x, a
	}
	x, a := start()
	waitReady(t, "http://"+px.admin+"/readyz")
	waitReady(t, "http://"+pa.admin+"/readyz")
	env := connectEnvoy(t, t.Context(), px.xds, "envoy-1")
	before := env.waitFor("the examples", 30*time.Second, func(c config) bool { return slices.Contains(c.Routes, "coffeebar/v1 GET /menu") })
	tok := tollgate(t, "token", "--config", authzCfg, "--scope", "read:menu")
	bearer := "Authorization: Bearer " + strings.TrimSpace(tok.stdout)
	check := func(path string) string {
		return tollgate(t, "check", "--config", authzCfg, "--path", path, "-H", bearer).stdout
	}
	if o := check("/coffeebar/v1/menu"); !strings.Contains(o, "ALLOWED 200") {
		t.Fatalf("in step: %s", o)
	}
	time.Sleep(700 * time.Millisecond) // the copy is written within half a second of a change
	x.stop()
	a.stop()
	for _, d := range []string{"data-xds", "data-authz"} {
		for _, r := range []string{store.APIs, "endpoints/", store.Revoked} {
			path := store.CopyPath(filepath.Join(dir, d, "cache"), r)
			if d == "data-authz" && r == "endpoints/" || d == "data-xds" && r == store.Revoked {
				continue
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatalf("no local copy: %v", err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s is %v, want 0600", path, fi.Mode().Perm())
			}
		}
	}

	// etcd away; meanwhile someone adds an API.
	proxy.Cut()
	added := write(t, dir, "added.yaml", `openapi: 3.0.3
info: {title: Added, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:9000]
paths:
  /things: {get: {security: [{}], responses: {"200": {description: ok}}}}
`)
	if o := tollgate(t, "apply", "--config", xdsCfg, "--etcd", e.Endpoint(), "-f", added); o.code != 0 {
		t.Fatalf("apply while away: %s", o.stderr)
	}
	x, a = start()
	env2 := connectEnvoy(t, t.Context(), px.xds, "envoy-2")
	for _, adm := range []string{px.admin, pa.admin} {
		testutil.Eventually(t, "serving the local copy", func() bool {
			code, body := readyz(t, adm)
			return code == 503 && strings.Contains(body, "local copy") && !strings.Contains(body, "not read")
		})
	}
	got := env2.waitFor("the copy", 30*time.Second, func(config) bool { return true })
	if diff := sameConfig(got, before); diff != nil {
		t.Errorf("from the local copy the Envoy gets another configuration:\n%s", strings.Join(diff, "\n"))
	}
	if !slices.Equal(got.Addresses, before.Addresses) {
		t.Errorf("endpoints from the copy %q, before %q", got.Addresses, before.Addresses)
	}
	if o := check("/coffeebar/v1/menu"); !strings.Contains(o, "ALLOWED 200") {
		t.Errorf("from the copy: %s", o)
	}
	if o := check("/coffeebar/v1/nothing"); !strings.Contains(o, "DENIED 404") {
		t.Errorf("an unknown resource from the copy: %s", o)
	}
	for _, p := range []*proc{x, a} {
		if n := len(p.log(`"range":"/tollgate/apis/"`)); n != 1 || len(p.log("serving the local copy")) == 0 {
			t.Errorf("%s started from the copy: %d lines about apis/, want one:\n%s", p.cmd.Args[1], n, strings.Join(p.log("apis/"), "\n"))
		}
	}
	if m := get(t, "http://"+pa.admin+"/metrics"); !strings.Contains(m, `tollgate_state_age_seconds{range="apis/"}`) || !strings.Contains(m, `tollgate_etcd_in_step{range="apis/"} 0`) {
		t.Errorf("metrics lack the state's age: %.2000s", m)
	}

	proxy.Restore()
	env2.waitFor("the API added while etcd was away", 10*time.Second, func(c config) bool { return slices.Contains(c.Routes, "added/v1 GET /things") })
	testutil.Eventually(t, "authz caught up", func() bool { return strings.Contains(check("/added/v1/things"), "ALLOWED") })
	waitReady(t, "http://"+px.admin+"/readyz")
	waitReady(t, "http://"+pa.admin+"/readyz")

	// A blip with nothing written: ready again within 2 s of etcd's return.
	proxy.Cut()
	testutil.Eventually(t, "not ready while etcd is away", func() bool { c, _ := readyz(t, pa.admin); return c == 503 })
	time.Sleep(2 * time.Second)
	proxy.Restore()
	back := time.Now()
	waitReady(t, "http://"+pa.admin+"/readyz")
	waitReady(t, "http://"+px.admin+"/readyz")
	if d := time.Since(back); d > 2*time.Second {
		t.Errorf("ready %v after etcd returned, want < 2s", d)
	}
	for _, p := range []*proc{x, a} {
		for _, r := range []string{"apis/", "endpoints/", "revoked/", "policies/"} {
			if n := len(p.log(`"range":"/tollgate/` + r + `"`)); n > 5 {
				t.Errorf("%v: %d log lines about %s over two outages:\n%s", p.cmd.Args[1], n, r, strings.Join(p.log(r), "\n"))
			}
		}
	}
}

// With etcd away from the start and no local copy, the control plane never answers with
// an empty configuration (Envoy keeps what it has) and the enforcer answers 503; both
// serve as soon as etcd can be read. Revocations cannot be stored meanwhile: 503, retry.
func TestNothingEmptyIsServedWithoutEtcdOrCopy(t *testing.T) {
	e := testutil.StartEtcd(t)
	proxy := testutil.NewProxy(t, strings.TrimPrefix(e.Endpoint(), "http://"))
	proxy.Cut()
	dir := t.TempDir()
	px, pa := newPorts(t), newPorts(t)
	xdsCfg := serverConfig(t, dir, "xds.yaml", px, proxy.Addr())
	tokenFile := write(t, dir, "admin-token", "s3cret-admin\n")
	authzCfg := serverConfig(t, dir, "authz.yaml", pa, proxy.Addr(), ", tokenFile: "+tokenFile)
	x := startTollgate(t, "xds", "--config", xdsCfg)
	a := startTollgate(t, "authz", "--dev", "--config", authzCfg)
	x.waitUp()
	a.waitUp()
	env := connectEnvoy(t, t.Context(), px.xds, "envoy-cold")
	delta := connectDelta(t, px.xds, "envoy-cold-delta")
	for _, adm := range []string{px.admin, pa.admin} {
		testutil.Eventually(t, "nothing loaded", func() bool {
			code, body := readyz(t, adm)
			return code == 503 && strings.Contains(body, "nothing loaded") && !strings.Contains(body, "not read")
		})
	}

	tok := tollgate(t, "token", "--config", authzCfg, "--scope", "read:menu")
	bearer := "Authorization: Bearer " + strings.TrimSpace(tok.stdout)
	o := tollgate(t, "check", "--config", authzCfg, "--path", "/coffeebar/v1/menu", "-H", bearer)
	if !strings.Contains(o.stdout, "DENIED 503") || !strings.Contains(o.stdout, "900950") || !strings.Contains(o.stdout, "retry-after") {
		t.Errorf("an enforcer with nothing loaded: %s", o.stdout)
	}
	post := func(body []byte) *http.Response { return postRevoke(t, pa.admin, "s3cret-admin", body) }
	if r := post(revocationFor("j1")); r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("revoke while etcd is away: %d (Retry-After %q), want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := post(bytes.Repeat([]byte(" "), 10<<20)); r.StatusCode != 413 {
		t.Errorf("a 10 MB revocation: %d, want 413", r.StatusCode)
	}
	if r := post([]byte(`{"jti":"j1"}`)); r.StatusCode != 400 {
		t.Errorf("a revocation without until: %d, want 400", r.StatusCode)
	}
	if o := tollgate(t, "apply", "--config", xdsCfg, "-f", "../examples/coffeebar/coffeebar.yaml"); o.code == 0 || !strings.Contains(o.stderr, proxy.Addr()) || !strings.Contains(o.stderr, "check that it is running") {
		t.Errorf("apply with etcd away should name the address and what to check: %d %s", o.code, o.stderr)
	}
	time.Sleep(2 * time.Second)
	if n := env.received(); n != 0 {
		t.Fatalf("the control plane answered %d times with nothing loaded; it must not answer", n)
	}
	select {
	case r := <-delta:
		t.Fatalf("the control plane answered a delta stream with nothing loaded: %d %s resources", len(r.Resources), r.TypeUrl)
	default:
	}

	files := filesOf(makeRunArgs(t))
	if o := tollgate(t, append([]string{"apply", "--config", xdsCfg, "--etcd", e.Endpoint()}, flagEach("-f", files)...)...); o.code != 0 {
		t.Fatalf("apply: %s", o.stderr)
	}
	proxy.Restore()
	got := env.waitFor("the configuration once etcd is back", 15*time.Second, func(config) bool { return true })
	if diff := sameConfig(got, expected(t, files)); diff != nil {
		t.Errorf("once etcd is back:\n%s", strings.Join(diff, "\n"))
	}
	select {
	case r := <-delta:
		if len(r.Resources) == 0 {
			t.Errorf("the first delta answer is empty (%s)", r.TypeUrl)
		}
	case <-time.After(15 * time.Second):
		t.Error("no delta answer once etcd is back")
	}
	testutil.Eventually(t, "enforcer loaded", func() bool {
		return strings.Contains(tollgate(t, "check", "--config", authzCfg, "--path", "/coffeebar/v1/menu", "-H", bearer).stdout, "ALLOWED 200")
	})
	if r := post(revocationFor("j1")); r.StatusCode != 200 {
		t.Errorf("revoke with etcd back: %d", r.StatusCode)
	}
}

// postRevoke POSTs a revocation to an admin port with the admin token.
func postRevoke(t *testing.T, admin, token string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+admin+"/revoke", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// revocationFor is a revocation request body for a jti, valid for an hour.
func revocationFor(jti string) []byte {
	return []byte(`{"jti":"` + jti + `","until":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`)
}

// connectDelta opens a delta ADS stream that subscribes to every cluster and listener, as
// an Envoy with delta xDS does, and hands over each response it gets.
func connectDelta(t *testing.T, addr, id string) <-chan *discoveryv3.DeltaDiscoveryResponse {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(t.Context(), grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: id, Cluster: "default", UserAgentName: "envoy"}
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: typ}); err != nil {
			t.Fatal(err)
		}
	}
	out := make(chan *discoveryv3.DeltaDiscoveryResponse, 16)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: r.TypeUrl, ResponseNonce: r.Nonce})
			select {
			case out <- r:
			default:
			}
		}
	}()
	return out
}

func flagEach(flag string, vals []string) []string {
	var out []string
	for _, v := range vals {
		out = append(out, flag, v)
	}
	return out
}
