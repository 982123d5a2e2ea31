package xds_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/kube"
	"github.com/tollgate-gw/tollgate/internal/store"
	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/xds"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// plane is a control plane fed from a real etcd, serving on a real socket.
type plane struct {
	etcd *tu.Etcd
	st   *store.Store
	srv  *xds.Server
	reg  *prometheus.Registry
	addr string
}

func startPlane(t testing.TB) *plane {
	t.Helper()
	return startPlaneWith(t, build.Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080})
}

// startPlaneWith is a plane whose Envoy resources are built with opt.
func startPlaneWith(t testing.TB, opt build.Options) *plane {
	t.Helper()
	return startPlaneConfig(t, xds.Config{Build: opt})
}

// startPlaneConfig is a plane configured with cfg.
func startPlaneConfig(t testing.TB, cfg xds.Config) *plane {
	t.Helper()
	e := tu.StartEtcd(t)
	st := e.Store("/tollgate/")
	ctx := t.Context()
	promReg := prometheus.NewRegistry()
	srv := xds.New(cfg, zap.NewNop(), promReg)
	reg := catalog.New(zap.NewNop(), nil)
	reg.OnChange(srv.SetCatalog)
	go st.Follow(ctx, store.APIs, reg, nil)
	go st.Follow(ctx, store.Endpoints, srv.Endpoints(), nil)
	go srv.Run(ctx)
	lis, err := tu.ListenLow()
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(ctx, g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return &plane{etcd: e, st: st, srv: srv, reg: promReg, addr: lis.Addr().String()}
}

func (p *plane) apply(t testing.TB, name string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", name, name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p.applyData(t, data)
}

func (p *plane) applyData(t testing.TB, data []byte) {
	t.Helper()
	var doc struct{ name, version string }
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "  title: ") {
			doc.name = strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(line, "  title: "), " ", "-"))
		}
		if strings.HasPrefix(line, "  version: ") {
			doc.version = strings.TrimPrefix(line, "  version: ")
		}
	}
	if _, err := p.st.PutAPIs(t.Context(), []store.Doc{{Name: doc.name, Version: doc.version, Data: data}}); err != nil {
		t.Fatal(err)
	}
}

// adsClient is a raw state-of-the-world ADS client, as Envoy speaks it.
type adsClient struct {
	t      testing.TB
	stream discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *corev3.Node
	in     chan *discoverygrpc.DiscoveryResponse
	acked  map[string]*discoverygrpc.DiscoveryRequest // the last ACK of each type
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func newADS(t testing.TB, addr, nodeID, group string) *adsClient {
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(dial(t, addr)).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := &adsClient{t: t, stream: stream, node: &corev3.Node{Id: nodeID, Cluster: group}, in: make(chan *discoverygrpc.DiscoveryResponse, 100), acked: map[string]*discoverygrpc.DiscoveryRequest{}}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				close(c.in)
				return
			}
			c.in <- r
		}
	}()
	return c
}

func (c *adsClient) send(req *discoverygrpc.DiscoveryRequest) {
	c.t.Helper()
	req.Node = c.node
	if err := c.stream.Send(req); err != nil {
		c.t.Fatal(err)
	}
}

func (c *adsClient) recv(typeURL string) *discoverygrpc.DiscoveryResponse {
	c.t.Helper()
	select {
	case r := <-c.in:
		if r == nil {
			c.t.Fatal("stream closed")
		}
		if r.TypeUrl != typeURL {
			c.t.Fatalf("got %s, want %s", r.TypeUrl, typeURL)
		}
		return r
	case <-time.After(10 * time.Second):
		c.t.Fatalf("no %s response", typeURL)
	}
	return nil
}

// quiet asserts nothing arrives for d.
func (c *adsClient) quiet(d time.Duration, why string) {
	c.t.Helper()
	select {
	case r := <-c.in:
		c.t.Fatalf("%s: unexpected %s response version %s", why, r.GetTypeUrl(), r.GetVersionInfo())
	case <-time.After(d):
	}
}

// settle ACKs what still arrives until nothing has for d (the APIs applied before the
// stream opened are published type by type, so a stream may be answered from an older
// version of one type first), failing if a version already ACKed is sent again.
func (c *adsClient) settle(d time.Duration) {
	c.t.Helper()
	for {
		select {
		case r := <-c.in:
			if r == nil {
				c.t.Fatal("stream closed")
			}
			last := c.acked[r.TypeUrl]
			if last == nil {
				c.t.Fatalf("unasked %s response", r.TypeUrl)
			}
			if r.VersionInfo == last.VersionInfo {
				c.t.Fatalf("%s version %s sent again after its ACK", r.TypeUrl, r.VersionInfo)
			}
			c.ack(r, last.ResourceNames...)
		case <-time.After(d):
			return
		}
	}
}

