package xds

import (
	"context"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
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

// callbacks watch the streams: they add groups as nodes appear, and turn a NACK into a
// request for the version that was refused, so that go-control-plane waits for a new
// version instead of resending the refused one at once (a NACK storm).
type callbacks struct {
	s  *Server
	mu sync.Mutex
	// sent is the last response per stream and type: its nonce and version.
	sent map[int64]map[string]sentResponse
	// nacked remembers (group, type, version) already logged, so each is logged once.
	nacked map[string]bool
}

type sentResponse struct{ nonce, version string }

func newCallbacks(s *Server) *callbacks {
	return &callbacks{s: s, sent: map[int64]map[string]sentResponse{}, nacked: map[string]bool{}}
}

func (c *callbacks) OnStreamOpen(context.Context, int64, string) error { return nil }

func (c *callbacks) OnStreamClosed(id int64, _ *corev3.Node) {
	c.mu.Lock()
	delete(c.sent, id)
	c.mu.Unlock()
}

func (c *callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	c.s.addGroup(GroupOf(req.GetNode()))
	if req.GetErrorDetail() == nil {
		return nil
	}
	c.mu.Lock()
	last, ok := c.sent[id][req.GetTypeUrl()]
	c.mu.Unlock()
	if !ok || last.nonce != req.GetResponseNonce() {
		return nil
	}
	c.nack(req.GetNode(), req.GetTypeUrl(), last.version, req.GetErrorDetail().GetMessage())
	// Present the client as holding the refused version: the cache answers only when the
	// version changes.
	req.VersionInfo = last.version
	return nil
}

func (c *callbacks) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.sent[id]
	if m == nil {
		m = map[string]sentResponse{}
		c.sent[id] = m
	}
	m[resp.GetTypeUrl()] = sentResponse{nonce: resp.GetNonce(), version: resp.GetVersionInfo()}
	c.s.m.responses.WithLabelValues(shortType(resp.GetTypeUrl())).Inc()
}

func (c *callbacks) OnDeltaStreamOpen(context.Context, int64, string) error { return nil }
func (c *callbacks) OnDeltaStreamClosed(int64, *corev3.Node)                {}

func (c *callbacks) OnStreamDeltaRequest(_ int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	c.s.addGroup(GroupOf(req.GetNode()))
	if req.GetErrorDetail() != nil {
		c.nack(req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage())
	}
	return nil
}

func (c *callbacks) OnStreamDeltaResponse(_ int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.s.m.responses.WithLabelValues(shortType(resp.GetTypeUrl())).Inc()
}

func (c *callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error { return nil }
func (c *callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {
}

func (c *callbacks) nack(node *corev3.Node, typeURL, version, msg string) {
	c.s.m.nacks.WithLabelValues(shortType(typeURL)).Inc()
	key := GroupOf(node) + "|" + typeURL + "|" + version
	c.mu.Lock()
	seen := c.nacked[key]
	c.nacked[key] = true
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
