package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freeAddr is a loopback address nobody listens on (yet).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess starts redis-server with args and waits until addr accepts connections; it
// is killed when the test ends.
func startProcess(t testing.TB, addr string, args ...string) {
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
			return
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
		addr := freeAddr(t)
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

// StartRedisSentinel starts a Redis master and one Sentinel watching it as master; it
// returns the Sentinel's address.
func StartRedisSentinel(t testing.TB, master string) (sentinel, masterAddr string) {
	t.Helper()
	dir := t.TempDir()
	masterAddr = freeAddr(t)
	_, mport, _ := net.SplitHostPort(masterAddr)
	startProcess(t, masterAddr, "--port", mport, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	sentinel = freeAddr(t)
	_, sport, _ := net.SplitHostPort(sentinel)
	conf := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %s 1\nsentinel down-after-milliseconds %s 1000\n",
		sport, dir, master, mport, master)), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, sentinel, conf, "--sentinel")
	Eventually(t, "the sentinel knows the master", func() bool {
		return strings.Contains(cli(t, sentinel, "sentinel", "get-master-addr-by-name", master), mport)
	})
	return sentinel, masterAddr
}
