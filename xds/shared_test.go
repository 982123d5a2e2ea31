package xds_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/tollgate-gw/tollgate/xds"
	"github.com/tollgate-gw/tollgate/xds/build"
)

// groupAPI is an API served to one gateway group, with paths /p0 … /p<n-1>.
func groupAPI(title, group string, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "openapi: 3.0.3\ninfo:\n  title: %s\n  version: v1\nx-tollgate-gateways: [%s]\nx-tollgate-basePath: /%s/v1\n", title, group, strings.ToLower(title))
	b.WriteString("x-tollgate-production-endpoints: [\"http://10.0.0.1:80\"]\npaths:\n")
	for i := range n {
		fmt.Fprintf(&b, "  /p%d: {get: {responses: {\"200\": {description: ok}}}}\n", i)
	}
	return []byte(b.String())
}

// What one stream was sent: the route table by version, in order.
type routeLog struct {
	mu       sync.Mutex
	versions []string
	content  map[string]string // version → the route table's bytes
	nacked   string
	err      error
}

func (l *routeLog) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = fmt.Errorf(format, args...)
	}
}

// follow ACKs every route table on c until stop, except that with nack it refuses the
// first one after armed is closed. Each version must always come with the same bytes.
func follow(c *adsClient, nack bool, armed, stop chan struct{}) *routeLog {
	l := &routeLog{content: map[string]string{}}
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.RouteType, ResourceNames: []string{build.RouteConfigName}})
	go func() {
		for {
			var r *discoverygrpc.DiscoveryResponse
			select {
			case r = <-c.in:
			case <-stop:
				return
			}
			if r == nil {
				return
			}
			if r.TypeUrl != resourcev3.RouteType || len(r.Resources) != 1 {
				l.fail("got %s with %d resources", r.TypeUrl, len(r.Resources))
				return
			}
			body := string(r.Resources[0].Value)
			l.mu.Lock()
			if prev, ok := l.content[r.VersionInfo]; ok && prev != body {
				l.mu.Unlock()
				l.fail("version %s came with two different route tables", r.VersionInfo)
				return
			}
			l.content[r.VersionInfo] = body
			l.versions = append(l.versions, r.VersionInfo)
			refuse := false
			if nack && l.nacked == "" {
				select {
				case <-armed:
					refuse = true
					l.nacked = r.VersionInfo
				default:
				}
			}
			l.mu.Unlock()
			if refuse {
				c.stream.Send(&discoverygrpc.DiscoveryRequest{Node: c.node, TypeUrl: r.TypeUrl, ResponseNonce: r.Nonce, ResourceNames: []string{build.RouteConfigName},
					ErrorDetail: &rpcstatus.Status{Code: 3, Message: "route table refused by test"}})
				continue
			}
			c.stream.Send(&discoverygrpc.DiscoveryRequest{Node: c.node, TypeUrl: r.TypeUrl, VersionInfo: r.VersionInfo, ResponseNonce: r.Nonce, ResourceNames: []string{build.RouteConfigName}})
		}
	}()
	return l
}

func (l *routeLog) latest() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.versions) == 0 {
		return ""
	}
	return l.content[l.versions[len(l.versions)-1]]
}

