package config

import (
	"strings"
	"testing"
)

// Every mode is checked when the file is decoded, naming the field and what it may be; a
// valid value arrives as its named constant.
func TestModesAreCheckedOnDecode(t *testing.T) {
	for doc, want := range map[string]string{
		"throttling: {backend: memcached}\n":         `throttling.backend "memcached" must be local, redis`,
		"throttling: {redis: {fallback: open}}\n":    `throttling.redis.fallback "open" must be local, allow, deny`,
		"xds: {tls: {clientCertificates: always}}\n": `xds.tls.clientCertificates "always" must be optional, require`,
		"authz: {mutualTLS: {crlExpiry: never}}\n":   `authz.mutualTLS.crlExpiry "never" must be hard, soft`,
		"authz: {faultFormat: xml}\n":                `authz.faultFormat "xml" must be wso2, problem`,
		"log: {format: logfmt}\n":                    `log.format "logfmt" must be json, console`,
		"log: {level: 3}\n":                          `log.level must be a string`,
	} {
		if _, err := load(t, doc); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", doc, err, want)
		}
	}
	c, err := load(t, "throttling: {redis: {fallback: deny}}\nxds: {tls: {clientCertificates: require}}\nauthz: {mutualTLS: {crlExpiry: soft}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Throttling.Redis.Fallback != FallbackDeny || c.XDS.TLS.ClientCertificates != ClientCertificatesRequire || c.Authz.MutualTLS.CRLExpiry != CRLExpirySoft {
		t.Errorf("decoded %q %q %q", c.Throttling.Redis.Fallback, c.XDS.TLS.ClientCertificates, c.Authz.MutualTLS.CRLExpiry)
	}
	var l LogLevel
	if err := l.Set("loud"); err == nil || l != "" {
		t.Errorf("--log-level loud: %v, level %q", err, l)
	}
}
