// Package xds is the control plane: it turns the live API catalogue and the endpoint values
// in etcd into Envoy resources (xds/build), checks them (xds/validate), and serves them over
// ADS, state-of-the-world and delta, with xds/ads's stream servers over xds/rescache: each
// gateway group (Envoy node cluster) has one cache per client kind and resource type,
// shared by every client of the group, each resource marshalled once for all of them; only
// what changed is sent, so an endpoint change sends that cluster's assignment and nothing
// else. A set that fails validation keeps the last good one in force. NACKed versions are
// not resent to the node that refused them.
package xds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/defaults"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/xds/ads"
	"github.com/tollgate-gw/tollgate/xds/build"
	"github.com/tollgate-gw/tollgate/xds/rescache"
	"github.com/tollgate-gw/tollgate/xds/validate"
)

// Config configures the control plane.
type Config struct {
	Build   build.Options
	Secrets []store.Secret
	// Groups are gateway groups to build for from the start; groups of connecting nodes are
	// added as they appear.
	Groups []string
	// Debounce gathers a burst of changes into one build (default 2ms).
	Debounce time.Duration
	// MaxGroups bounds the groups served (default defaults.MaxGroups): every group is
	// built on each configuration change, and a node names its group itself.
	MaxGroups int
}

// DefaultGroup serves nodes that name no cluster.
const DefaultGroup = defaults.NodeGroup

// Server is the control plane.
type Server struct {
	cfg Config
	log *zap.Logger
	// Envoys get the gateway's listeners, route tables, clusters and secrets; proxyless
	// gRPC clients get the API listeners and their routes and clusters; both get the
	// same endpoints. One cache per (group, client kind, type), made on first use.
	tablesMu sync.RWMutex
	tables   map[tableKey]*rescache.Cache
	prefix   string
	names    *rescache.Names // the names the tables hold, shared with the request decoder
	m        *metrics
	hooks    *hooks
	clients  *clients

	mu        sync.Mutex
	catalog   *apimodel.Catalog
	discovery map[string]string
	groups    map[string]*group
	// changed is what happened since the last publish.
	changed change
	// secrets are the TLS secrets stored in etcd, by name.
	secrets map[string]store.Secret
	kick    chan struct{}
	// Nothing is published before the catalogue and every sink handed out (Endpoints,
	// Secrets) have had their first Reset: resources built from part of the state would
	// tell Envoy to drop what it has. With nothing published, xDS requests wait.
	haveCatalog bool
	pending     map[string]bool
	// refused counts nodes refused for naming a group beyond MaxGroups.
	refused       int
	refusedLogged time.Time
}

// change is what happened since the last publish. Config (the catalogue, secrets, a
// discovery value whose scheme or path changed) means every group's resources are rebuilt;
// keys are the discovery keys whose addresses changed, and only the assignments of the sets
// that use them are rebuilt; fresh means a group was added, and that group (which has
// nothing built yet) is built in full.
type change struct {
	config bool
	keys   map[string]bool
	// fresh: a group was added; it is built in full, the others are left as they are
	// (but for keys).
	fresh bool
}

// all marks everything to rebuild.
func (c *change) all() { c.config, c.keys = true, nil }

// key marks the assignments that use discovery key k to rebuild.
func (c *change) key(k string) {
	if c.config {
		return
	}
	if c.keys == nil {
		c.keys = map[string]bool{}
	}
	c.keys[k] = true
}

func (c change) none() bool { return !c.config && len(c.keys) == 0 && !c.fresh }

// group is what was last published for one gateway group: its build, its endpoints, and
// the resources of each client kind by type.
type group struct {
	cfg   *build.Config
	eds   []types.Resource
	kinds [2]kindResources // envoy, grpc
	// published is when it was handed to the caches.
	published time.Time
}

// kindResources are one client kind's resources, by type.
type kindResources struct {
	res [types.UnknownType][]types.Resource
}

const (
	forEnvoy = 0
	forGRPC  = 1
)

// Client kinds, as tables are keyed: endpoints are one table for both.
const (
	kindEnvoy     = "envoy"
	kindGRPC      = "grpc"
	kindEndpoints = "eds"
)

type tableKey struct{ group, kind, typeURL string }

