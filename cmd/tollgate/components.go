package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/devissuer"
	"github.com/tollgate-gw/tollgate/policies/jwt"
)

// The configuration's parts in the form of the components they configure.

// jwtIssuer turns a configured issuer into the verifier's form, reading the HMAC secret file.
func jwtIssuer(i config.Issuer) (jwt.IssuerConfig, error) {
	out := jwt.IssuerConfig{
		Name: i.Name, Issuer: i.Issuer, Audiences: i.Audiences, AnyAudience: i.AnyAudience,
		JWKSURL: i.JWKSURL, JWKSFile: i.JWKSFile, CertificateFile: i.CertificateFile,
		Algorithms: i.Algorithms, ClockSkew: time.Duration(i.ClockSkew), ScopeClaim: i.ScopeClaim,
		RefreshInterval: time.Duration(i.RefreshInterval), MinRefreshInterval: time.Duration(i.MinRefreshInterval),
		CertificateBound: i.CertificateBound, AcceptedTypes: i.AcceptedTypes, DPoPBound: i.DPoPBound,
	}
	if i.HMACSecretFile != "" {
		b, err := os.ReadFile(i.HMACSecretFile)
		if err != nil {
			return out, fmt.Errorf("issuer %q: %w", i.Name, err)
		}
		out.HMACSecret = []byte(strings.TrimSpace(string(b)))
	}
	return out, nil
}

// devIssuer is the development issuer (tollgate run --dev): its key and JWKS in dataDir,
// made when absent.
func devIssuer(dataDir string) (jwt.IssuerConfig, error) {
	jwks, err := devissuer.Ensure(dataDir)
	if err != nil {
		return jwt.IssuerConfig{}, err
	}
	return jwt.IssuerConfig{Name: "dev", Issuer: devissuer.Issuer, Audiences: []string{devissuer.Audience}, JWKSFile: jwks, Algorithms: []string{"RS256"}}, nil
}
