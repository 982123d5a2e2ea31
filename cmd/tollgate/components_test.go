package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
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
