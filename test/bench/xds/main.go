// Command xds measures the control plane at size: the time to build (and validate) the
// configuration of 1,000 APIs, the time from an etcd write to the EDS update reaching each of
// 100 connected ADS clients with 1,000 clusters and 10,000 endpoints, and the memory of the
// process. It prints its numbers; it is a measurement, not a test.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/catalog"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/xds"
	"github.com/tollgate-gw/tollgate/xds/build"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

func main() {
	nAPIs := flag.Int("apis", 1000, "APIs, each with its own discovered backend (one cluster each)")
	perKey := flag.Int("endpoints", 10, "endpoints per cluster")
	nClients := flag.Int("clients", 100, "connected ADS clients")
	writes := flag.Int("writes", 100, "etcd writes to time")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the timed writes here")
	flag.Parse()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dir, err := os.MkdirTemp("", "tollgate-bench-xds")
	check(err)
	defer os.RemoveAll(dir)
	emb, err := store.StartEmbedded(store.EmbeddedConfig{Dir: dir, ClientAddr: lowAddr(), PeerAddr: lowAddr()}, zap.NewNop())
	check(err)
	defer emb.Close()
	st, err := store.Connect(store.Config{Endpoints: []string{emb.Endpoint}}, zap.NewNop())
	check(err)

	// The definitions: 1,000 APIs, each with one operation whose backend is discovered.
	docs := make([]store.Doc, *nAPIs)
	apis := make([]*apimodel.API, *nAPIs)
	for i := range docs {
		data := []byte(fmt.Sprintf(`openapi: 3.0.3
info: {title: svc%d, version: v1}
x-tollgate-production-endpoints: ["etcd(svc%d, http://127.0.0.1:%d)"]
paths:
  /items/{id}: {get: {responses: {"200": {description: ok}}}}
  /items: {get: {responses: {"200": {description: ok}}}, post: {responses: {"201": {description: ok}}}}
`, i, i, 10000+i))
		res, err := openapi.Parse("svc", data)
		check(err)
		apis[i] = res.API
		docs[i] = store.Doc{Name: res.API.Name, Version: res.API.Version, Data: data}
	}

	// Snapshot build time for 1,000 APIs: build, endpoints, validation, as the loop does.
	opt := build.Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080}
	discovery := map[string]string{}
	for i := range *nAPIs {
		discovery[fmt.Sprintf("svc%d", i)] = endpointList(i, 0, *perKey)
	}
	var builds []time.Duration
	for range 5 {
		start := time.Now()
		cfg, errs := build.Build(apis, nil, opt)
		if len(errs) > 0 {
			check(errs[0])
		}
		_, errs = build.Endpoints(cfg.Sets, discovery)
		if len(errs) > 0 {
			check(errs[0])
		}
		builds = append(builds, time.Since(start))
	}
	sort.Slice(builds, func(i, j int) bool { return builds[i] < builds[j] })

	// The live control plane, fed from etcd.
	srv := xds.New(xds.Config{Build: opt, Groups: []string{"bench"}}, zap.NewNop(), nil)
	reg := catalog.New(zap.NewNop(), nil)
	reg.OnChange(srv.SetCatalog)
	for i := 0; i < len(docs); i += 100 {
		_, err := st.PutAPIs(ctx, docs[i:min(i+100, len(docs))])
		check(err)
	}
	for k, v := range discovery {
		_, err = st.Put(ctx, store.Endpoints+k, v)
		check(err)
	}
	go st.Follow(ctx, store.APIs, reg, nil)
	go st.Follow(ctx, store.Endpoints, srv.Endpoints(), nil)
	go srv.Run(ctx)
	lis, err := testutil.ListenLow()
	check(err)
	gs := grpc.NewServer()
	srv.Register(ctx, gs)
	go gs.Serve(lis)
	for {
		if eds, _, _ := srv.Published("bench", resourcev3.ClusterType); len(eds) >= *nAPIs {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	// 100 clients, each subscribed to every cluster's endpoints.
	clusters, _, _ := srv.Published("bench", resourcev3.ClusterType)
	var names []string
	for _, c := range clusters {
		if n := c.(interface{ GetName() string }).GetName(); strings.HasPrefix(n, "ep_") {
			names = append(names, n)
		}
	}
	clients := make([]*client, *nClients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { clients[i] = connect(ctx, lis.Addr().String(), i, names) })
	}
	wg.Wait()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	// etcd write → EDS at every client.
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	var lat, puts, after []time.Duration
	for w := range *writes {
		key := w % *nAPIs
		value := endpointList(key, w+1, *perKey)
		want := fmt.Sprintf("10.%d.%d.%d", (w+1)%250, key/250, key%250)
		for _, c := range clients {
			c.expect(want)
		}
		t0 := time.Now()
		_, err = st.Put(ctx, store.Endpoints+fmt.Sprintf("svc%d", key), value)
		check(err)
		put := time.Since(t0)
		puts = append(puts, put)
		for _, c := range clients {
			d := c.wait(t0)
			lat = append(lat, d)
			after = append(after, max(d-put, 0))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(puts, func(i, j int) bool { return puts[i] < puts[j] })
	sort.Slice(after, func(i, j int) bool { return after[i] < after[j] })

	fmt.Printf("xDS control plane, %d CPUs: %d APIs (%d operations), %d EDS clusters, %d endpoints, %d ADS clients\n\n",
		runtime.NumCPU(), *nAPIs, 3**nAPIs, len(names), len(names)**perKey, *nClients)
	fmt.Printf("build of the full configuration (build + endpoints), %d APIs:  min %v  median %v  max %v\n",
		*nAPIs, builds[0].Round(time.Millisecond), builds[len(builds)/2].Round(time.Millisecond), builds[len(builds)-1].Round(time.Millisecond))
	fmt.Printf("etcd write → EDS update at each of %d clients (%d writes, %d samples):  p50 %v  p99 %v  max %v\n",
		*nClients, *writes, len(lat), lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*99/100].Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
	fmt.Printf("  the etcd write itself (Put until committed, fsync on):     p50 %v  p99 %v\n", puts[len(puts)/2].Round(100*time.Microsecond), puts[len(puts)*99/100].Round(100*time.Microsecond))
	fmt.Printf("  from the committed write to the client (the control plane): p50 %v  p99 %v\n", after[len(after)/2].Round(100*time.Microsecond), after[len(after)*99/100].Round(100*time.Microsecond))
	fmt.Printf("memory with everything loaded and clients connected: Go heap in use %d MB, from the OS %d MB, RSS %s\n",
		ms.HeapInuse>>20, ms.Sys>>20, rss())
	fmt.Println("(one process holds the control plane, the embedded etcd and the 100 clients: the memory is an upper bound for the control plane)")
}

// endpointList is the value of endpoints/svc<i>: n addresses, generation g.
func endpointList(i, g, n int) string {
	parts := make([]string, n)
	for j := range n {
		parts[j] = fmt.Sprintf(`"http://10.%d.%d.%d:%d"`, g%250, i/250, i%250, 8000+j)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

type client struct {
	stream discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *corev3.Node
	names  []string
	mu     sync.Mutex
	want   string
	got    chan time.Time
}

func connect(ctx context.Context, addr string, i int, names []string) *client {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	check(err)
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	check(err)
	c := &client{stream: stream, node: &corev3.Node{Id: fmt.Sprintf("envoy-%d", i), Cluster: "bench"}, names: names, got: make(chan time.Time, 1)}
	check(stream.Send(&discoverygrpc.DiscoveryRequest{Node: c.node, TypeUrl: resourcev3.EndpointType, ResourceNames: names}))
	first, err := stream.Recv()
	check(err)
	check(stream.Send(&discoverygrpc.DiscoveryRequest{Node: c.node, TypeUrl: resourcev3.EndpointType, ResourceNames: names, VersionInfo: first.VersionInfo, ResponseNonce: first.Nonce}))
	go c.loop()
	return c
}

func (c *client) loop() {
	for {
		r, err := c.stream.Recv()
		if err != nil {
			return
		}
		now := time.Now()
		c.mu.Lock()
		want := c.want
		c.mu.Unlock()
		for _, a := range r.Resources {
			cla := &endpointv3.ClusterLoadAssignment{}
			if a.UnmarshalTo(cla) == nil && want != "" && len(cla.Endpoints) > 0 &&
				cla.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress() == want {
				c.mu.Lock()
				c.want = ""
				c.mu.Unlock()
				c.got <- now
				break
			}
		}
		c.stream.Send(&discoverygrpc.DiscoveryRequest{Node: c.node, TypeUrl: resourcev3.EndpointType, ResourceNames: c.names, VersionInfo: r.VersionInfo, ResponseNonce: r.Nonce})
	}
}

func (c *client) expect(addr string) {
	c.mu.Lock()
	c.want = addr
	c.mu.Unlock()
}

func (c *client) wait(t0 time.Time) time.Duration {
	select {
	case t := <-c.got:
		return t.Sub(t0)
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "a client never saw the update")
		os.Exit(1)
	}
	return 0
}

func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
		}
	}
	return "unknown"
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func lowAddr() string {
	a, err := testutil.LowAddr()
	check(err)
	return a
}
