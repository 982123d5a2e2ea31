// Command startup measures how long the built binary takes, with 1,000 APIs, from process
// start to the first full snapshot an Envoy receives (`tollgate xds`) and to the first
// allowed Check (`tollgate authz`): once with etcd reachable, once with etcd away so that
// both serve their local copy. It prints its numbers; it is a measurement, not a test.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/extauthz"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
)

func main() {
	nAPIs := flag.Int("apis", 1000, "APIs (three operations each)")
	runs := flag.Int("runs", 3, "starts of each kind (the median is printed)")
	flag.Parse()
	dir, cleanup := benchutil.WorkDir("startup", false)
	defer cleanup()
	bin := benchutil.Binary(dir)

	etcdAddr, peer := benchutil.Addr(), benchutil.Addr()
	emb, err := store.StartEmbedded(store.EmbeddedConfig{Dir: filepath.Join(dir, "etcd"), ClientAddr: etcdAddr, PeerAddr: peer, NoFsync: true}, zap.NewNop())
	benchutil.Check(err)
	st, err := store.Connect(store.Config{Endpoints: []string{emb.Endpoint}}, zap.NewNop())
	benchutil.Check(err)
	ctx := context.Background()
	docs := make([]store.Doc, *nAPIs)
	for i := range docs {
		docs[i] = store.Doc{Name: fmt.Sprintf("svc%d", i), Version: "v1", Data: []byte(fmt.Sprintf(`openapi: 3.0.3
info: {title: svc%d, version: v1}
x-tollgate-production-endpoints: [http://127.0.0.1:%d]
paths:
  /items/{id}: {get: {security: [{}], responses: {"200": {description: ok}}}}
  /items: {get: {security: [{}], responses: {"200": {description: ok}}}, post: {responses: {"201": {description: ok}}}}
`, i, 10000+i%20000))}
	}
	for i := 0; i < len(docs); i += 100 {
		_, err := st.PutAPIs(ctx, docs[i:min(i+100, len(docs))])
		benchutil.Check(err)
	}
	st.Close()

	xdsAddr, authzAddr := benchutil.Addr(), benchutil.Addr()
	cfg := func(name, listen string) string {
		p := filepath.Join(dir, name+".yaml")
		benchutil.Check(os.WriteFile(p, []byte(fmt.Sprintf(`dataDir: %s
etcd: {endpoints: [%s], dialTimeout: 1s}
xds: {listen: %s}
authz: {listen: %s}
admin: {listen: %s}
log: {level: warn}
`, filepath.Join(dir, "data-"+name), emb.Endpoint, xdsAddr, authzAddr, benchutil.Addr())), 0o644))
		return p
	}
	xdsCfg, authzCfg := cfg("xds", xdsAddr), cfg("authz", authzAddr)
	want := 3 * *nAPIs

	// Each server alone, so neither's start-up takes CPU from the other's on 2 cores.
	measureApart := func() (time.Duration, time.Duration) {
		x := start(bin, "xds", "--config", xdsCfg)
		t0 := time.Now()
		firstSnapshot(xdsAddr, want)
		snap := time.Since(t0)
		benchutil.Stop(x)
		a := start(bin, "authz", "--config", authzCfg)
		t0 = time.Now()
		firstAllowed(authzAddr, fmt.Sprintf("/svc%d/v1/items/7", *nAPIs-1))
		ok := time.Since(t0)
		benchutil.Stop(a)
		return snap, ok
	}
	var fromEtcd, fromCopy [2][]time.Duration
	for range *runs {
		s, a := measureApart()
		fromEtcd[0], fromEtcd[1] = append(fromEtcd[0], s), append(fromEtcd[1], a)
	}
	emb.Close() // etcd away: both start from their local copy
	for range *runs {
		s, a := measureApart()
		fromCopy[0], fromCopy[1] = append(fromCopy[0], s), append(fromCopy[1], a)
	}
	fmt.Printf("\nstart-up with %d APIs (%d operations), process start to (median of %d):\n", *nAPIs, want, *runs)
	fmt.Printf("  %-34s %12s %18s\n", "", "full snapshot", "first allowed Check")
	fmt.Printf("  %-34s %12v %18v\n", "from etcd", median(fromEtcd[0]), median(fromEtcd[1]))
	fmt.Printf("  %-34s %12v %18v\n", "from the local copy (etcd away)", median(fromCopy[0]), median(fromCopy[1]))
	fmt.Println("  (etcd away: connections refused; an etcd that accepts connections but does not answer gets 2 s before the copy is used)")
}

func start(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	benchutil.Check(cmd.Start())
	return cmd
}

// firstSnapshot waits, as an Envoy would, for the route scopes and the route tables they
// name, and returns once those hold want routes (the first ones the control plane sends
// must already be complete).
func firstSnapshot(addr string, want int) {
	for {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		benchutil.Check(err)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx, grpc.WaitForReady(true))
		if err == nil {
			node := &corev3.Node{Id: "bench", Cluster: "default"}
			stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ScopedRouteType})
			var names []string
			tables := map[string]int{} // route table → routes of the bench's APIs
			for {
				resp, err := stream.Recv()
				if err != nil {
					break
				}
				switch resp.TypeUrl {
				case resourcev3.ScopedRouteType:
					names = names[:0]
					for _, a := range resp.Resources {
						sc := &routev3.ScopedRouteConfiguration{}
						if a.UnmarshalTo(sc) == nil {
							names = append(names, sc.RouteConfigurationName)
						}
					}
					stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resp.TypeUrl, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce})
					stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.RouteType, ResourceNames: names})
					continue
				case resourcev3.RouteType:
					for _, a := range resp.Resources {
						rc := &routev3.RouteConfiguration{}
						if a.UnmarshalTo(rc) != nil {
							continue
						}
						n := 0
						for _, vh := range rc.VirtualHosts {
							for _, r := range vh.Routes {
								if strings.HasPrefix(r.Name, "svc") {
									n++
								}
							}
						}
						tables[rc.Name] = n
					}
					total := 0
					for _, n := range tables {
						total += n
					}
					if total >= want {
						cancel()
						conn.Close()
						return
					}
					if len(tables) == len(names) {
						fmt.Fprintf(os.Stderr, "route tables with %d of %d routes were sent\n", total, want)
					}
					stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resp.TypeUrl, ResourceNames: names, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce})
				}
			}
		}
		cancel()
		conn.Close()
		time.Sleep(5 * time.Millisecond)
	}
}

// firstAllowed sends a Check for an open operation of the last API until it is allowed.
func firstAllowed(addr, path string) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	benchutil.Check(err)
	defer conn.Close()
	cli := authv3.NewAuthorizationClient(conn)
	req := extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: path})
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := cli.Check(ctx, req, grpc.WaitForReady(true))
		cancel()
		if err == nil && resp.GetOkResponse() != nil {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2].Round(time.Millisecond)
}
