package xds

import (
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"
)

// GroupOf is the gateway group of a node: the node metadata field "tollgate_group" if set,
// else the node's cluster, else DefaultGroup. Caches are kept per group, so a thousand
// Envoys of one group share them.
func GroupOf(n *corev3.Node) string {
	if g := n.GetMetadata().GetFields()["tollgate_group"].GetStringValue(); g != "" {
		return g
	}
	if c := n.GetCluster(); c != "" {
		return c
	}
	return DefaultGroup
}

// hooks hear what the streams do (xds/ads): they add groups as nodes appear, log each
// refused version once, and count.
type hooks struct {
	s  *Server
	mu sync.Mutex
	// nacked is the version last logged as refused per group and type: the Envoys of a
	// group refusing one version log it once. It holds one entry per group (at most
	// MaxGroups) and type, however many versions are refused over time.
	nacked map[nackKey]string
}

type nackKey struct{ group, typeURL string }

func newHooks(s *Server) *hooks { return &hooks{s: s, nacked: map[nackKey]string{}} }

func (c *hooks) Node(stream uint64, n *corev3.Node) error {
	if err := c.s.addGroup(GroupOf(n)); err != nil {
		return err
	}
	c.s.clients.seen(stream, n)
	return nil
}

func (c *hooks) Acked(stream uint64, _ *corev3.Node, typeURL, version string) {
	c.s.clients.answered(stream, typeURL, version, true, "")
}

func (c *hooks) Ended(stream uint64) { c.s.clients.ended(stream) }

func (c *hooks) Sent(typeURL string) { c.s.m.responses.WithLabelValues(shortType(typeURL)).Inc() }

func (c *hooks) Refused(stream uint64, node *corev3.Node, typeURL, version, msg string) {
	c.s.m.nacks.WithLabelValues(shortType(typeURL)).Inc()
	c.s.clients.answered(stream, typeURL, version, false, msg)
	key := nackKey{GroupOf(node), typeURL}
	c.mu.Lock()
	seen := c.nacked[key] == version
	c.nacked[key] = version
	c.mu.Unlock()
	if !seen {
		c.s.log.Error("Envoy refused a configuration (NACK); it will not be resent",
			zap.String("node", node.GetId()), zap.String("group", GroupOf(node)),
			zap.String("type", typeURL), zap.String("version", version), zap.String("error", msg))
	}
}

func shortType(typeURL string) string {
	for i := len(typeURL) - 1; i >= 0; i-- {
		if typeURL[i] == '.' {
			return typeURL[i+1:]
		}
	}
	return typeURL
}