// publishOrder is the order a change is handed to the caches, make before break: a client
// told of a new cluster finds its assignment waiting, a route finds its cluster, a
// listener its route table and secrets.
var publishOrder = []types.ResponseType{types.Secret, types.Cluster, types.Route, types.ScopedRoute, types.Listener}

// New makes a control plane. reg (may be nil) gets its metrics.
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) *Server {
	if cfg.Debounce == 0 {
		cfg.Debounce = 2 * time.Millisecond
	}
	cfg.MaxGroups = cmp.Or(cfg.MaxGroups, defaults.MaxGroups)
	s := &Server{cfg: cfg, log: log, m: newMetrics(reg), discovery: map[string]string{},
		groups: map[string]*group{}, kick: make(chan struct{}, 1), catalog: apimodel.NewCatalog(nil), pending: map[string]bool{}}
	s.tables, s.names = map[tableKey]*rescache.Cache{}, rescache.NewNames()
	// Cache versions count from 1 in each process: the prefix keeps a restarted or another
	// replica from matching a client's old version by accident.
	s.prefix = strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "-"
	s.hooks, s.clients = newHooks(s), newClients()
	if reg != nil {
		reg.MustRegister(newFleet(s))
	}
	for _, g := range cfg.Groups {
		s.groups[g] = &group{}
	}
	s.m.groups.Set(float64(len(s.groups)))
	s.changed.all()
	return s
}

// clientKind tells proxyless gRPC clients from Envoys by the node's user agent.
func clientKind(n *corev3.Node) string {
	if strings.HasPrefix(n.GetUserAgentName(), "gRPC") {
		return kindGRPC
	}
	return kindEnvoy
}

// table is the cache of one group's resources of one type for one client kind.
func (s *Server) table(group, kind, typeURL string) *rescache.Cache {
	if typeURL == resourcev3.EndpointType {
		kind = kindEndpoints
	}
	k := tableKey{group, kind, typeURL}
	s.tablesMu.RLock() // every watch of every stream looks its table up
	t := s.tables[k]
	s.tablesMu.RUnlock()
	if t != nil {
		return t
	}
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	t = s.tables[k]
	if t == nil {
		t = rescache.New(typeURL, s.prefix, s.names)
		s.tables[k] = t
	}
	return t
}

// tables sends each watch to the cache of its node's group and kind and its type.
type tables struct{ s *Server }

// served are the types the control plane serves; a watch for another ends its stream
// (an unknown type would otherwise make a cache for each type URL a client invents).
var served = map[string]bool{resourcev3.ListenerType: true, resourcev3.RouteType: true, resourcev3.ScopedRouteType: true,
	resourcev3.ClusterType: true, resourcev3.EndpointType: true, resourcev3.SecretType: true}

func (t tables) CreateWatch(r *cachev3.Request, sub rescache.Subscription, ch chan cachev3.Response) (func(), error) {
	if !served[r.GetTypeUrl()] {
		return nil, fmt.Errorf("resources of type %q are not served", r.GetTypeUrl())
	}
	return t.s.table(GroupOf(r.GetNode()), clientKind(r.GetNode()), r.GetTypeUrl()).CreateWatch(r, sub, ch)
}

func (t tables) CreateDeltaWatch(r *cachev3.DeltaRequest, sub rescache.Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	if !served[r.GetTypeUrl()] {
		return nil, fmt.Errorf("resources of type %q are not served", r.GetTypeUrl())
	}
	return t.s.table(GroupOf(r.GetNode()), clientKind(r.GetNode()), r.GetTypeUrl()).CreateDeltaWatch(r, sub, ch)
}

// Register serves ADS and the per-type discovery services on g (made with ServerOptions).
func (s *Server) Register(ctx context.Context, g *grpc.Server) {
	ads.New(ctx, tables{s}, s.hooks).Register(g)
}

// SetCatalog takes a new API catalogue (from internal/catalog's OnChange).
func (s *Server) SetCatalog(c *apimodel.Catalog) {
	s.mu.Lock()
	s.catalog, s.haveCatalog = c, true
	s.changed.all()
	s.mu.Unlock()
	s.poke()
}