func (c *adsClient) ack(r *discoverygrpc.DiscoveryResponse, names ...string) {
	req := &discoverygrpc.DiscoveryRequest{TypeUrl: r.TypeUrl, VersionInfo: r.VersionInfo, ResponseNonce: r.Nonce, ResourceNames: names}
	c.send(req)
	c.acked[r.TypeUrl] = req
}

// clusters subscribes to CDS and ACKs responses until one holds at least n clusters,
// which it returns unACKed when ack is false (to NACK it, say).
func (c *adsClient) clusters(n int, ack bool) *discoverygrpc.DiscoveryResponse {
	c.t.Helper()
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	cds := c.recv(resourcev3.ClusterType)
	for len(cds.Resources) < n {
		c.ack(cds)
		cds = c.recv(resourcev3.ClusterType)
	}
	if ack {
		c.ack(cds)
	}
	return cds
}

func clustersOf(t testing.TB, r *discoverygrpc.DiscoveryResponse) map[string]*clusterv3.Cluster {
	out := map[string]*clusterv3.Cluster{}
	for _, a := range r.Resources {
		c := &clusterv3.Cluster{}
		if err := a.UnmarshalTo(c); err != nil {
			t.Fatal(err)
		}
		out[c.Name] = c
	}
	return out
}

func TestADSServesResourcesAndSendsOnlyEDSOnEndpointChange(t *testing.T) {
	p := startPlane(t)
	p.apply(t, "coffeebar")
	p.apply(t, "online-store")
	c := newADS(t, p.addr, "envoy-1", "edge")

	cds := c.clusters(4, true) // both APIs are in the snapshot
	var eds []string
	var search string
	for name, cl := range clustersOf(t, cds) {
		if cl.GetType() == clusterv3.Cluster_EDS {
			eds = append(eds, name)
		}
		if strings.Contains(name, "searchItem_etcd_key") {
			search = name
		}
	}
	if search == "" || len(eds) < 3 {
		t.Fatalf("clusters %v", eds)
	}
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: eds})
	ep := c.recv(resourcev3.EndpointType)
	if len(ep.Resources) != len(eds) {
		t.Fatalf("%d assignments for %d clusters", len(ep.Resources), len(eds))
	}
	c.ack(ep, eds...)
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.ListenerType})
	c.ack(c.recv(resourcev3.ListenerType))
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{build.RouteConfigName}})
	c.ack(c.recv(resourcev3.RouteType), build.RouteConfigName)
	c.settle(200 * time.Millisecond)

	// The search service moves: one etcd write.
	start := time.Now()
	if _, err := p.st.Put(t.Context(), "endpoints/searchItem_etcd_key", "http://10.9.8.7:7777/search"); err != nil {
		t.Fatal(err)
	}
	ep = c.recv(resourcev3.EndpointType)
	t.Logf("etcd write to EDS at the client: %v", time.Since(start))
	found := false
	for _, a := range ep.Resources {
		cla := &endpointv3.ClusterLoadAssignment{}
		a.UnmarshalTo(cla)
		if cla.ClusterName == search {
			sa := cla.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress()
			found = sa.Address == "10.9.8.7" && sa.GetPortValue() == 7777
		}
	}
	if !found {
		t.Fatalf("EDS update does not carry the new address: %v", ep)
	}
	if len(ep.Resources) != 1 {
		t.Errorf("the EDS update carries %d assignments; only the changed one is needed", len(ep.Resources))
	}
	c.ack(ep, eds...)
	c.quiet(300*time.Millisecond, "an endpoint change must send EDS only")

	// The key goes away: back to the default URL.
	p.st.Client().Delete(t.Context(), p.st.Prefix()+"endpoints/searchItem_etcd_key")
	ep = c.recv(resourcev3.EndpointType)
	c.ack(ep, eds...)
}

