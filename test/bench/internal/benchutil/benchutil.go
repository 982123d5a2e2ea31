// Package benchutil holds what the load programs share: the do-nothing Check server (the
// floor), an RS256 issuer (its JWKS served on loopback, tokens signed with its key), a work
// directory with the binary built into it, reading a process's CPU time, waiting for a
// port, fetching profiles, and stopping a server process the way a service manager does.
package benchutil

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// WorkDir is a new temporary directory for a load program, and the func that removes it
// (or, with keep, prints where it is and leaves it).
func WorkDir(name string, keep bool) (string, func()) {
	dir, err := os.MkdirTemp("", "tollgate-bench-"+name)
	Check(err)
	if keep {
		fmt.Fprintln(os.Stderr, "working directory:", dir)
		return dir, func() {}
	}
	return dir, func() { os.RemoveAll(dir) }
}

// Binary builds ./cmd/tollgate into dir and returns its path.
func Binary(dir string) string {
	bin := filepath.Join(dir, "tollgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tollgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	Check(build.Run())
	return bin
}

// CPUOf is a process's user + system CPU time from /proc/PID/stat.
func CPUOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	Check(err)
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // after "pid (comm) "
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// WaitTCP waits until a accepts connections.
func WaitTCP(a string) {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			return
		}
	}
	Check(fmt.Errorf("%s did not start listening", a))
}

// Fetch writes the body of a GET of url into file (a profile from an admin port, say).
func Fetch(url, file string) {
	resp, err := http.Get(url)
	Check(err)
	defer resp.Body.Close()
	f, err := os.Create(file)
	Check(err)
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	Check(err)
}

// Server is where one server of a load program listens (Etcd: its embedded etcd's client
// address).
type Server struct{ Etcd, Authz, XDS, Admin string }

// WriteConfig writes the tollgate.yaml of one server of a load program to path: its data in
// dataDir; etcd.endpoints when etcd is not "" (else the embedded etcd serves); the embedded
// etcd, authz, xds and admin on s's addresses (free loopback ones below 32768 where empty,
// filled in); profiling on; then extra (YAML).
func WriteConfig(path, dataDir, etcd string, s *Server, extra string) {
	for _, a := range []*string{&s.Etcd, &s.Authz, &s.XDS, &s.Admin} {
		if *a == "" {
			*a = Addr()
		}
	}
	endpoints := ""
	if etcd != "" {
		endpoints = "endpoints: [" + etcd + "], "
	}
	Check(os.WriteFile(path, []byte(fmt.Sprintf(`dataDir: %s
etcd: {%sembeddedClientAddr: %s, embeddedPeerAddr: %s}
authz: {listen: %s}
xds: {listen: %s}
admin: {listen: %s, profiling: true}
%s`, dataDir, endpoints, s.Etcd, Addr(), s.Authz, s.XDS, s.Admin, extra)), 0o644))
}
