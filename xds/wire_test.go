package xds

import (
	"fmt"
	"slices"
	"testing"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate-gw/tollgate/xds/rescache"
)

func codec(held *rescache.Names) sharedCodec { return newSharedCodec(held) }

// A request decodes to the same message as with the proto codec, and the names of served
// resources are the caches' own copies.
func TestCodecDecodesRequestsWithSharedNames(t *testing.T) {
	held := rescache.NewNames()
	c := rescache.New(resourcev3.EndpointType, "w-", held)
	if err := c.Set([]types.Resource{&endpointv3.ClusterLoadAssignment{ClusterName: "served"}}); err != nil {
		t.Fatal(err)
	}
	heldName := func() string {
		for n := range c.Resources() {
			return n
		}
		return ""
	}()
	for _, m := range []proto.Message{
		&discoveryv3.DiscoveryRequest{VersionInfo: "v1", Node: &corev3.Node{Id: "n", Cluster: "g"}, TypeUrl: resourcev3.EndpointType,
			ResourceNames: []string{"served", "unknown", "served"}, ResponseNonce: "7", ErrorDetail: &rpcstatus.Status{Code: 3, Message: "no"}},
		&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "n"}, TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: []string{"served", "x"},
			ResourceNamesUnsubscribe: []string{"y", "served"}, InitialResourceVersions: map[string]string{"served": "h"}, ResponseNonce: "3"},
		&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.ClusterType}, // no names
	} {
		wire, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := m.ProtoReflect().New().Interface()
		if err := codec(held).Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, m) {
			t.Errorf("decoded %v, want %v", got, m)
		}
		var names []string
		switch r := got.(type) {
		case *discoveryv3.DiscoveryRequest:
			names = r.ResourceNames
		case *discoveryv3.DeltaDiscoveryRequest:
			names = append(r.ResourceNamesSubscribe, r.ResourceNamesUnsubscribe...)
		}
		for _, n := range names {
			if n == "served" && unsafe.StringData(n) != unsafe.StringData(heldName) {
				t.Errorf("the name of a served resource is a copy of its own")
			}
		}
	}
	// Not UTF-8: refused, as the proto codec refuses it.
	bad, _ := proto.Marshal(&discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType})
	bad = append(bad, 0x1a, 2, 0xff, 0xfe)
	if err := codec(held).Unmarshal(mem.BufferSlice{mem.SliceBuffer(bad)}, &discoveryv3.DiscoveryRequest{}); err == nil {
		t.Error("a resource name that is not UTF-8 was accepted")
	}
}

// A long list of names decoded before is handed out again for the same bytes (every ACK of
// every Envoy of a group restates the same list), never for other bytes, and names split
// around other fields still decode in order.
func TestCodecSharesListsDecodedBefore(t *testing.T) {
	c := codec(nil)
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("cluster-%03d", i))
	}
	decode := func(m proto.Message) proto.Message {
		t.Helper()
		wire, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := m.ProtoReflect().New().Interface()
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("decoded %v, want %v", got, m)
		}
		return got
	}
	req := func(names []string, nonce string) *discoveryv3.DiscoveryRequest {
		return &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: names, VersionInfo: "v" + nonce, ResponseNonce: nonce}
	}
	a := decode(req(names, "1")).(*discoveryv3.DiscoveryRequest)
	b := decode(req(slices.Clone(names), "2")).(*discoveryv3.DiscoveryRequest)
	if unsafe.SliceData(a.ResourceNames) != unsafe.SliceData(b.ResourceNames) {
		t.Error("the same list of names was decoded twice")
	}
	// The same length, one name different: its own list.
	other := slices.Clone(names)
	other[57] = "cluster-999"
	o := decode(req(other, "3")).(*discoveryv3.DiscoveryRequest)
	if unsafe.SliceData(o.ResourceNames) == unsafe.SliceData(a.ResourceNames) || o.ResourceNames[57] != "cluster-999" {
		t.Error("a different list got the one decoded before")
	}
	// Delta: the subscribed list may be shared, the unsubscribed one is decoded too.
	decode(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: names, ResourceNamesUnsubscribe: []string{"gone"}})
	// Names on both sides of another field: all of them, in order.
	wire, _ := proto.Marshal(req(names[:50], "4"))
	tail, _ := proto.Marshal(&discoveryv3.DiscoveryRequest{ResourceNames: names[50:]})
	got := &discoveryv3.DiscoveryRequest{}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(append(wire, tail...))}, got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.ResourceNames, names) || got.ResponseNonce != "4" {
		t.Errorf("split names decoded as %d names, nonce %q", len(got.ResourceNames), got.ResponseNonce)
	}
}

// A response whose resources are pre-framed (unknown fields) is written as two buffers and
// decodes to the message with those resources.
func TestCodecWritesSharedResources(t *testing.T) {
	c := rescache.New(resourcev3.EndpointType, "w-", nil)
	c.Set([]types.Resource{&endpointv3.ClusterLoadAssignment{ClusterName: "a"}})
	resp := &discoveryv3.DiscoveryResponse{VersionInfo: c.Version(), TypeUrl: resourcev3.EndpointType, Nonce: "1"}
	framed, _ := proto.Marshal(&discoveryv3.DiscoveryResponse{Resources: mustAnys(t, &endpointv3.ClusterLoadAssignment{ClusterName: "a"})})
	resp.ProtoReflect().SetUnknown(framed)
	bs, err := codec(nil).Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || &bs[1].ReadOnlyData()[0] != &framed[0] {
		t.Fatalf("the shared resources were copied (%d buffers)", len(bs))
	}
	got := &discoveryv3.DiscoveryResponse{}
	if err := proto.Unmarshal(bs.Materialize(), got); err != nil {
		t.Fatal(err)
	}
	cla := &endpointv3.ClusterLoadAssignment{}
	if got.Nonce != "1" || len(got.Resources) != 1 || got.Resources[0].UnmarshalTo(cla) != nil || cla.ClusterName != "a" {
		t.Fatalf("decoded %v", got)
	}
	if len(resp.ProtoReflect().GetUnknown()) == 0 {
		t.Error("the codec left the message without its resources")
	}
}

func mustAnys(t *testing.T, ms ...proto.Message) []*anypb.Any {
	var out []*anypb.Any
	for _, m := range ms {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}