func TestNACKedVersionIsNotResent(t *testing.T) {
	p := startPlane(t)
	p.apply(t, "coffeebar")
	c := newADS(t, p.addr, "envoy-nack", "edge")
	cds := c.clusters(2, false)
	// Refuse it, as Envoy does: the previous version, this nonce, an error.
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: cds.Nonce,
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "cluster rejected by test"}})
	c.quiet(500*time.Millisecond, "a NACKed version must not be resent")
	if n := counter(t, p.reg, "tollgate_xds_nacks_total"); n != 1 {
		t.Errorf("nacks counted: %v", n)
	}
	// A new version (a new API) is sent.
	p.apply(t, "petstore")
	next := c.recv(resourcev3.ClusterType)
	if next.VersionInfo == cds.VersionInfo {
		t.Fatal("the same version came again")
	}
}

func TestGroupsGetOnlyTheirAPIs(t *testing.T) {
	p := startPlane(t)
	cb, _ := os.ReadFile(filepath.Join("..", "examples", "coffeebar", "coffeebar.yaml"))
	p.applyData(t, []byte(strings.Replace(string(cb), "x-wso2-basePath:", "x-tollgate-gateways: [internal]\nx-wso2-basePath:", 1)))
	p.apply(t, "petstore")
	routes := func(group string) string {
		c := newADS(t, p.addr, "n-"+group, group)
		c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{build.RouteConfigName}})
		var last *discoverygrpc.DiscoveryResponse
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case r := <-c.in:
				last = r
				c.ack(r, build.RouteConfigName)
				if strings.Contains(r.String(), "petstore") {
					time.Sleep(100 * time.Millisecond)
				}
				continue
			case <-time.After(300 * time.Millisecond):
			}
			if last != nil && strings.Contains(last.String(), "petstore") {
				break
			}
		}
		return last.String()
	}
	if edge := routes("edge"); strings.Contains(edge, "coffeebar") || !strings.Contains(edge, "petstore") {
		t.Errorf("edge group routes: coffeebar present=%v", strings.Contains(edge, "coffeebar"))
	}
	if internal := routes("internal"); !strings.Contains(internal, "coffeebar") || !strings.Contains(internal, "petstore") {
		t.Error("internal group lacks its APIs")
	}
}

func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, _ := reg.Gather()
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// A client that adds a cluster to its EDS subscription at the current version gets that
// cluster's endpoints at once; one that drops back to a version from another control-plane
// instance gets everything it subscribes to.
func TestEDSNewSubscriptionAndForeignVersion(t *testing.T) {
	p := startPlane(t)
	p.apply(t, "coffeebar")
	p.apply(t, "online-store")
	c := newADS(t, p.addr, "envoy-sub", "edge")
	cds := c.clusters(4, true)
	var eds []string
	for name, cl := range clustersOf(t, cds) {
		if cl.GetType() == clusterv3.Cluster_EDS {
			eds = append(eds, name)
		}
	}
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: eds[:1]})
	first := c.recv(resourcev3.EndpointType)
	if len(first.Resources) != 1 {
		t.Fatalf("%d assignments for one subscribed cluster", len(first.Resources))
	}
	c.ack(first, eds[:1]...)
	c.quiet(200*time.Millisecond, "nothing changed")
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, VersionInfo: first.VersionInfo, ResponseNonce: first.Nonce, ResourceNames: eds})
	more := c.recv(resourcev3.EndpointType)
	if len(more.Resources) != len(eds)-1 {
		t.Fatalf("subscribing to %d more clusters brought %d assignments", len(eds)-1, len(more.Resources))
	}
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, VersionInfo: "another-instance-7", ResponseNonce: more.Nonce, ResourceNames: eds})
	if all := c.recv(resourcev3.EndpointType); len(all.Resources) != len(eds) {
		t.Fatalf("a foreign version brought %d of %d assignments", len(all.Resources), len(eds))
	}
}

// When etcd goes away the control plane keeps serving its last configuration, and after
// etcd returns it catches up from where it was.
func TestEtcdOutageKeepsServingAndCatchesUp(t *testing.T) {
	p := startPlane(t)
	p.apply(t, "online-store")
	c := newADS(t, p.addr, "envoy-a", "edge")
	cds := c.clusters(3, true)

	p.etcd.Stop()
	// A new Envoy connecting during the outage gets the full configuration.
	late := newADS(t, p.addr, "envoy-late", "edge")
	late.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	if got := clustersOf(t, late.recv(resourcev3.ClusterType)); len(got) != len(clustersOf(t, cds)) {
		t.Fatalf("during the outage: %d clusters, want %d", len(got), len(clustersOf(t, cds)))
	}
	p.etcd.Start()
	var search string
	for name := range clustersOf(t, cds) {
		if strings.Contains(name, "searchItem_etcd_key") {
			search = name
		}
	}
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: []string{search}})
	c.ack(c.recv(resourcev3.EndpointType), search)
	other := p.etcd.Store("/tollgate/")
	if _, err := other.Put(t.Context(), "endpoints/searchItem_etcd_key", "http://10.4.4.4:80"); err != nil {
		t.Fatal(err)
	}
	ep := c.recv(resourcev3.EndpointType)
	cla := &endpointv3.ClusterLoadAssignment{}
	ep.Resources[0].UnmarshalTo(cla)
	if a := cla.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress().Address; a != "10.4.4.4" {
		t.Fatalf("after etcd returned: %s", a)
	}
}