// expect notes that a sink was handed out: nothing is published before its first Reset.
func (s *Server) expect(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.pending[what]; !seen {
		s.pending[what] = true
	}
}

// loaded notes a sink's first Reset; it is called with s.mu held.
func (s *Server) loaded(what string) { s.pending[what] = false }

// primed reports whether everything expected has been loaded; s.mu is held.
func (s *Server) primed() bool {
	if !s.haveCatalog {
		return false
	}
	for _, p := range s.pending {
		if p {
			return false
		}
	}
	return true
}

// Endpoints is the store.Sink for the endpoints/ range.
func (s *Server) Endpoints() store.Sink { s.expect("endpoints"); return endpointSink{s} }

type endpointSink struct{ s *Server }

func (e endpointSink) Reset(kvs []store.KV) {
	e.s.mu.Lock()
	e.s.discovery = make(map[string]string, len(kvs))
	for _, kv := range kvs {
		e.s.discovery[kv.Key] = string(kv.Value)
	}
	e.s.changed.all() // routes follow the stored URLs' paths
	e.s.loaded("endpoints")
	e.s.mu.Unlock()
	e.s.poke()
}

func (e endpointSink) Update(ev store.Event) { e.s.setDiscovery(ev) }

// KubeEndpoint takes a Kubernetes Service port's addresses (kube.Watcher's report for a
// k8s:// endpoint), pushed over EDS as an etcd discovery key's are.
func (s *Server) KubeEndpoint(key, value string) {
	s.setDiscovery(store.Event{KV: store.KV{Key: key, Value: []byte(value)}})
}

// setDiscovery applies one discovery key's new value.
func (s *Server) setDiscovery(ev store.Event) {
	s.mu.Lock()
	// A new scheme or path is a change of routes and clusters, not only of addresses.
	prevScheme, prevPath, _ := build.DiscoveryShape(s.discovery[ev.Key])
	nextScheme, nextPath, _ := build.DiscoveryShape(string(ev.Value))
	if prevScheme != nextScheme || prevPath != nextPath {
		s.changed.all()
	}
	if ev.Deleted {
		delete(s.discovery, ev.Key)
	} else {
		s.discovery[ev.Key] = string(ev.Value)
	}
	s.changed.key(ev.Key)
	s.mu.Unlock()
	s.poke()
}

// Secrets is the store.Sink for the secrets/ range.
func (s *Server) Secrets() store.Sink { s.expect("secrets"); return secretSink{s} }

type secretSink struct{ s *Server }

func (k secretSink) Reset(kvs []store.KV) {
	m := map[string]store.Secret{}
	for _, kv := range kvs {
		if sec, ok := k.parse(kv.Key, kv.Value); ok {
			m[kv.Key] = sec
		}
	}
	k.s.mu.Lock()
	k.s.secrets = m
	k.s.changed.all()
	k.s.loaded("secrets")
	k.s.mu.Unlock()
	k.s.poke()
}

func (k secretSink) Update(ev store.Event) {
	var sec store.Secret
	ok := false
	if !ev.Deleted {
		sec, ok = k.parse(ev.Key, ev.Value)
		if !ok {
			return // the last good version stays
		}
	}
	k.s.mu.Lock()
	if k.s.secrets == nil {
		k.s.secrets = map[string]store.Secret{}
	}
	if ok {
		k.s.secrets[ev.Key] = sec
	} else {
		delete(k.s.secrets, ev.Key)
	}
	k.s.changed.all()
	k.s.mu.Unlock()
	k.s.poke()
}

func (k secretSink) parse(name string, raw []byte) (store.Secret, bool) {
	sec, err := store.ParseSecret(name, raw)
	if err != nil {
		k.s.m.discoveryErrors.Inc()
		k.s.log.Error("secret rejected", zap.Error(err)) // the error never holds key material
		return sec, false
	}
	return sec, true
}

