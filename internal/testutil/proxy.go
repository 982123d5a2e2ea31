package testutil

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on loopback that a test can cut and restore, to take a server away
// from one client while others still reach it.
type Proxy struct {
	t      testing.TB
	lis    net.Listener
	target string

	mu    sync.Mutex
	up    bool
	conns []net.Conn
}

// NewProxy forwards a random loopback port to target; it closes when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	lis, err := ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, lis: lis, target: target, up: true}
	go p.accept()
	t.Cleanup(func() { lis.Close(); p.Cut() })
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = false
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.up = true
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		up := p.up
		p.mu.Unlock()
		if !up {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}
