package testutil

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/store"
)

// EtcdCluster is a real etcd cluster of several embedded members in this process, on
// loopback ports below 32768, for fault drills: stop members to take away the quorum.
type EtcdCluster struct {
	t       testing.TB
	cfgs    []store.EmbeddedConfig
	mu      sync.Mutex
	members []*store.Embedded
}

// StartEtcdCluster starts n members; they stop when the test ends.
func StartEtcdCluster(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	c := &EtcdCluster{t: t, members: make([]*store.Embedded, n)}
	var initial []string
	for i := range n {
		cfg := store.EmbeddedConfig{Dir: t.TempDir(), ClientAddr: FreeAddr(t), PeerAddr: FreeAddr(t), NoFsync: true, Name: fmt.Sprintf("m%d", i)}
		c.cfgs = append(c.cfgs, cfg)
		initial = append(initial, cfg.Name+"=http://"+cfg.PeerAddr)
	}
	for i := range c.cfgs {
		c.cfgs[i].InitialCluster = strings.Join(initial, ",")
	}
	c.Start(allMembers(n)...)
	t.Cleanup(func() { c.Stop(allMembers(n)...) })
	return c
}

func allMembers(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// Start (re)starts members together (a member alone cannot be ready without a quorum).
func (c *EtcdCluster) Start(members ...int) {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(members))
	for j, i := range members {
		wg.Go(func() {
			srv, err := store.StartEmbedded(c.cfgs[i], zap.NewNop())
			errs[j] = err
			c.mu.Lock()
			c.members[i] = srv
			c.mu.Unlock()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.t.Fatal(err)
		}
	}
}

// Stop stops members at once, keeping their data.
func (c *EtcdCluster) Stop(members ...int) {
	var wg sync.WaitGroup
	for _, i := range members {
		c.mu.Lock()
		srv := c.members[i]
		c.members[i] = nil
		c.mu.Unlock()
		if srv != nil {
			wg.Go(srv.Close)
		}
	}
	wg.Wait()
}

// Endpoints are the members' client URLs.
func (c *EtcdCluster) Endpoints() []string {
	out := make([]string, len(c.cfgs))
	for i, cfg := range c.cfgs {
		out[i] = "http://" + cfg.ClientAddr
	}
	return out
}
