package admin

import (
	"errors"
	"net/http"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

func TestReadyzReportsFailingChecks(t *testing.T) {
	s := New()
	var err error = errors.New("not yet")
	s.Ready("etcd", func() error { return err })
	srv := testutil.NewHTTPServer(t, s.Handler())
	defer srv.Close()
	resp, _ := http.Get(srv.URL + "/readyz")
	if resp.StatusCode != 503 {
		t.Errorf("readyz %d while a check fails", resp.StatusCode)
	}
	err = nil
	resp, _ = http.Get(srv.URL + "/readyz")
	if resp.StatusCode != 200 {
		t.Errorf("readyz %d when all checks pass", resp.StatusCode)
	}
	if resp, _ := http.Get(srv.URL + "/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
}

func TestAdminStaysOnLoopbackUnlessAllowed(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:9902": true, "[::1]:9902": true, "localhost:9902": true, "0.0.0.0:9902": false, ":9902": false, "10.0.0.1:9902": false} {
		if err := CheckLoopback(addr, false); (err == nil) != ok {
			t.Errorf("%s: err %v", addr, err)
		}
	}
	if err := CheckLoopback("0.0.0.0:9902", true); err != nil {
		t.Error(err)
	}
}
