package ads

import (
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-gw/tollgate/xds/rescache"
)

// sotwType is a state-of-the-world stream's state for one type.
type sotwType struct {
	sub    *subscription
	req    *discoveryv3.DiscoveryRequest // of the open watch; responses to another are stale
	cancel func()
	nonce  string // of the last response sent, until a request answers it
	sent   string // the version of the last response sent
}

// sotw serves one state-of-the-world stream; service is the per-type service's type URL,
// or "" for ADS.
func (s *Server) sotw(st sotwStreamServer, service string) error {
	ctx := st.Context()
	reqs := receive(ctx, st.Recv)
	resps := make(chan cachev3.Response, watchSlots)
	types := map[string]*sotwType{}
	var node *corev3.Node
	var nonce uint64
	id, end := s.open()
	defer end()
	defer func() {
		for _, t := range types {
			t.cancel()
			t.sub.end(s.sets)
		}
	}()

	send := func(r cachev3.Response) error {
		t := types[r.GetRequest().GetTypeUrl()]
		if t == nil || r.GetRequest() != t.req {
			return nil // answers a request since superseded
		}
		out, err := r.GetDiscoveryResponse()
		if err != nil {
			return err
		}
		nonce++
		out.Nonce = strconv.FormatUint(nonce, 10)
		t.nonce, t.sent = out.Nonce, out.VersionInfo
		// What the stream holds once it has this (xds/rescache's answers say).
		if a, ok := r.(rescache.Answer); ok {
			t.sub.held = a.Held()
		}
		s.hooks.Sent(out.TypeUrl)
		return st.Send(out)
	}
	take := func(req *discoveryv3.DiscoveryRequest) error {
		if err := s.node(id, &req.Node, &node); err != nil {
			return err
		}
		typeURL, err := typeOf(req.TypeUrl, service)
		if err != nil {
			return err
		}
		req.TypeUrl = typeURL
		t := types[typeURL]
		if t != nil {
			if t.nonce != "" && req.ResponseNonce != t.nonce {
				// Made before the last response arrived (it answers an earlier one): the
				// protocol says to ignore it; the client answers the last one.
				return nil
			}
			t.cancel()
			switch {
			case req.ErrorDetail != nil && t.nonce != "":
				s.hooks.Refused(id, node, typeURL, t.sent, req.ErrorDetail.GetMessage())
				// It holds the refused version as far as the cache is concerned: it is
				// answered when the version changes, not at once with the same.
				req.VersionInfo = t.sent
			case t.nonce != "":
				s.hooks.Acked(id, node, typeURL, t.sent)
			}
			// Until the next response, any request of the type is taken, as
			// go-control-plane does (a client may change its subscription without a nonce).
			t.nonce = ""
			t.sub.update(s.sets, req.ResourceNames)
		} else {
			t = &sotwType{sub: newSotwSubscription(s.sets, req.ResourceNames), cancel: func() {}}
			types[typeURL] = t
		}
		if !t.sub.wildcard {
			req.ResourceNames = t.sub.set.list // the shared copy: the request's own goes
		}
		t.req = req
		if err := drain(resps, send); err != nil {
			return err
		}
		cancel, err := s.w.CreateWatch(req, t.sub, resps)
		if err != nil {
			t.cancel = func() {}
			return status.Error(codes.InvalidArgument, err.Error())
		}
		t.cancel = cancel
		return nil
	}
	return serve(s.ctx, reqs, resps, send, take)
}