// The shared encoding cannot leak: streams of two groups get only their group's
// resources while one group's API changes in rapid succession; every stream that is sent a
// version gets the same bytes for it; a stream that refuses a version is not sent it again
// and still gets the next ones, and the streams that accepted it are not disturbed.
func TestSharedEncodingKeepsGroupsAndVersionsApart(t *testing.T) {
	p := startPlane(t)
	p.applyData(t, groupAPI("Alpha", "a", 1))
	p.applyData(t, groupAPI("Beta", "b", 1))
	armed, stop := make(chan struct{}), make(chan struct{})
	defer close(stop)
	a1 := follow(newADS(t, p.addr, "a-1", "a"), false, armed, stop)
	a2 := follow(newADS(t, p.addr, "a-2", "a"), true, armed, stop)
	b1 := follow(newADS(t, p.addr, "b-1", "b"), false, armed, stop)
	waitFor(t, "every stream has its first route table", func() bool {
		return strings.Contains(a1.latest(), "/alpha/v1/p0") && strings.Contains(a2.latest(), "/alpha/v1/p0") && strings.Contains(b1.latest(), "/beta/v1/p0")
	})
	b1.mu.Lock()
	bBefore := len(b1.versions)
	b1.mu.Unlock()

	close(armed)
	const changes = 12
	for i := 2; i <= changes+1; i++ {
		p.applyData(t, groupAPI("Alpha", "a", i))
		time.Sleep(time.Duration(i%3) * time.Millisecond)
	}
	last := fmt.Sprintf("/alpha/v1/p%d", changes)
	waitFor(t, "both streams of group a reach the last version", func() bool {
		return strings.Contains(a1.latest(), last) && strings.Contains(a2.latest(), last)
	})
	time.Sleep(200 * time.Millisecond)

	for name, l := range map[string]*routeLog{"a-1": a1, "a-2": a2, "b-1": b1} {
		l.mu.Lock()
		if l.err != nil {
			t.Errorf("%s: %v", name, l.err)
		}
		for v, body := range l.content {
			other := "/beta/"
			if name == "b-1" {
				other = "/alpha/"
			}
			if strings.Contains(body, other) {
				t.Errorf("%s: version %s holds another group's routes", name, v)
			}
		}
		l.mu.Unlock()
	}
	// One version, one content, across streams too.
	for v, body := range a1.content {
		if other, ok := a2.content[v]; ok && other != body {
			t.Errorf("version %s: a-1 and a-2 were sent different route tables", v)
		}
	}
	if n := len(b1.versions); n != bBefore {
		t.Errorf("group b was sent %d route tables while only group a changed", n-bBefore)
	}
	a2.mu.Lock()
	defer a2.mu.Unlock()
	if a2.nacked == "" {
		t.Fatal("a-2 never refused a version")
	}
	seen := 0
	for _, v := range a2.versions {
		if v == a2.nacked {
			seen++
		}
	}
	if seen != 1 {
		t.Errorf("the refused version %s was sent to a-2 %d times", a2.nacked, seen)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
	}
}

// A node of a new gateway group gets its group built, and the groups already served are
// not rebuilt for it.
func TestANewGroupIsBuiltAloneAndTheOthersKept(t *testing.T) {
	p := startPlane(t)
	p.applyData(t, groupAPI("Alpha", "", 2)) // for every group
	a := newADS(t, p.addr, "a-1", "alpha")
	a.clusters(1, true)
	a.settle(300 * time.Millisecond) // the API may arrive after the first build
	before := counter(t, p.reg, "tollgate_xds_builds_total")
	b := newADS(t, p.addr, "b-1", "beta")
	if cds := b.clusters(1, true); len(cds.Resources) == 0 {
		t.Fatal("the new group was served no clusters")
	}
	time.Sleep(100 * time.Millisecond)
	if n := counter(t, p.reg, "tollgate_xds_builds_total") - before; n != 1 {
		t.Errorf("a new group made %.0f builds, want its own only", n)
	}
	a.quiet(200*time.Millisecond, "a group was added")
}

// Beyond xds.maxGroups a node naming a new group is refused: its stream ends, it is
// counted, and the groups served go on being served.
func TestGroupsBeyondTheLimitAreRefused(t *testing.T) {
	p := startPlaneConfig(t, xds.Config{Build: build.Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080}, MaxGroups: 2})
	p.applyData(t, groupAPI("Alpha", "", 1))
	a := newADS(t, p.addr, "a", "alpha")
	a.clusters(1, true)
	b := newADS(t, p.addr, "b", "beta")
	b.clusters(1, true)
	c := newADS(t, p.addr, "c", "gamma")
	c.send(&discoverygrpc.DiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	select {
	case r, ok := <-c.in:
		if ok {
			t.Fatalf("a third group was served %s", r.GetTypeUrl())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the third group's stream neither served nor ended")
	}
	if n := counter(t, p.reg, "tollgate_xds_groups_refused_total"); n != 1 {
		t.Errorf("refused streams counted %v, want 1", n)
	}
	a2 := newADS(t, p.addr, "a-2", "alpha")
	if cds := a2.clusters(1, true); len(cds.Resources) == 0 {
		t.Error("a served group's new node is not served")
	}
}

// A client that names no node is of the default group, and is served although no group
// was configured.
func TestAClientWithoutANodeIsServed(t *testing.T) {
	p := startPlane(t) // no groups configured
	p.applyData(t, groupAPI("Alpha", "", 1))
	c := newADS(t, p.addr, "", "")
	c.node = nil
	if cds := c.clusters(1, true); len(cds.Resources) == 0 {
		t.Fatal("no clusters for a client without a node")
	}
}
