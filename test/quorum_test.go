package test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// A fault drill on a real 3-member etcd cluster: with two members down there is no quorum.
// The enforcer keeps deciding with what it has, says in /readyz that it may be stale, logs
// a line or two per range (not dozens a second), answers revocations 503 (retry), and is
// ready again within 2 s of the quorum's return.
func TestEtcdWithoutQuorum(t *testing.T) {
	c := testutil.StartEtcdCluster(t, 3)
	dir := t.TempDir()
	p := newPorts(t)
	tokenFile := write(t, dir, "admin-token", "drill-token\n")
	cfg := serverConfig(t, dir, "authz.yaml", p, strings.Join(c.Endpoints(), ", "), ", tokenFile: "+tokenFile)
	if o := tollgate(t, "apply", "--config", cfg, "-f", "../examples/coffeebar/coffeebar.yaml"); o.code != 0 {
		t.Fatalf("apply: %s", o.stderr)
	}
	a := startTollgate(t, "authz", "--dev", "--config", cfg)
	a.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	tok := tollgate(t, "token", "--config", cfg, "--scope", "read:menu")
	bearer := "Authorization: Bearer " + strings.TrimSpace(tok.stdout)
	check := func() string {
		return tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/menu", "-H", bearer).stdout
	}
	if o := check(); !strings.Contains(o, "ALLOWED 200") {
		t.Fatalf("before: %s", o)
	}
	revoke := func() *http.Response { return postRevoke(t, p.admin, "drill-token", revocationFor("drill")) }

	c.Stop(1, 2)
	lost := time.Now()
	testutil.Eventually(t, "not ready without a quorum", func() bool { code, _ := readyz(t, p.admin); return code == 503 })
	if o := check(); !strings.Contains(o, "ALLOWED 200") {
		t.Errorf("without a quorum the enforcer must decide with what it has: %s", o)
	}
	if r := revoke(); r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
		t.Errorf("revoke without a quorum: %d, want 503 with Retry-After", r.StatusCode)
	}
	time.Sleep(time.Until(lost.Add(8 * time.Second)))

	c.Start(1, 2)
	back := time.Now()
	waitReady(t, "http://"+p.admin+"/readyz")
	if d := time.Since(back); d > 2*time.Second {
		t.Errorf("ready %v after the quorum returned, want < 2s", d)
	}
	if r := revoke(); r.StatusCode != 200 {
		t.Errorf("revoke with the quorum back: %d", r.StatusCode)
	}
	// Over the whole drill — a member's departure moves the client to another member, the
	// quorum goes, and comes back — each range logs a few lines, not dozens a second.
	for _, r := range []string{"apis/", "revoked/", "policies/", "users/", "apikeys/"} {
		if n := len(a.log(`"range":"/tollgate/` + r + `"`)); n > 5 {
			t.Errorf("%d log lines about %s:\n%s", n, r, strings.Join(a.log(r), "\n"))
		}
	}
}
