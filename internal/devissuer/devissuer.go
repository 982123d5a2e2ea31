// Package devissuer is the development token issuer of `tollgate run --dev`: an RSA key
// kept in the data directory, published as a JWKS file the verifier trusts, and used by
// `tollgate token` to mint tokens. It exists so a newcomer can see decisions without an IdP;
// it is off unless --dev is given.
package devissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/MicahParks/jwkset"
	gojwt "github.com/golang-jwt/jwt/v5"
)

// The development issuer's identity.
const (
	Issuer   = "https://tollgate.dev/dev-issuer"
	Audience = "tollgate-dev"
	kid      = "tollgate-dev-1"
)

func paths(dataDir string) (key, jwks string) {
	dir := filepath.Join(dataDir, "dev")
	return filepath.Join(dir, "signing-key.pem"), filepath.Join(dir, "jwks.json")
}

// Ensure creates the key and JWKS file in dataDir if they are absent and returns the JWKS
// file that trusts them (issuer Issuer, audience Audience, RS256).
func Ensure(dataDir string) (string, error) {
	keyFile, jwksFile := paths(dataDir)
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
			return "", err
		}
		der, _ := x509.MarshalPKCS8PrivateKey(k)
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return "", err
		}
		j, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig, ALG: jwkset.AlgRS256}})
		if err != nil {
			return "", err
		}
		data, _ := json.MarshalIndent(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{j.Marshal()}}, "", "  ")
		if err := os.WriteFile(jwksFile, data, 0o644); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", err
	}
	return jwksFile, nil
}

// Claims for a development token.
type Claims struct {
	Subject  string
	ClientID string
	Scope    string
	TTL      time.Duration
	// DPoPThumbprint binds the token to a DPoP key (cnf.jkt, RFC 9449 §6.1) when set.
	DPoPThumbprint string
	// Extra claims (a tier claim, say); iss cannot be changed.
	Extra map[string]any
}

// Mint signs a token with the development key in dataDir.
func Mint(dataDir string, c Claims) (string, error) {
	keyFile, _ := paths(dataDir)
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return "", fmt.Errorf("no development key (start `tollgate run --dev` first, with the same data dir): %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return "", fmt.Errorf("%s: not PEM", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", keyFile, err)
	}
	now := time.Now()
	claims := gojwt.MapClaims{
		"iss": Issuer, "aud": Audience, "sub": c.Subject, "azp": c.ClientID, "scope": c.Scope,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(c.TTL).Unix(), "jti": rand.Text(),
	}
	for k, v := range c.Extra {
		if k != "iss" {
			claims[k] = v
		}
	}
	if c.DPoPThumbprint != "" {
		claims["cnf"] = map[string]any{"jkt": c.DPoPThumbprint}
	}
	t := gojwt.NewWithClaims(gojwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	return t.SignedString(k)
}
