package tlsfiles_test

import (
	"os"
	"path/filepath"
	"testing"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
)

// A port's files read again: a renewed certificate replaces the one in force, a broken
// file leaves it, half a configuration is refused at start.
func TestServerReload(t *testing.T) {
	dir := t.TempDir()
	ca := tu.NewCA(t, "ca")
	cert, key, first := ca.Issue("one", []string{"localhost"})
	put := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := tlsfiles.ServerConfig{CertFile: put("c.pem", cert), KeyFile: put("k.pem", key), ClientCAFile: put("ca.pem", ca.PEM())}
	s, err := tlsfiles.NewServer(c)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		cfg, _ := s.Config().GetConfigForClient(nil)
		return cfg.Certificates[0].Leaf.SerialNumber.String()
	}
	if cfg, _ := s.Config().GetConfigForClient(nil); serial() != first.SerialNumber.String() || cfg.ClientCAs == nil {
		t.Fatalf("first configuration")
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Errorf("nothing changed: %v %v", changed, err)
	}
	put("c.pem", []byte("-----BEGIN CERTIFICATE-----\nbm90\n-----END CERTIFICATE-----\n"))
	if changed, err := s.Reload(); changed || err == nil || serial() != first.SerialNumber.String() {
		t.Errorf("a broken file: %v %v, serial %s", changed, err, serial())
	}
	cert2, key2, second := ca.Issue("two", []string{"localhost"})
	put("c.pem", cert2)
	put("k.pem", key2)
	if changed, err := s.Reload(); !changed || err != nil || serial() != second.SerialNumber.String() {
		t.Errorf("a renewed certificate: %v %v, serial %s", changed, err, serial())
	}
	for _, bad := range []tlsfiles.ServerConfig{{CertFile: c.CertFile}, {ClientCAFile: c.ClientCAFile}} {
		if _, err := tlsfiles.NewServer(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
