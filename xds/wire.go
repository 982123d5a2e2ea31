package xds

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	// The proto codec registers itself; ours wraps it.
	_ "google.golang.org/grpc/encoding/proto"
)

// ServerOptions are the gRPC server options the control plane's port needs at fleet scale:
// a codec that writes the resources of a response (xds/rescache frames them once, as the
// message's unknown fields) from the bytes every stream shares instead of copying them
// into a buffer per stream. (gRPC-Go already gives write buffers back between writes, so
// idle Envoys hold none.)
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(sharedCodec{encoding.GetCodecV2("proto")})}
}

// sharedCodec is the proto codec, except that a discovery response's unknown fields — the
// pre-framed resources — follow its own fields as a buffer of their own. Protobuf allows
// fields in any order, so the bytes on the wire decode to the same message.
type sharedCodec struct{ encoding.CodecV2 }

func (c sharedCodec) Marshal(v any) (mem.BufferSlice, error) {
	var m protoreflect.Message
	switch r := v.(type) {
	case *discoveryv3.DiscoveryResponse:
		m = r.ProtoReflect()
	case *discoveryv3.DeltaDiscoveryResponse:
		m = r.ProtoReflect()
	default:
		return c.CodecV2.Marshal(v)
	}
	shared := m.GetUnknown()
	if len(shared) == 0 {
		return c.CodecV2.Marshal(v)
	}
	// The message is the stream's own (made for this send), so it may be changed here.
	m.SetUnknown(nil)
	head, err := proto.Marshal(m.Interface())
	m.SetUnknown(shared)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(shared)}, nil
}

func (sharedCodec) Name() string { return "proto" }
