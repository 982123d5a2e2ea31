// Package ads serves xDS streams — aggregated (ADS) and per type, state of the world and
// delta — over caches that implement go-control-plane's cache interface (xds/rescache).
//
// It does what go-control-plane's stream servers do, at a fleet's scale: a stream's
// subscription is a name set shared by every stream that subscribes to the same names (a
// thousand Envoys of a gateway group subscribe to the same thousand clusters' endpoints),
// not a map per stream rebuilt at every state-of-the-world ACK; an ACK that restates the
// names it subscribes to costs a comparison of strings the request decoder shares
// (xds.ServerOptions), and what a stream last sent, for a NACK, is the stream's own, not
// a map behind a process-wide lock.
package ads

import (
	"context"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-gw/tollgate/xds/rescache"
)

// Watcher answers watches: go-control-plane's cache interface, without Fetch, over the
// subscriptions xds/rescache reads (which know what their stream holds).
type Watcher interface {
	CreateWatch(*cachev3.Request, rescache.Subscription, chan cachev3.Response) (cancel func(), err error)
	CreateDeltaWatch(*cachev3.DeltaRequest, rescache.Subscription, chan cachev3.DeltaResponse) (cancel func(), err error)
}

// Hooks are told what streams do. Each stream has an id of its own, from 1.
type Hooks interface {
	// Node is called with the node of each request that carries one (Envoy sends it in a
	// stream's first request, or in every one), and with nil for each request of a stream
	// that has named none; an error ends the stream with it.
	Node(stream uint64, node *corev3.Node) error
	// Refused is called when a client NACKs a response: the version it refused (for delta,
	// the response's system version) and its error message.
	Refused(stream uint64, node *corev3.Node, typeURL, version, message string)
	// Acked is called when a client ACKs a response: the version it took.
	Acked(stream uint64, node *corev3.Node, typeURL, version string)
	// Sent is called for each response sent.
	Sent(typeURL string)
	// Ended is called when a stream ends.
	Ended(stream uint64)
}

// Server serves the discovery services over a Watcher.
type Server struct {
	ctx   context.Context
	w     Watcher
	hooks Hooks
	sets  *sets
	ids   atomic.Uint64 // the last stream's id

	// Per-type services answer what ADS does, for clients configured with one stream per type.
	endpointservice.UnimplementedEndpointDiscoveryServiceServer
	clusterservice.UnimplementedClusterDiscoveryServiceServer
	routeservice.UnimplementedRouteDiscoveryServiceServer
	listenerservice.UnimplementedListenerDiscoveryServiceServer
	secretservice.UnimplementedSecretDiscoveryServiceServer
}

// New makes a server whose streams end when ctx does.
func New(ctx context.Context, w Watcher, hooks Hooks) *Server {
	return &Server{ctx: ctx, w: w, hooks: hooks, sets: newSets()}
}

// Register serves ADS and the per-type discovery services on g.
func (s *Server) Register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, s)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s)
	secretservice.RegisterSecretDiscoveryServiceServer(g, s)
}

// SharedSets is how many distinct subscriptions the streams hold.
func (s *Server) SharedSets() int { return s.sets.inUse() }

type sotwStreamServer = grpc.BidiStreamingServer[discoveryv3.DiscoveryRequest, discoveryv3.DiscoveryResponse]
type deltaStreamServer = grpc.BidiStreamingServer[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]

func (s *Server) StreamAggregatedResources(st sotwStreamServer) error { return s.sotw(st, "") }
func (s *Server) DeltaAggregatedResources(st deltaStreamServer) error { return s.delta(st, "") }

func (s *Server) StreamEndpoints(st sotwStreamServer) error {
	return s.sotw(st, resourcev3.EndpointType)
}
func (s *Server) DeltaEndpoints(st deltaStreamServer) error {
	return s.delta(st, resourcev3.EndpointType)
}
func (s *Server) StreamClusters(st sotwStreamServer) error { return s.sotw(st, resourcev3.ClusterType) }
func (s *Server) DeltaClusters(st deltaStreamServer) error {
	return s.delta(st, resourcev3.ClusterType)
}
func (s *Server) StreamRoutes(st sotwStreamServer) error { return s.sotw(st, resourcev3.RouteType) }
func (s *Server) DeltaRoutes(st deltaStreamServer) error { return s.delta(st, resourcev3.RouteType) }
func (s *Server) StreamListeners(st sotwStreamServer) error {
	return s.sotw(st, resourcev3.ListenerType)
}
func (s *Server) DeltaListeners(st deltaStreamServer) error {
	return s.delta(st, resourcev3.ListenerType)
}
func (s *Server) StreamSecrets(st sotwStreamServer) error { return s.sotw(st, resourcev3.SecretType) }
func (s *Server) DeltaSecrets(st deltaStreamServer) error { return s.delta(st, resourcev3.SecretType) }

// receive reads a stream's requests into a channel until it ends.
func receive[T any](ctx context.Context, recv func() (*T, error)) <-chan *T {
	ch := make(chan *T)
	go func() {
		defer close(ch)
		for {
			r, err := recv()
			if err != nil {
				return
			}
			select {
			case ch <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// serve runs a stream: it sends what the watches answer and hands each request to take,
// until the stream or the server ends.
func serve[Q, R any](ctx context.Context, reqs <-chan *Q, resps <-chan R, send func(R) error, take func(*Q) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-resps:
			if err := send(r); err != nil {
				return err
			}
		case req, ok := <-reqs:
			if !ok {
				return nil
			}
			if err := take(req); err != nil {
				return err
			}
		}
	}
}

// drain sends what watches have answered, so that the channel has room for the watch
// about to open (which may answer in CreateWatch itself).
func drain[T any](ch <-chan T, send func(T) error) error {
	for {
		select {
		case r := <-ch:
			if err := send(r); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// node keeps the node of a stream's request that carries one (telling the hooks) and gives
// it to a request that does not.
func (s *Server) node(id uint64, req **corev3.Node, stream **corev3.Node) error {
	if *req == nil {
		*req = *stream
		if *stream == nil {
			return s.hooks.Node(id, nil) // a stream that names no node is served too
		}
		return nil
	}
	*stream = *req
	return s.hooks.Node(id, *req)
}

// open gives a stream its id, and tells the hooks when the stream ends.
func (s *Server) open() (id uint64, end func()) {
	id = s.ids.Add(1)
	return id, func() { s.hooks.Ended(id) }
}

// typeOf is a request's type URL: its own, else the per-type service's; ADS requires one.
func typeOf(typeURL, service string) (string, error) {
	switch {
	case typeURL != "":
		return typeURL, nil
	case service != "":
		return service, nil
	}
	return "", status.Error(codes.InvalidArgument, "a type URL is required on an aggregated stream")
}

// watchSlots is the room in a stream's response channel: each type has at most one open
// watch, which answers once, and a stream reads what is waiting before it opens another
// (a watch may answer in CreateWatch itself).
const watchSlots = 16
