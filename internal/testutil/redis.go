package testutil

import (
	"net"
	"os/exec"
	"syscall"
	"testing"
)

// Redis is a real redis-server on a random loopback port, for one test.
type Redis struct {
	t    testing.TB
	Addr string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server (no persistence); it stops when the test ends. `make test`
// installs redis-server when it is missing.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server not found: run `make test`, which installs it (apt-get install redis-server)")
	}
	r := &Redis{t: t, Addr: FreeAddr(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server on its address.
func (r *Redis) Start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	r.cmd = startProcess(r.t, r.Addr, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
}

// Stop kills the server.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// Pause freezes the server (SIGSTOP): connections stay open and calls hang, as behind a
// network partition. Resume undoes it.
func (r *Redis) Pause() { r.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused server go on.
func (r *Redis) Resume() { r.cmd.Process.Signal(syscall.SIGCONT) }
