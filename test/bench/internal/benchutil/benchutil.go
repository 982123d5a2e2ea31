// Package benchutil holds what the load programs share: the do-nothing Check server (the
// floor), an RS256 issuer (its JWKS served on loopback, tokens signed with its key), and
// stopping a server process the way a service manager does.
package benchutil

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/MicahParks/jwkset"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	gojwt "github.com/golang-jwt/jwt/v5"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// Nothing is the do-nothing Check server: it allows everything.
type Nothing struct {
	authv3.UnimplementedAuthorizationServer
}

func (Nothing) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, nil
}

// Issuer signs RS256 tokens (kid k1) and serves its JWKS on a loopback port below 32768.
type Issuer struct {
	Name, Audience string
	key            *rsa.PrivateKey
	// JWKSURL is where its keys are served.
	JWKSURL string
}

// NewIssuer makes a key and serves its JWKS.
func NewIssuer(name, audience string) *Issuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	Check(err)
	j, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1"}})
	Check(err)
	body, _ := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{j.Marshal()}})
	l, err := testutil.ListenLow()
	Check(err)
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	return &Issuer{Name: name, Audience: audience, key: key, JWKSURL: "http://" + l.Addr().String() + "/jwks.json"}
}

// Sign makes a token for subject bench with the scope, valid for two hours.
func (is *Issuer) Sign(scope string) string {
	now := time.Now()
	t := gojwt.NewWithClaims(gojwt.SigningMethodRS256, gojwt.MapClaims{
		"iss": is.Name, "aud": is.Audience, "sub": "bench", "azp": "bench-app", "scope": scope,
		"iat": now.Unix(), "exp": now.Add(2 * time.Hour).Unix(), "jti": rand.Text(),
	})
	t.Header["kid"] = "k1"
	s, err := t.SignedString(is.key)
	Check(err)
	return s
}

// Stop sends SIGTERM and waits, killing the process after 10 s.
func Stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Addr is a free loopback address below 32768 (above it the kernel picks client ports).
func Addr() string {
	a, err := testutil.LowAddr()
	Check(err)
	return a
}

// Check ends the program on an error.
func Check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