// A k8s:// endpoint follows its Service's EndpointSlices (client-go's fake clientset): the
// first sync, a scale-up, readiness flipping and the Service's deletion each reach an ADS
// client as EDS within 100 ms, and nothing is sent when nothing changed.
func TestKubernetesEndpointsReachEDS(t *testing.T) {
	p := startPlane(t)
	p.applyData(t, []byte(`openapi: 3.0.3
info:
  title: shop
  version: v1
security: [{}]
x-tollgate-production-endpoints: {urls: ["k8s://shop/web:80"]}
paths:
  /items: {get: {responses: {"200": {description: ok}}}}
`))
	c := newADS(t, p.addr, "envoy-1", "default")
	var cluster string
	for name, cl := range clustersOf(t, c.clusters(2, true)) {
		if cl.GetType() == clusterv3.Cluster_EDS {
			cluster = name
		}
	}
	if cluster == "" {
		t.Fatal("the Service's cluster is not an EDS cluster")
	}
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: []string{cluster}})
	ep := c.recv(resourcev3.EndpointType)
	if addrs := claAddresses(t, ep); len(addrs) != 0 {
		t.Fatalf("addresses before the Service is known: %v", addrs)
	}
	c.ack(ep, cluster)

	client := fake.NewClientset(
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}},
		endpointSlice("web-a", "10.1.0.1"),
	)
	w := kube.NewWatcher(client, p.srv.KubeEndpoint)
	w.SetKeys([]kube.Key{{Namespace: "shop", Service: "web", Port: "80"}})
	go w.Run(t.Context())
	expect := func(what string, want ...string) {
		t.Helper()
		start := time.Now()
		ep := c.recv(resourcev3.EndpointType)
		got := claAddresses(t, ep)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: EDS carries %v, want %v", what, got, want)
		}
		t.Logf("%s: EDS after %v", what, time.Since(start))
		c.ack(ep, cluster)
	}
	expect("first sync", "10.1.0.1:8080")
	slices := client.DiscoveryV1().EndpointSlices("shop")
	for _, step := range []struct {
		what  string
		slice *discoveryv1.EndpointSlice
		want  []string
	}{
		{"scaled up", endpointSlice("web-a", "10.1.0.1", "10.1.0.2"), []string{"10.1.0.1:8080", "10.1.0.2:8080"}},
		{"readiness flipped", endpointSlice("web-a", "10.1.0.1", "!10.1.0.2"), []string{"10.1.0.1:8080"}},
	} {
		start := time.Now()
		if _, err := slices.Update(t.Context(), step.slice, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		expect(step.what, step.want...)
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("%s: %v from the change to EDS", step.what, d)
		}
	}
	same := endpointSlice("web-a", "10.1.0.1", "!10.1.0.2")
	same.Labels["release"] = "2"
	if _, err := slices.Update(t.Context(), same, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.quiet(300*time.Millisecond, "a change that moves no address must send nothing")
	if err := client.CoreV1().Services("shop").Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("the Service deleted")
}

// endpointSlice is web's slice in shop with these addresses ("!" not ready), port 8080.
func endpointSlice(name string, addrs ...string) *discoveryv1.EndpointSlice {
	port, portName := int32(8080), "http"
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
	}
	for _, a := range addrs {
		ready := !strings.HasPrefix(a, "!")
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{strings.TrimPrefix(a, "!")}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return s
}

func claAddresses(t *testing.T, r *discoverygrpc.DiscoveryResponse) []string {
	t.Helper()
	var out []string
	for _, a := range r.Resources {
		cla := &endpointv3.ClusterLoadAssignment{}
		if err := a.UnmarshalTo(cla); err != nil {
			t.Fatal(err)
		}
		for _, l := range cla.Endpoints {
			for _, e := range l.LbEndpoints {
				sa := e.GetEndpoint().GetAddress().GetSocketAddress()
				out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			}
		}
	}
	sort.Strings(out)
	return out
}
