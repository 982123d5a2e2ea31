package xds

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus"
)

// Client is one stream connected to the control plane, as the status page shows it.
type Client struct {
	Stream uint64    `json:"stream"`
	Node   string    `json:"node"` // "" when the stream named none
	Group  string    `json:"group"`
	Kind   string    `json:"kind"` // envoy or grpc (proxyless)
	Since  time.Time `json:"since"`
	// Answers are its last answer to each type, by type.
	Answers []Answer `json:"answers"`
}

// Answer is a client's last answer to the responses of one type.
type Answer struct {
	Type    string    `json:"type"` // short: Listener, Cluster, ...
	Version string    `json:"version"`
	Acked   bool      `json:"acked"`
	Error   string    `json:"error,omitempty"` // a NACK's message
	At      time.Time `json:"at"`
}

// clients are the streams connected, heard from the ads hooks.
type clients struct {
	mu sync.Mutex
	m  map[uint64]*Client
}

func newClients() *clients { return &clients{m: map[uint64]*Client{}} }

// seen records a stream's node the first time it names one (a stream that names none is
// in the default group).
func (c *clients) seen(stream uint64, n *corev3.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.m[stream]
	if cl == nil {
		cl = &Client{Stream: stream, Group: DefaultGroup, Kind: kindEnvoy, Since: time.Now()}
		c.m[stream] = cl
	}
	if n != nil && cl.Node == "" {
		cl.Node, cl.Group, cl.Kind = n.GetId(), GroupOf(n), clientKind(n)
	}
}

func (c *clients) answered(stream uint64, typeURL, version string, acked bool, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.m[stream]
	if cl == nil {
		return
	}
	a := Answer{Type: shortType(typeURL), Version: version, Acked: acked, Error: msg, At: time.Now()}
	for i := range cl.Answers {
		if cl.Answers[i].Type == a.Type {
			cl.Answers[i] = a
			return
		}
	}
	cl.Answers = append(cl.Answers, a)
	slices.SortFunc(cl.Answers, func(x, y Answer) int { return cmp.Compare(x.Type, y.Type) })
}

func (c *clients) ended(stream uint64) {
	c.mu.Lock()
	delete(c.m, stream)
	c.mu.Unlock()
}

// list is every client, by group, then node, then stream.
func (c *clients) list() []Client {
	c.mu.Lock()
	out := make([]Client, 0, len(c.m))
	for _, cl := range c.m {
		cp := *cl
		cp.Answers = slices.Clone(cl.Answers)
		out = append(out, cp)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(x, y Client) int {
		return cmp.Or(cmp.Compare(x.Group, y.Group), cmp.Compare(x.Node, y.Node), cmp.Compare(x.Stream, y.Stream))
	})
	return out
}

// Clients are the streams connected now.
func (s *Server) Clients() []Client { return s.clients.list() }

// fleet exposes the connected clients and the groups' snapshot ages as metrics, read when
// scraped.
type fleet struct {
	s                          *Server
	connected, versions, since *prometheus.Desc
}

func newFleet(s *Server) *fleet {
	return &fleet{s: s,
		connected: prometheus.NewDesc("tollgate_xds_clients",
			"Clients (Envoys, proxyless gRPC) connected, by gateway group: distinct node ids.", []string{"group"}, nil),
		versions: prometheus.NewDesc("tollgate_xds_client_versions",
			"Connected clients by the version of each type they last answered, and whether they ACKed or NACKed it.",
			[]string{"group", "type", "version", "state"}, nil),
		since: prometheus.NewDesc("tollgate_xds_snapshot_age_seconds",
			"Seconds since a group's configuration was last published.", []string{"group"}, nil),
	}
}

func (f *fleet) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.connected
	ch <- f.versions
	ch <- f.since
}

func (f *fleet) Collect(ch chan<- prometheus.Metric) {
	type versionKey struct{ group, typ, version, state string }
	nodes := map[string]map[string]bool{} // group → node ids
	versions := map[versionKey]map[string]bool{}
	for _, cl := range f.s.clients.list() {
		id := cl.Node
		if id == "" {
			id = "stream " + strconv.FormatUint(cl.Stream, 10)
		}
		if nodes[cl.Group] == nil {
			nodes[cl.Group] = map[string]bool{}
		}
		nodes[cl.Group][id] = true
		for _, a := range cl.Answers {
			k := versionKey{cl.Group, a.Type, a.Version, "nacked"}
			if a.Acked {
				k.state = "acked"
			}
			if versions[k] == nil {
				versions[k] = map[string]bool{}
			}
			versions[k][id] = true
		}
	}
	for g, ids := range nodes {
		ch <- prometheus.MustNewConstMetric(f.connected, prometheus.GaugeValue, float64(len(ids)), g)
	}
	for k, ids := range versions {
		ch <- prometheus.MustNewConstMetric(f.versions, prometheus.GaugeValue, float64(len(ids)), k.group, k.typ, k.version, k.state)
	}
	f.s.mu.Lock()
	ages := map[string]float64{}
	for name, g := range f.s.groups {
		if !g.published.IsZero() {
			ages[name] = time.Since(g.published).Seconds()
		}
	}
	f.s.mu.Unlock()
	for g, age := range ages {
		ch <- prometheus.MustNewConstMetric(f.since, prometheus.GaugeValue, age, g)
	}
}
