package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"go.uber.org/zap"
)

// A configured issuer becomes the verifier's, its HMAC secret read from its file.
func TestJWTIssuer(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	j, err := jwtIssuer(config.Issuer{Name: "idp", Issuer: "https://idp", Audiences: []string{"api"}, ClockSkew: config.Duration(45 * time.Second),
		HMACSecretFile: secret, AcceptedTypes: []string{"at+jwt"}, DPoPBound: true})
	if err != nil || j.ClockSkew != 45*time.Second || j.Audiences[0] != "api" || string(j.HMACSecret) != "0123456789abcdef0123456789abcdef" ||
		j.AcceptedTypes[0] != "at+jwt" || !j.DPoPBound {
		t.Errorf("issuer %+v %v", j, err)
	}
	if _, err := jwtIssuer(config.Issuer{Name: "x", HMACSecretFile: filepath.Join(t.TempDir(), "absent")}); err == nil {
		t.Error("a missing secret file")
	}
	dev, err := devIssuer(t.TempDir())
	if err != nil || dev.JWKSFile == "" || dev.Name != "dev" {
		t.Errorf("dev issuer %+v %v", dev, err)
	}
}

// The enforcer's configuration reads the files the configuration names — the
// introspection client secret, the admin token, the Redis password — and a missing one is
// an error naming what it was for.
func TestAuthzConfigReadsItsFiles(t *testing.T) {
	dir := t.TempDir()
	secret, token, password := filepath.Join(dir, "secret"), filepath.Join(dir, "token"), filepath.Join(dir, "password")
	os.WriteFile(secret, []byte(" s3cret \n"), 0o600)
	os.WriteFile(token, []byte("admin-token\n"), 0o600)
	os.WriteFile(password, []byte("pass word \r\n"), 0o600)
	cfg := config.Default()
	cfg.Issuers = []config.Issuer{{Name: "opaque", IntrospectionURL: "https://idp/introspect", ClientID: "gw", ClientSecretFile: secret}}
	cfg.Admin.TokenFile = token
	cfg.Throttling.Backend = "redis"
	cfg.Throttling.Redis.Addrs = []string{"127.0.0.1:6379"}
	cfg.Throttling.Redis.PasswordFile = password
	ac, err := authzConfig(cfg, false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if len(ac.Introspect) != 1 || string(ac.Introspect[0].ClientSecret) != "s3cret" || ac.Introspect[0].Discover || string(ac.AdminToken) != "admin-token" ||
		ac.Redis == nil || ac.Redis.Password != "pass word " || ac.Listen != cfg.Authz.Listen {
		t.Errorf("authz config %+v", ac)
	}
	for _, f := range []*string{&cfg.Issuers[0].ClientSecretFile, &cfg.Admin.TokenFile, &cfg.Throttling.Redis.PasswordFile} {
		was := *f
		*f = filepath.Join(dir, "absent")
		if _, err := authzConfig(cfg, false, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "absent") {
			t.Errorf("a missing file: %v", err)
		}
		*f = was
	}
}