// addGroup starts serving a group a connecting node belongs to, unless MaxGroups are
// served: then the node is refused (and that is logged at most once a minute).
func (s *Server) addGroup(name string) error {
	s.mu.Lock()
	if _, ok := s.groups[name]; ok {
		s.mu.Unlock()
		return nil
	}
	if len(s.groups) >= s.cfg.MaxGroups {
		s.refused++
		logIt := time.Since(s.refusedLogged) > time.Minute
		if logIt {
			s.refusedLogged = time.Now()
		}
		n := s.refused
		s.mu.Unlock()
		s.m.groupsRefused.Inc()
		if logIt {
			s.log.Error("a node names a gateway group beyond xds.maxGroups; its stream is refused",
				zap.String("group", name), zap.Int("maxGroups", s.cfg.MaxGroups), zap.Int("refusedSoFar", n))
		}
		return status.Errorf(codes.ResourceExhausted, "gateway group %q is not served: %d groups are (xds.maxGroups)", name, s.cfg.MaxGroups)
	}
	s.groups[name] = &group{}
	s.m.groups.Set(float64(len(s.groups)))
	s.changed.fresh = true
	s.mu.Unlock()
	s.log.Info("new gateway group", zap.String("group", name))
	s.poke()
	return nil
}

func (s *Server) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run builds and publishes the groups' resources as changes arrive, until ctx ends.
func (s *Server) Run(ctx context.Context) {
	s.poke()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		if s.cfg.Debounce > 0 {
			t := time.NewTimer(s.cfg.Debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		s.publish(ctx)
	}
}

// publish rebuilds what changed for every group and hands what validates to the caches.
func (s *Server) publish(ctx context.Context) {
	s.mu.Lock()
	if !s.primed() {
		s.mu.Unlock()
		return // what changed stays marked; the first Reset still to come pokes again
	}
	c := s.changed
	s.changed = change{}
	cat := s.catalog
	secrets := append([]store.Secret(nil), s.cfg.Secrets...)
	for _, sec := range s.secrets {
		secrets = append(secrets, sec)
	}
	sort.Slice(secrets, func(i, j int) bool { return secrets[i].Name < secrets[j].Name })
	discovery := maps.Clone(s.discovery)
	names := slices.Sorted(maps.Keys(s.groups))
	s.mu.Unlock()
	if c.none() {
		return
	}
	for _, name := range names {
		start := time.Now()
		s.mu.Lock()
		g := s.groups[name]
		s.mu.Unlock()
		var next *group
		var err error
		full := c.config || g.cfg == nil
		if !full && len(c.keys) == 0 {
			continue // another group was added; this one has nothing to do
		}
		if full {
			next, err = s.rebuildAll(name, cat, secrets, discovery)
		} else {
			next, err = s.rebuildEndpoints(name, g, discovery, c.keys)
		}
		if err != nil {
			s.m.builds.WithLabelValues("rejected").Inc()
			s.log.Error("new configuration failed validation; the last good one stays in force", zap.String("group", name), zap.Error(err))
			continue
		}
		// Endpoints first: a client told of a new cluster finds its assignment waiting.
		if err := s.table(name, kindEndpoints, resourcev3.EndpointType).Set(next.eds); err != nil {
			s.log.Error("publishing endpoints", zap.String("group", name), zap.Error(err))
			continue
		}
		if full && next.cfg.Unscoped != "" && (g.cfg == nil || g.cfg.Unscoped != next.cfg.Unscoped) {
			s.log.Info("the group's routes stay one route table (no route scopes): an API's requests cannot be told apart by their first path segment",
				zap.String("group", name), zap.String("api", next.cfg.Unscoped))
		}
		if full {
			if err := s.setTables(name, next); err != nil {
				s.log.Error("publishing a group's resources", zap.String("group", name), zap.Error(err))
				continue
			}
		}
		next.published = time.Now()
		s.mu.Lock()
		s.groups[name] = next
		s.mu.Unlock()
		s.m.builds.WithLabelValues("ok").Inc()
		s.m.buildSeconds.Observe(time.Since(start).Seconds())
	}
}

// rebuildEndpoints is the endpoints-only path: it replaces the assignments of the sets that
// use a changed discovery key and keeps everything else as it was (the same messages and
// resources, so nothing else is resent).
func (s *Server) rebuildEndpoints(name string, g *group, discovery map[string]string, keys map[string]bool) (*group, error) {
	next := &group{cfg: g.cfg, kinds: g.kinds}
	prev := g.eds
	subset := map[string]build.EndpointSet{}
	for cluster, set := range next.cfg.Sets {
		for _, e := range set.Endpoints {
			if e.Discovery != "" && keys[e.Discovery] {
				subset[cluster] = set
				break
			}
		}
	}
	fresh, errs := build.Endpoints(subset, discovery)
	for _, err := range errs {
		s.m.discoveryErrors.Inc()
		s.log.Warn("endpoint discovery", zap.String("group", name), zap.Error(err))
	}
	byName := make(map[string]types.Resource, len(fresh))
	for _, r := range fresh {
		if err := validate.Message(r); err != nil {
			return nil, err
		}
		byName[cachev3.GetResourceName(r)] = r
	}
	next.eds = make([]types.Resource, len(prev))
	for i, r := range prev {
		if f, ok := byName[cachev3.GetResourceName(r)]; ok {
			r = f
		}
		next.eds[i] = r
	}
	return next, nil
}

// setTables hands both client kinds' resources of a group to their caches, in
// publishOrder.
func (s *Server) setTables(name string, g *group) error {
	for i, kind := range []string{kindEnvoy, kindGRPC} {
		for _, t := range publishOrder {
			typeURL, err := cachev3.GetResponseTypeURL(t)
			if err != nil {
				return err
			}
			if err := s.table(name, kind, typeURL).Set(g.kinds[i].res[t]); err != nil {
				return err
			}
		}
	}
	return nil
}

// rebuildAll is the full path: every resource of the group from the catalogue, the secrets
// and the discovery values, validated as one set and versioned by content.
func (s *Server) rebuildAll(name string, cat *apimodel.Catalog, secrets []store.Secret, discovery map[string]string) (*group, error) {
	var apis []*apimodel.API
	for _, a := range cat.APIs() {
		if build.ForGroup(a, name) {
			apis = append(apis, a)
		}
	}
	opt := s.cfg.Build
	opt.Discovery = discovery
	cfg, errs := build.Build(apis, secrets, opt)
	for _, err := range errs {
		s.log.Error("API left out of the configuration", zap.String("group", name), zap.Error(err))
	}
	next := &group{cfg: cfg}
	next.kinds[forEnvoy].res[types.Listener] = cfg.Listeners
	next.kinds[forEnvoy].res[types.Route] = cfg.Routes
	next.kinds[forEnvoy].res[types.ScopedRoute] = cfg.Scopes
	next.kinds[forEnvoy].res[types.Secret] = cfg.Secrets
	next.kinds[forEnvoy].res[types.Cluster] = cfg.Clusters
	next.kinds[forGRPC].res[types.Listener] = cfg.GRPCListeners
	next.kinds[forGRPC].res[types.Route] = cfg.GRPCRoutes
	next.kinds[forGRPC].res[types.Cluster] = cfg.GRPCClusters
	eds, errs := build.Endpoints(cfg.Sets, discovery)
	for _, err := range errs {
		s.m.discoveryErrors.Inc()
		s.log.Warn("endpoint discovery", zap.String("group", name), zap.Error(err))
	}
	next.eds = eds
	for i := range next.kinds {
		r := &next.kinds[i].res
		routes := append(msgs(r[types.Route]), msgs(r[types.ScopedRoute])...)
		if err := validate.Set(msgs(r[types.Listener]), routes, msgs(r[types.Cluster]), msgs(eds), msgs(r[types.Secret])); err != nil {
			return nil, err
		}
	}
	return next, nil
}

func msgs(rs []types.Resource) []proto.Message {
	out := make([]proto.Message, len(rs))
	for i, r := range rs {
		out[i] = r
	}
	return out
}

// Published returns the resources of a type last published to Envoys of a group, with
// the version their cache serves, for tests and tools.
func (s *Server) Published(group, typeURL string) ([]types.Resource, string, error) {
	s.mu.Lock()
	g := s.groups[group]
	s.mu.Unlock()
	t := cachev3.GetResponseType(typeURL)
	if g == nil || t == types.UnknownType {
		return nil, "", errors.New("no such group or type")
	}
	res := g.kinds[forEnvoy].res[t]
	if t == types.Endpoint {
		res = g.eds
	}
	return res, s.table(group, kindEnvoy, typeURL).Version(), nil
}
