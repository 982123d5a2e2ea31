package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, yaml string) (Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tollgate.yaml")
	os.WriteFile(p, []byte(yaml), 0o600)
	return Load(p)
}

func TestDefaultsAndOverrides(t *testing.T) {
	c, err := load(t, "authz:\n  listen: 127.0.0.1:7000\nissuers:\n  - name: idp\n    issuer: https://idp\n    jwksURL: https://idp/jwks\n    audiences: [api]\n    clockSkew: 45s\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Authz.Listen != "127.0.0.1:7000" || c.Admin.Listen != "127.0.0.1:9902" || c.Prefix != "/tollgate/" || c.Authz.FaultFormat != "wso2" {
		t.Errorf("got %+v", c)
	}
	if c.Throttling.Redis.Lease != Duration(100*time.Millisecond) {
		t.Errorf("default lease %v", time.Duration(c.Throttling.Redis.Lease))
	}
	if is := c.Issuers[0]; time.Duration(is.ClockSkew) != 45*time.Second || is.Audiences[0] != "api" {
		t.Errorf("issuer %+v", is)
	}
}

func TestRejects(t *testing.T) {
	for doc, want := range map[string]string{
		"authz:\n  lisen: x\n":                          "unknown field",
		"authz:\n  faultFormat: xml\n":                  "faultFormat",
		"log:\n  level: loud\n":                         "log.level",
		"issuers:\n  - clockSkew: 30\n":                 "duration",
		"issuers:\n  - {jwksURL: x, jwksFile: y}\n":     "exactly one of",
		"issuers:\n  - {jwksURL: x, discovery: true}\n": "exactly one of",
		"issuers:\n  - {issuer: corp}\n":                "not an https URL",
		"issuers:\n  - {name: a, issuer: https://a}\n  - {name: a, issuer: https://b}\n":          "used twice",
		"issuers:\n  - {name: o, introspectionURL: https://a/i, clientID: gw, discovery: true}\n": "not both",
		"issuers:\n  - {name: o, introspection: true, clientID: gw, issuer: corp}\n":              "not an https URL",
		"throttling:\n  redis: {lease: -1s}\n":                                                    "throttling.redis.lease",
		"throttling:\n  redis: {lease: 1m}\n":                                                     "throttling.redis.lease",
		"throttling:\n  redis: {tls: {caFile: /ca.pem}}\n":                                        "enabled is false",
		"throttling:\n  backend: redis\n":                                                         "needs throttling.redis.addrs",
		"xds:\n  maxGroups: 0\n":                                                                  "xds.maxGroups",
		"xds:\n  groups: [a, b, c]\n  maxGroups: 2\n":                                             "xds.maxGroups",
	} {
		if _, err := load(t, doc); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", doc, err, want)
		}
	}
}

// The container image's config loads and listens beyond loopback (a container's port is
// unreachable from outside otherwise), with the admin port allowed to.
func TestContainerConfig(t *testing.T) {
	c, err := Load("../../cmd/tollgate/container.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{c.Authz.Listen, c.XDS.Listen, c.Admin.Listen} {
		if !strings.HasPrefix(a, "0.0.0.0:") {
			t.Errorf("%s listens on loopback only", a)
		}
	}
	if !c.Admin.AllowRemote || c.DataDir == "" {
		t.Errorf("admin.allowRemote %v, dataDir %q", c.Admin.AllowRemote, c.DataDir)
	}
}

// Half a TLS setting is refused, naming it.
func TestHalfTLSIsRefused(t *testing.T) {
	for doc, want := range map[string]string{
		"authz:\n  serverTLS: {certFile: /c.pem}\n":                 "authz.serverTLS",
		"xds:\n  serverTLS: {clientCAFile: /ca.pem}\n":              "xds.serverTLS",
		"admin:\n  tls: {keyFile: /k.pem}\n":                        "admin.tls",
		"xds:\n  authzTLS: {caFile: /ca.pem}\n":                     "xds.authzTLS",
		"admin:\n  wso2Notify: {keyManagers: [WSO2-IS]}\n":          "admin.wso2Notify",
		"authz:\n  dpop: {requireNonce: true, nonceLifetime: 1m}\n": "",
	} {
		_, err := load(t, doc)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%q: err %v, want %q", doc, err, want)
		}
	}
}

func TestFaultTemplateIsCheckedAtLoad(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]string{
		"faults: {template: '{{.Code', contentType: application/json}\n":      "faults.template: ",
		"faults: {template: '{{.Message}}', contentType: application/json}\n": "does not make JSON",
		"faults: {contentType: text/plain}\n":                                 "without faults.template",
		"faults: {template: 'E{{.Code}}', contentType: text/plain}\n":         "",
	} {
		p := filepath.Join(dir, "t.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if want == "" {
			if err != nil || c.FaultTemplate().Name != "custom" {
				t.Errorf("%s: %v", body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
	if c := Default(); c.FaultTemplate().Name != "wso2" {
		t.Errorf("default template %q", c.FaultTemplate().Name)
	}
}
