package rescache

import (
	"context"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// Answer is what the cache's responses add to go-control-plane's: what the stream holds
// once the response is sent, for the stream server to keep (Subscription.Held).
type Answer interface{ Held() Held }

// response is a state-of-the-world answer. Its resources are already framed as the
// message's resources field and go in as unknown fields: on the wire the message is the
// same, the bytes are shared by every stream, and the server's codec (xds.Server's
// ServerOptions) writes them without copying.
type response struct {
	req       *cachev3.Request
	version   string
	typeURL   string
	resources []byte
	held      Held
}

var _ Answer = (*response)(nil)

// GetDiscoveryResponse is a new message each time (the server sets its nonce).
func (r *response) GetDiscoveryResponse() (*discoveryv3.DiscoveryResponse, error) {
	out := &discoveryv3.DiscoveryResponse{VersionInfo: r.version, TypeUrl: r.typeURL}
	if len(r.resources) > 0 {
		out.ProtoReflect().SetUnknown(r.resources)
	}
	return out, nil
}

func (r *response) Held() Held { return r.held }

// GetReturnedResources is not kept: what the stream holds is Held.
func (r *response) GetReturnedResources() map[string]string   { return nil }
func (r *response) GetRequest() *discoveryv3.DiscoveryRequest { return r.req }
func (r *response) GetVersion() (string, error)               { return r.version, nil }
func (r *response) GetResponseVersion() string                { return r.version }
func (r *response) GetContext() context.Context               { return context.Background() }

// deltaResponse is a delta answer, framed and shared the same way.
type deltaResponse struct {
	req       *cachev3.DeltaRequest
	version   string
	typeURL   string
	resources []byte
	removed   []string
	held      Held
}

var _ Answer = (*deltaResponse)(nil)

func (r *deltaResponse) GetDeltaDiscoveryResponse() (*discoveryv3.DeltaDiscoveryResponse, error) {
	out := &discoveryv3.DeltaDiscoveryResponse{SystemVersionInfo: r.version, TypeUrl: r.typeURL, RemovedResources: r.removed}
	if len(r.resources) > 0 {
		out.ProtoReflect().SetUnknown(r.resources)
	}
	return out, nil
}

func (r *deltaResponse) Held() Held { return r.held }

// GetNextVersionMap is not kept: what the stream holds is Held.
func (r *deltaResponse) GetNextVersionMap() map[string]string                { return nil }
func (r *deltaResponse) GetReturnedResources() map[string]string             { return nil }
func (r *deltaResponse) GetDeltaRequest() *discoveryv3.DeltaDiscoveryRequest { return r.req }
func (r *deltaResponse) GetSystemVersion() (string, error)                   { return r.version, nil }
func (r *deltaResponse) GetResponseVersion() string                          { return r.version }
func (r *deltaResponse) GetContext() context.Context                         { return context.Background() }
