package ads

import (
	"errors"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tollgate-gw/tollgate/xds/rescache"
)

// deltaType is a delta stream's state for one type.
type deltaType struct {
	sub    *subscription
	cancel func()
	nonce  string // of the last response sent
	sent   string // its system version
}

// delta serves one delta stream; service is the per-type service's type URL, or "" for ADS.
func (s *Server) delta(st deltaStreamServer, service string) error {
	ctx := st.Context()
	reqs := receive(ctx, st.Recv)
	resps := make(chan cachev3.DeltaResponse, watchSlots)
	types := map[string]*deltaType{}
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

	// Every answer is sent, also one to a request since made: it brings the stream up to
	// date as of the subscription it was made for, and the cache reads what the stream
	// holds from what each response says (rescache.Answer's Held) when the next watch opens.
	send := func(r cachev3.DeltaResponse) error {
		t := types[r.GetDeltaRequest().GetTypeUrl()]
		out, err := r.GetDeltaDiscoveryResponse()
		if err != nil {
			return err
		}
		nonce++
		out.Nonce = strconv.FormatUint(nonce, 10)
		t.nonce, t.sent = out.Nonce, out.SystemVersionInfo
		if a, ok := r.(rescache.Answer); ok {
			t.sub.held = a.Held()
		}
		s.hooks.Sent(out.TypeUrl)
		return st.Send(out)
	}
	take := func(req *discoveryv3.DeltaDiscoveryRequest) error {
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
			t.cancel()
		}
		if err := drain(resps, send); err != nil {
			return err
		}
		answers := t != nil && t.nonce != "" && req.ResponseNonce == t.nonce
		switch {
		case req.ErrorDetail != nil:
			version := req.ResponseNonce
			if answers {
				version = t.sent
			}
			s.hooks.Refused(id, node, typeURL, version, req.ErrorDetail.GetMessage())
		case answers:
			s.hooks.Acked(id, node, typeURL, t.sent)
		}
		if t != nil {
			t.sub.change(s.sets, req.ResourceNamesSubscribe, req.ResourceNamesUnsubscribe)
		} else {
			t = &deltaType{sub: newDeltaSubscription(s.sets, req.ResourceNamesSubscribe, req.ResourceNamesUnsubscribe, req.InitialResourceVersions), cancel: func() {}}
			types[typeURL] = t
		}
		cancel, err := s.w.CreateDeltaWatch(req, t.sub, resps)
		switch {
		case errors.Is(err, rescache.ErrResync):
			return status.Error(codes.Unavailable, err.Error()) // the client reconnects
		case err != nil:
			return status.Error(codes.InvalidArgument, err.Error())
		}
		t.cancel = cancel
		return nil
	}
	return serve(s.ctx, reqs, resps, send, take)
}
