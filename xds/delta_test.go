package xds_test

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// A delta-xDS client gets the clusters, subscribes to one cluster's endpoints, and on an
// etcd change receives that assignment alone.
func TestDeltaADS(t *testing.T) {
	p := startPlane(t)
	p.apply(t, "online-store")
	stream, err := discoverygrpc.NewAggregatedDiscoveryServiceClient(dial(t, p.addr)).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "delta-1", Cluster: "edge"}
	in := make(chan *discoverygrpc.DeltaDiscoveryResponse, 20)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				close(in)
				return
			}
			in <- r
		}
	}()
	recv := func(typeURL string) *discoverygrpc.DeltaDiscoveryResponse {
		t.Helper()
		select {
		case r := <-in:
			if r == nil || r.TypeUrl != typeURL {
				t.Fatalf("got %v, want %s", r, typeURL)
			}
			stream.Send(&discoverygrpc.DeltaDiscoveryRequest{Node: node, TypeUrl: typeURL, ResponseNonce: r.Nonce})
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no delta %s", typeURL)
		}
		return nil
	}
	stream.Send(&discoverygrpc.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType})
	// Delta responses carry what changed: gather clusters until the search one is there.
	var search string
	for search == "" {
		for _, r := range recv(resourcev3.ClusterType).Resources {
			c := &clusterv3.Cluster{}
			r.Resource.UnmarshalTo(c)
			if strings.Contains(c.Name, "searchItem_etcd_key") {
				search = c.Name
			}
		}
	}
	stream.Send(&discoverygrpc.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: []string{search}})
	if eds := recv(resourcev3.EndpointType); len(eds.Resources) != 1 {
		t.Fatalf("subscribed to one cluster, got %d assignments", len(eds.Resources))
	}
	p.st.Put(t.Context(), "endpoints/searchItem_etcd_key", `["http://10.0.0.7:80","http://10.0.0.8:80"]`)
	eds := recv(resourcev3.EndpointType)
	cla := &endpointv3.ClusterLoadAssignment{}
	eds.Resources[0].Resource.UnmarshalTo(cla)
	if len(eds.Resources) != 1 || cla.ClusterName != search || len(cla.Endpoints[0].LbEndpoints) != 2 {
		t.Fatalf("delta update %v", cla)
	}
	select {
	case r := <-in:
		t.Fatalf("an endpoint change sent %s too", r.GetTypeUrl())
	case <-time.After(300 * time.Millisecond):
	}
}
