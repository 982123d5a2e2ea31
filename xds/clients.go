package xds

import (
	"cmp"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-gw/tollgate/internal/status"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// Client, Answer and Group are what the status page shows of the control plane
// (internal/status): the control plane fills them in.
type (
	Client = status.Client
	Answer = status.Answer
	Group  = status.Group
)

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

// Groups are the groups served, by name.
func (s *Server) Groups() []Group {
	s.mu.Lock()
	var out []Group
	for name, g := range s.groups {
		out = append(out, Group{Name: name, Published: g.published, Versions: map[string]string{}})
	}
	s.mu.Unlock()
	s.tablesMu.RLock()
	for i := range out {
		for k, t := range s.tables {
			if k.group == out[i].Name && (k.kind == kindEnvoy || k.kind == kindEndpoints) {
				out[i].Versions[shortType(k.typeURL)] = t.Version()
			}
		}
	}
	s.tablesMu.RUnlock()
	slices.SortFunc(out, func(x, y Group) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// Discovery is each discovery key followed (endpoints/ in etcd, Kubernetes Services) with
// its live addresses ("host:port", with the weight when not 1), or the reason its value
// cannot be used.
func (s *Server) Discovery() map[string][]string {
	s.mu.Lock()
	raw := maps.Clone(s.discovery)
	s.mu.Unlock()
	out := make(map[string][]string, len(raw))
	for k, v := range raw {
		ts, err := store.ParseDiscovery(v)
		if err != nil {
			out[k] = []string{"unusable: " + err.Error()}
			continue
		}
		addrs := make([]string, 0, len(ts))
		for _, t := range ts {
			a := net.JoinHostPort(t.Host, strconv.FormatUint(uint64(t.Port), 10))
			if t.Weight > 1 {
				a += " ×" + strconv.FormatUint(uint64(t.Weight), 10)
			}
			addrs = append(addrs, a)
		}
		out[k] = addrs
	}
	return out
}
