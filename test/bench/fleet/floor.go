package main

import (
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
)

// The floor is a do-nothing ADS server run beside tollgate in the same program: it holds
// the configuration tollgate served the probe, one response per type, and sends it once
// per stream and type whatever the request says; on POST /eds it sends the one assignment
// posted to every stream. It keeps no subscription, checks nothing, builds nothing: what
// any xDS server over gRPC-Go must spend at least. The same simulated fleet against it
// gives the floor under tollgate's figures on this machine, in the same run.
type floor struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	state map[string][]*anypb.Any            // by type
	delta map[string][]*discoveryv3.Resource // the same, for delta streams

	mu      sync.Mutex
	streams map[chan *anypb.Any]bool
}

// captured is what the probe was last sent, by type and name.
type captured map[string]map[string]*anypb.Any

// writeState stores the captured state for the floor's process.
func writeState(file string, c captured) {
	f, err := os.Create(file)
	benchutil.Check(err)
	defer f.Close()
	for typeURL, byName := range c {
		r := &discoveryv3.DiscoveryResponse{TypeUrl: typeURL}
		for _, a := range byName {
			r.Resources = append(r.Resources, a)
		}
		b, err := proto.Marshal(r)
		benchutil.Check(err)
		benchutil.Check(binary.Write(f, binary.BigEndian, uint64(len(b))))
		_, err = f.Write(b)
		benchutil.Check(err)
	}
}

func readState(file string) map[string][]*anypb.Any {
	f, err := os.Open(file)
	benchutil.Check(err)
	defer f.Close()
	out := map[string][]*anypb.Any{}
	for {
		var n uint64
		if err := binary.Read(f, binary.BigEndian, &n); err == io.EOF {
			return out
		} else {
			benchutil.Check(err)
		}
		b := make([]byte, n)
		_, err := io.ReadFull(f, b)
		benchutil.Check(err)
		r := &discoveryv3.DiscoveryResponse{}
		benchutil.Check(proto.Unmarshal(b, r))
		out[r.TypeUrl] = r.Resources
	}
}

// serveFloor runs the floor until killed.
func serveFloor(addr, admin, stateFile string) {
	f := &floor{state: readState(stateFile), delta: map[string][]*discoveryv3.Resource{}, streams: map[chan *anypb.Any]bool{}}
	for typeURL, rs := range f.state {
		for _, a := range rs {
			f.delta[typeURL] = append(f.delta[typeURL], &discoveryv3.Resource{Name: routeConfigName(a.Value), Version: "floor", Resource: a})
		}
	}
	lis, err := net.Listen("tcp", addr)
	benchutil.Check(err)
	g := grpc.NewServer(grpc.StaticStreamWindowSize(1<<20), grpc.StaticConnWindowSize(1<<20))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, f)
	http.HandleFunc("POST /eds", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		a := &anypb.Any{TypeUrl: resourcev3.EndpointType, Value: b}
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.mu.Lock()
		for ch := range f.streams {
			ch <- a
		}
		f.mu.Unlock()
	})
	go func() { benchutil.Check(http.ListenAndServe(admin, nil)) }()
	benchutil.Check(g.Serve(lis))
}

func (f *floor) join() chan *anypb.Any {
	ch := make(chan *anypb.Any, 4)
	f.mu.Lock()
	f.streams[ch] = true
	f.mu.Unlock()
	return ch
}

func (f *floor) leave(ch chan *anypb.Any) {
	f.mu.Lock()
	delete(f.streams, ch)
	f.mu.Unlock()
}

func requests[T any](recv func() (*T, error)) <-chan *T {
	ch := make(chan *T)
	go func() {
		defer close(ch)
		for {
			r, err := recv()
			if err != nil {
				return
			}
			ch <- r
		}
	}()
	return ch
}

func (f *floor) StreamAggregatedResources(st grpc.BidiStreamingServer[discoveryv3.DiscoveryRequest, discoveryv3.DiscoveryResponse]) error {
	changes := f.join()
	defer f.leave(changes)
	reqs := requests(st.Recv)
	sent := map[string]bool{}
	nonce := 0
	send := func(typeURL string, rs []*anypb.Any) error {
		nonce++
		return st.Send(&discoveryv3.DiscoveryResponse{TypeUrl: typeURL, VersionInfo: "floor-" + strconv.Itoa(nonce), Nonce: strconv.Itoa(nonce), Resources: rs})
	}
	for {
		select {
		case r, ok := <-reqs:
			if !ok {
				return nil
			}
			if !sent[r.TypeUrl] {
				sent[r.TypeUrl] = true
				if err := send(r.TypeUrl, f.state[r.TypeUrl]); err != nil {
					return err
				}
			}
		case a := <-changes:
			if err := send(resourcev3.EndpointType, []*anypb.Any{a}); err != nil {
				return err
			}
		}
	}
}

func (f *floor) DeltaAggregatedResources(st grpc.BidiStreamingServer[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]) error {
	changes := f.join()
	defer f.leave(changes)
	reqs := requests(st.Recv)
	sent := map[string]bool{}
	nonce := 0
	send := func(typeURL string, rs []*discoveryv3.Resource) error {
		nonce++
		return st.Send(&discoveryv3.DeltaDiscoveryResponse{TypeUrl: typeURL, SystemVersionInfo: "floor", Nonce: strconv.Itoa(nonce), Resources: rs})
	}
	for {
		select {
		case r, ok := <-reqs:
			if !ok {
				return nil
			}
			if !sent[r.TypeUrl] {
				sent[r.TypeUrl] = true
				if err := send(r.TypeUrl, f.delta[r.TypeUrl]); err != nil {
					return err
				}
			}
		case a := <-changes:
			if err := send(resourcev3.EndpointType, []*discoveryv3.Resource{{Name: routeConfigName(a.Value), Version: "floor", Resource: a}}); err != nil {
				return err
			}
		}
	}
}
