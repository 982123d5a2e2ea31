package xds

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/xds/rescache"
)

// FuzzDecodeRequest holds the request decoder to protobuf's own: whatever the bytes, a
// DiscoveryRequest and a DeltaDiscoveryRequest decode to what proto.Unmarshal gives (or
// both refuse), also when the same bytes come again and the names are a list decoded
// before, and decoding neither panics nor allocates beyond a bound of the input's size.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range seedRequests(f) {
		f.Add(seed)
	}
	held := rescache.NewNames()
	c := rescache.New(resourcev3.EndpointType, "f-", held)
	var served []types.Resource
	for _, name := range goldenClusterNames(f)[:20] {
		served = append(served, &endpointv3.ClusterLoadAssignment{ClusterName: name})
	}
	if err := c.Set(served); err != nil {
		f.Fatal(err)
	}
	codec := newSharedCodec(held)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, want := range []proto.Message{&discoveryv3.DiscoveryRequest{}, &discoveryv3.DeltaDiscoveryRequest{}} {
			wantErr := proto.Unmarshal(b, want)
			for round := range 2 { // the second time, a list decoded before may be handed out
				got := want.ProtoReflect().New().Interface()
				before := tu.Allocated()
				err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got)
				grew := tu.Allocated() - before
				switch {
				case (err == nil) != (wantErr == nil):
					t.Fatalf("%T, round %d: codec says %v, proto.Unmarshal %v", want, round, err, wantErr)
				case err == nil && !proto.Equal(got, want):
					t.Fatalf("%T, round %d: decoded\n%v\nproto.Unmarshal gives\n%v", want, round, got, want)
				}
				// What the codec keeps of a list is bounded by maxListBytes; what it allocates
				// for one request, by a multiple of the request's size.
				if grew > uint64(64*len(b))+64<<10 {
					t.Fatalf("%T: decoding %d bytes allocated %d", want, len(b), grew)
				}
			}
		}
	})
}

// seedRequests are requests as Envoys send them for the golden configurations: a first
// request with the node, ACKs restating every cluster's endpoints, a NACK, delta
// subscriptions with initial versions.
func seedRequests(f *testing.F) [][]byte {
	names := goldenClusterNames(f)
	node := &corev3.Node{Id: "envoy-7c9f", Cluster: "edge", UserAgentName: "envoy",
		UserAgentVersionType: &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
			Version: &typev3.SemanticVersion{MajorNumber: 1, MinorNumber: 31, Patch: 2}, Metadata: mustStruct(f, map[string]any{"revision.sha": "1f2e3d", "build.type": "RELEASE", "revision.status": "Clean", "ssl.version": "BoringSSL"})}},
		Metadata:       mustStruct(f, map[string]any{"tollgate_group": "edge"}),
		Locality:       &corev3.Locality{Region: "eu-west-1", Zone: "a"},
		ClientFeatures: []string{"envoy.lb.does_not_support_overprovisioning", "envoy.lrs.supports_send_all_clusters"},
		Extensions:     []*corev3.Extension{{Name: "envoy.filters.http.ext_authz", Category: "envoy.filters.http", TypeUrls: []string{"type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"}}},
	}
	msgs := []proto.Message{
		&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType},
		&discoveryv3.DiscoveryRequest{VersionInfo: "k3x-4.9f2c1b0a77e1d3c2", TypeUrl: resourcev3.EndpointType, ResourceNames: names, ResponseNonce: "12"},
		&discoveryv3.DiscoveryRequest{VersionInfo: "k3x-3.0011", TypeUrl: resourcev3.RouteType, ResourceNames: []string{"tollgate_routes"}, ResponseNonce: "13",
			ErrorDetail: &rpcstatus.Status{Code: 3, Message: "Proto constraint validation failed (RouteConfigurationValidationError.VirtualHosts[0])"}},
		&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: names,
			InitialResourceVersions: map[string]string{names[0]: "5aecaf05d7a1b2c3"}},
		&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: names[:3], ResourceNamesUnsubscribe: names[3:5], ResponseNonce: "4"},
		&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResourceNamesSubscribe: []string{"*"}},
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	// Names on both sides of another field, as a hand-made client may send them.
	split, _ := proto.Marshal(&discoveryv3.DiscoveryRequest{ResourceNames: names[:2]})
	return append(out, append(slices.Clone(out[1]), split...))
}

// goldenClusterNames are the endpoint clusters the golden configurations name.
func goldenClusterNames(f *testing.F) []string {
	files, _ := filepath.Glob("build/testdata/*.endpoints.yaml")
	re := regexp.MustCompile(`(?m)^- clusterName: (\S+)$`)
	var names []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names = append(names, string(m[1]))
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) < 20 {
		f.Fatalf("only %d cluster names in the golden files", len(names))
	}
	return names
}

func mustStruct(f *testing.F, m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		f.Fatal(err)
	}
	return s
}
