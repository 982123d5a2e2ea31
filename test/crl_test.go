package test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// A renewed CRL file takes effect in the running enforcer without a restart (RFC 5280
// §6.3: the current CRL decides), and a broken one leaves the last good list in force,
// counted on /metrics.
func TestCRLFilesRefreshWithoutARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testutil.NewCA(t, "Test CA")
	leafPEM, _, leaf := ca.Issue("client-13", nil)
	_, _, other := ca.Issue("client-12", nil)
	caFile := write(t, dir, "ca.pem", string(ca.PEM()))
	crlFile := write(t, dir, "crl.pem", string(ca.CRL(other.SerialNumber)))
	api := write(t, dir, "vault.yaml", `openapi: 3.0.3
info: {title: Vault, version: v1}
x-tollgate-mutual-tls: required
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
paths: {/box: {get: {security: [], responses: {"200": {description: ok}}}}}
`)
	p := newPorts(t)
	cfg := write(t, dir, "tollgate.yaml", `dataDir: `+filepath.Join(dir, "data")+`
etcd: {embeddedClientAddr: `+p.etcd+`, embeddedPeerAddr: `+p.peer+`}
authz: {listen: `+p.authz+`, mutualTLS: {caFiles: [`+caFile+`], crlFiles: [`+crlFile+`]}}
xds: {listen: `+p.xds+`}
admin: {listen: `+p.admin+`}
log: {level: info, format: json}
`)
	startTollgate(t, "run", "--config", cfg, "-f", api)
	waitReady(t, "http://"+p.admin+"/readyz")
	conn, err := grpc.NewClient(p.authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cert := url.QueryEscape(string(leafPEM))
	status := func() int {
		req := extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/vault/v1/box", Host: "localhost"})
		req.Attributes.Source.Certificate = cert
		resp, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetOkResponse() != nil {
			return 200
		}
		return int(resp.GetDeniedResponse().GetStatus().GetCode())
	}
	if got := status(); got != 200 {
		t.Fatalf("the client's certificate, not revoked: %d", got)
	}
	replace := func(b []byte) {
		fi, _ := os.Stat(crlFile)
		if err := os.WriteFile(crlFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
		later := fi.ModTime().Add(time.Second)
		os.Chtimes(crlFile, later, later)
	}
	replace(ca.CRL(other.SerialNumber, leaf.SerialNumber))
	deadline := time.Now().Add(30 * time.Second)
	for status() != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the renewed CRL revoking the client's certificate did not take effect within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	replace([]byte("-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n"))
	rejected := regexp.MustCompile(`tollgate_mtls_crl_reloads_total\{result="rejected"\} (\d+)`)
	deadline = time.Now().Add(30 * time.Second)
	for {
		m := rejected.FindStringSubmatch(get(t, "http://"+p.admin+"/metrics"))
		if m != nil {
			if n, _ := strconv.Atoi(m[1]); n > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("a broken CRL file was not counted within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := status(); got != 401 {
		t.Errorf("after a broken CRL file: %d, want the last good list (the client's certificate revoked) to stay", got)
	}
}
