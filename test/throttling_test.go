package test

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// Two enforcers — `tollgate run` and a separate `tollgate authz` on its etcd — configured
// with throttling.backend redis share one counter: the example policy's burst of 3 orders
// holds across both, whichever answers.
func TestTwoEnforcersShareRedisCounters(t *testing.T) {
	rd := testutil.StartRedis(t)
	dir := t.TempDir()
	etcdC := testutil.FreeAddr(t)
	config := func(name, authz, admin, etcd string) string {
		return write(t, dir, name, fmt.Sprintf(`dataDir: %s
etcd: %s
authz: {listen: %s}
xds: {listen: %s}
admin: {listen: %s}
log: {level: warn}
throttling:
  backend: redis
  redis: {addrs: [%s], lease: 100ms, timeout: 50ms}
`, filepath.Join(dir, "data"), etcd, authz, testutil.FreeAddr(t), admin, rd.Addr))
	}
	admA, admB := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cfgA := config("a.yaml", testutil.FreeAddr(t), admA, fmt.Sprintf("{embeddedClientAddr: %s, embeddedPeerAddr: %s}", etcdC, testutil.FreeAddr(t)))
	cfgB := config("b.yaml", testutil.FreeAddr(t), admB, fmt.Sprintf("{endpoints: [%s]}", etcdC))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	start := func(args ...string) {
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); cmd.Wait() })
	}
	start("run", "--dev", "--config", cfgA, "-f", "../examples/coffeebar/coffeebar.yaml", "-f", "../examples/coffeebar/orders-per-user.yaml")
	waitReady(t, "http://"+admA+"/readyz")
	start("authz", "--dev", "--config", cfgB)
	waitReady(t, "http://"+admB+"/readyz")

	tok := tollgate(t, "token", "--config", cfgA, "--scope", "write:order", "--sub", "shared-user")
	if tok.code != 0 {
		t.Fatalf("token: %s", tok.stderr)
	}
	bearer := "Authorization: Bearer " + strings.TrimSpace(tok.stdout)
	order := func(cfg string) string {
		return tollgate(t, "check", "--config", cfg, "--method", "POST", "--path", "/coffeebar/v1/order", "-H", bearer).stdout
	}
	testutil.Eventually(t, "enforcer b has the API", func() bool {
		return !strings.Contains(tollgate(t, "check", "--config", cfgB, "--path", "/coffeebar/v1/menu").stdout, "404")
	})
	for i, cfg := range []string{cfgA, cfgB, cfgA} {
		if o := order(cfg); !strings.Contains(o, "ALLOWED") {
			t.Fatalf("order %d: %s", i+1, o)
		}
	}
	for _, cfg := range []string{cfgB, cfgA} {
		if o := order(cfg); !strings.Contains(o, "DENIED 429") || !strings.Contains(o, "900802") {
			t.Errorf("a fourth order through %s passed the shared burst of 3: %s", filepath.Base(cfg), o)
		}
	}
	if !strings.Contains(get(t, "http://"+admB+"/metrics"), "tollgate_ratelimit_redis_up 1") {
		t.Error("enforcer b does not report Redis up")
	}
}
