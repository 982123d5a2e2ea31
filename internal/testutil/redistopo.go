package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FreeAddr is a loopback address nobody listens on (yet).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// NewHTTPServer is httptest.NewServer on a port below 32768 (see ListenLow); it closes
// when the test ends.
func NewHTTPServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	l, err := ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// LowAddr is a free loopback address below 32768 (see ListenLow).
func LowAddr() (string, error) {
	l, err := ListenLow()
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ListenLow listens on a free loopback port below 32768: the range above is where the
// kernel picks client ports, so a port found free there may be taken by an outgoing
// connection before a server binds it. Tests and benchmarks listen here.
func ListenLow() (net.Listener, error) {
	var err error
	for range 200 {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(10000+rand.IntN(22000))); err == nil {
			return l, nil
		}
	}
	return nil, fmt.Errorf("no free port below 32768: %w", err)
}

// clusterAddr is a free loopback address for a Redis Cluster node whose bus port (the
// port + 10000) is free too and below 32768 as well: a bus port in the kernel's client range
// can be taken by an outgoing connection, and the node then exits at start.
func clusterAddr(t testing.TB) string {
	t.Helper()
	for range 200 {
		port := 10000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return l.Addr().String()
	}
	t.Fatal("no free port pair for a Redis Cluster node")
	return ""
}

// startProcess starts redis-server with args and waits until addr accepts connections; it
// is killed when the test ends (if nothing killed it before).
func startProcess(t testing.TB, addr string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cli(t testing.TB, addr string, args ...string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v %s", args, err, out)
	}
	return string(out)
}

// StartRedisCluster starts a Redis Cluster of n masters (no replicas) on random loopback
// ports and returns their addresses once every slot is served.
func StartRedisCluster(t testing.TB, n int) []string {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatal("redis-cli not found: run `make test`, which installs redis-server (and redis-tools)")
	}
	dir := t.TempDir()
	var addrs []string
	for range n {
		addr := clusterAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		startProcess(t, addr, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes-"+port+".conf"), "--dir", dir)
		addrs = append(addrs, addr)
	}
	cli(t, addrs[0], append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	Eventually(t, "the cluster serves every slot", func() bool {
		for _, a := range addrs {
			if !strings.Contains(cli(t, a, "cluster", "info"), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	return addrs
}

// Sentinel is a Redis master with a replica, watched by one Sentinel.
type Sentinel struct {
	Addr, Master string // the Sentinel's address and the master's name
	master       *exec.Cmd
	t            testing.TB
}

// StartRedisSentinel starts a master, its replica and a Sentinel that fails over to the
// replica a second after the master stops answering.
func StartRedisSentinel(t testing.TB, name string) *Sentinel {
	t.Helper()
	dir := t.TempDir()
	masterAddr, replicaAddr := FreeAddr(t), FreeAddr(t)
	_, mport, _ := net.SplitHostPort(masterAddr)
	_, rport, _ := net.SplitHostPort(replicaAddr)
	s := &Sentinel{Master: name, t: t}
	s.master = startProcess(t, masterAddr, "--port", mport, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	startProcess(t, replicaAddr, "--port", rport, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
		"--replicaof", "127.0.0.1", mport)
	s.Addr = FreeAddr(t)
	_, sport, _ := net.SplitHostPort(s.Addr)
	conf := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\n"+
		"sentinel monitor %s 127.0.0.1 %s 1\nsentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 3000\n",
		sport, dir, name, mport, name, name)), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, s.Addr, conf, "--sentinel")
	Eventually(t, "the sentinel knows the master and its replica", func() bool {
		return strings.Contains(cli(t, s.Addr, "sentinel", "get-master-addr-by-name", name), mport) &&
			strings.Contains(cli(t, s.Addr, "sentinel", "replicas", name), rport)
	})
	return s
}

// KillMaster kills the master; the Sentinel promotes the replica.
func (s *Sentinel) KillMaster() {
	s.master.Process.Kill()
	s.master.Wait()
}

// StartRedisTLS starts a redis-server that speaks only TLS, with a certificate for
// 127.0.0.1 from a CA of its own; it returns the address and the CA's PEM file.
func StartRedisTLS(t testing.TB) (addr, caFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test redis CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(crand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile = write("ca.pem", "CERTIFICATE", caDER)
	cert, keyFile := write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
	addr = FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	startProcess(t, addr, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--tls-cert-file", cert, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile, "--tls-auth-clients", "no", "--dir", dir)
	return addr, caFile
}
