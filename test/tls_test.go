package test

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// TLS and mutual TLS on Tollgate's own gRPC ports (issue 24), over the binary: a client
// with a certificate from the configured client CA is served on the ext_authz and the ADS
// ports; a client without one, with one from another CA, or in plaintext is refused at the
// handshake. The server certificate is rotated under a live ADS stream: new connections
// get the new certificate, and the stream goes on receiving updates.
func TestTLSOnTollgatesOwnPorts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, other := testutil.NewCA(t, "Tollgate ports CA"), testutil.NewCA(t, "Someone else")
	serverCert, serverKey, first := ca.Issue("tollgate", []string{"localhost"}, "127.0.0.1")
	clientCert, clientKey, _ := ca.Issue("envoy-1", nil)
	strangerCert, strangerKey, _ := other.Issue("stranger", nil)
	files := map[string][]byte{"ca.pem": ca.PEM(), "server.pem": serverCert, "server-key.pem": serverKey}
	for name, b := range files {
		write(t, dir, name, string(b))
	}
	tlsBlock := "{certFile: " + filepath.Join(dir, "server.pem") + ", keyFile: " + filepath.Join(dir, "server-key.pem") + ", clientCAFile: " + filepath.Join(dir, "ca.pem") + "}"
	p := newPorts(t)
	cfg := write(t, dir, "tollgate.yaml", `dataDir: `+filepath.Join(dir, "data")+`
etcd: {embeddedClientAddr: `+p.etcd+`, embeddedPeerAddr: `+p.peer+`}
authz: {listen: `+p.authz+`, serverTLS: `+tlsBlock+`}
xds: {listen: `+p.xds+`, serverTLS: `+tlsBlock+`}
admin: {listen: `+p.admin+`}
log: {level: info, format: json}
`)
	startTollgate(t, "run", "--config", cfg, "-f", "../examples/coffeebar/coffeebar.yaml")
	waitReady(t, "http://"+p.admin+"/readyz")

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	pair := func(c, k []byte) []tls.Certificate {
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{kp}
	}
	dial := func(addr string, certs []tls.Certificate) *grpc.ClientConn {
		creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: certs, MinVersion: tls.VersionTLS12})
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	check := func(conn *grpc.ClientConn) error {
		_, err := authv3.NewAuthorizationClient(conn).Check(t.Context(), extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu", Host: "localhost"}))
		return err
	}
	if err := check(dial(p.authz, pair(clientCert, clientKey))); err != nil {
		t.Fatalf("ext_authz over mutual TLS: %v", err)
	}
	// tollgate check, as the README shows it, over mutual TLS.
	write(t, dir, "client.pem", string(clientCert))
	write(t, dir, "client-key.pem", string(clientKey))
	if o := tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/menu", "--ca", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, "client.pem"),
		"--key", filepath.Join(dir, "client-key.pem"), "--server-name", "localhost"); !strings.Contains(o.stdout, "DENIED 401") {
		t.Errorf("tollgate check over mutual TLS: %s%s", o.stdout, o.stderr)
	}
	if o := tollgate(t, "check", "--config", cfg, "--path", "/coffeebar/v1/menu"); o.code == 0 || !strings.Contains(o.stderr, "--ca") {
		t.Errorf("tollgate check without --ca against a TLS port: %d %s", o.code, o.stderr)
	}
	plain, _ := grpc.NewClient(p.authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer plain.Close()
	for name, conn := range map[string]*grpc.ClientConn{
		"no client certificate":               dial(p.authz, nil),
		"a certificate from another CA":       dial(p.authz, pair(strangerCert, strangerKey)),
		"plaintext":                           plain,
		"no client certificate (ADS)":         dial(p.xds, nil),
		"a certificate from another CA (ADS)": dial(p.xds, pair(strangerCert, strangerKey)),
	} {
		if err := check(conn); err == nil && !strings.Contains(name, "ADS") {
			t.Errorf("ext_authz with %s: served", name)
		}
		if strings.Contains(name, "ADS") {
			st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(t.Context())
			if err == nil {
				err = st.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "x", Cluster: "default"}, TypeUrl: resourcev3.ClusterType})
			}
			if err == nil {
				_, err = st.Recv()
			}
			if err == nil {
				t.Errorf("ADS with %s: served", name)
			}
		}
	}

	// A live ADS stream over mutual TLS.
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(dial(p.xds, pair(clientCert, clientKey))).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "envoy-1", Cluster: "default"}, TypeUrl: resourcev3.ClusterType}
	if err := st.Send(req); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatalf("ADS over mutual TLS: %v", err)
	}
	before := len(resp.Resources)
	st.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce})

	// Rotate the server certificate: new connections get it within the reload interval.
	renewed, renewedKey, second := ca.Issue("tollgate", []string{"localhost"}, "127.0.0.1")
	for name, b := range map[string][]byte{"server.pem": renewed, "server-key.pem": renewedKey} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	served := func() *big.Int {
		c, err := tls.Dial("tcp", p.xds, &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: pair(clientCert, clientKey), NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatalf("a new connection after the rotation: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber
	}
	deadline := time.Now().Add(20 * time.Second)
	for served().Cmp(second.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("new connections still get serial %v, not the renewed %v, after 20 s", first.SerialNumber, second.SerialNumber)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The stream opened before the rotation is still served: a new API reaches it.
	if o := tollgate(t, "apply", "--config", cfg, "--etcd", p.etcd, "-f", "../examples/petstore/petstore.yaml"); o.code != 0 {
		t.Fatalf("apply: %s%s", o.stdout, o.stderr)
	}
	resp, err = st.Recv()
	if err != nil || len(resp.Resources) <= before {
		t.Fatalf("the ADS stream opened before the rotation: %v, %d clusters (had %d)", err, len(resp.GetResources()), before)
	}
	if !strings.Contains(get(t, "http://"+p.admin+"/metrics"), `tollgate_tls_reloads_total{port="xds",result="ok"}`) {
		t.Errorf("the reload is not counted")
	}
}

// admin.tls: the admin port over HTTPS, with a client CA mutual TLS — a probe with a
// certificate reads /readyz and /metrics, one without does not, and plain HTTP is refused.
func TestAdminPortOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testutil.NewCA(t, "admin CA")
	cert, key, _ := ca.Issue("tollgate", []string{"localhost"}, "127.0.0.1")
	probeCert, probeKey, _ := ca.Issue("prometheus", nil)
	write(t, dir, "ca.pem", string(ca.PEM()))
	write(t, dir, "admin.pem", string(cert))
	write(t, dir, "admin-key.pem", string(key))
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "", ", tls: {certFile: "+filepath.Join(dir, "admin.pem")+", keyFile: "+filepath.Join(dir, "admin-key.pem")+", clientCAFile: "+filepath.Join(dir, "ca.pem")+"}")
	srv := startTollgate(t, "run", "--config", cfg)
	srv.waitUp()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := func(certs []tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	}
	kp, err := tls.X509KeyPair(probeCert, probeKey)
	if err != nil {
		t.Fatal(err)
	}
	probe := client([]tls.Certificate{kp})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := probe.Get("https://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz over mutual TLS: %v %v", resp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp, err := probe.Get("https://" + p.admin + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/metrics over mutual TLS: %v %v", resp, err)
	}
	if _, err := client(nil).Get("https://" + p.admin + "/readyz"); err == nil {
		t.Errorf("the admin port served a client without a certificate")
	}
	if resp, err := http.Get("http://" + p.admin + "/readyz"); err == nil && resp.StatusCode == 200 {
		t.Errorf("the admin port answered plain HTTP")
	}
}

// TLS without a client CA: any client that trusts the port's CA is served, a plaintext one
// is not, and one that does not trust the CA refuses the port.
func TestServerTLSWithoutClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testutil.NewCA(t, "authz CA")
	cert, key, _ := ca.Issue("tollgate", []string{"localhost"}, "127.0.0.1")
	write(t, dir, "authz.pem", string(cert))
	write(t, dir, "authz-key.pem", string(key))
	p := newPorts(t)
	base := serverConfig(t, dir, "run.yaml", p, "")
	b, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg := write(t, dir, "run.yaml", strings.Replace(string(b), "authz: {listen: "+p.authz+"}",
		"authz: {listen: "+p.authz+", serverTLS: {certFile: "+filepath.Join(dir, "authz.pem")+", keyFile: "+filepath.Join(dir, "authz-key.pem")+"}}", 1))
	startTollgate(t, "run", "--config", cfg, "-f", "../examples/coffeebar/coffeebar.yaml")
	waitReady(t, "http://"+p.admin+"/readyz")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	check := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient(p.authz, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = authv3.NewAuthorizationClient(conn).Check(t.Context(), extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: "/coffeebar/v1/menu", Host: "localhost"}))
		return err
	}
	if err := check(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "localhost"})); err != nil {
		t.Errorf("a TLS client without a certificate: %v", err)
	}
	if err := check(insecure.NewCredentials()); err == nil {
		t.Errorf("a plaintext client was served")
	}
	if err := check(credentials.NewTLS(&tls.Config{ServerName: "localhost"})); err == nil {
		t.Errorf("a client that does not trust the port's CA was served")
	}
}
