package xds

import (
	"errors"
	"slices"
	"unicode/utf8"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tollgate-gw/tollgate/xds/rescache"

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

// Unmarshal is the proto codec's, except that the resource names of a discovery request
// are the copies the caches hold (xds/rescache.Names) when they name a resource served:
// an Envoy's state-of-the-world ACK restates every name it subscribes to (a thousand
// clusters' endpoints, say), and a thousand Envoys would otherwise hold, and allocate at
// every ACK, a copy each.
func (c sharedCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var fields [2]protowire.Number // the request's repeated resource-name fields
	var lists [2]*[]string
	switch r := v.(type) {
	case *discoveryv3.DiscoveryRequest:
		fields, lists = [2]protowire.Number{3}, [2]*[]string{&r.ResourceNames}
	case *discoveryv3.DeltaDiscoveryRequest:
		fields, lists = [2]protowire.Number{3, 4}, [2]*[]string{&r.ResourceNamesSubscribe, &r.ResourceNamesUnsubscribe}
	default:
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	rest := make([]byte, 0, 256)
	var found [2][]string
	var err error
	rescache.Names(func(lookup func([]byte) (string, bool)) {
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				err = protowire.ParseError(n)
				return
			}
			m := protowire.ConsumeFieldValue(num, typ, b[n:])
			if m < 0 {
				err = protowire.ParseError(m)
				return
			}
			field := b[:n+m]
			i := slices.Index(fields[:], num)
			if num == 0 || i < 0 || typ != protowire.BytesType {
				rest = append(rest, field...)
				b = b[n+m:]
				continue
			}
			name, _ := protowire.ConsumeBytes(b[n:])
			b = b[n+m:]
			if s, ok := lookup(name); ok {
				found[i] = append(found[i], s)
				continue
			}
			if !utf8.Valid(name) {
				err = errors.New("proto: a resource name is not valid UTF-8")
				return
			}
			found[i] = append(found[i], string(name))
		}
	})
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(rest, v.(proto.Message)); err != nil {
		return err
	}
	for i, l := range lists {
		if l != nil && len(found[i]) > 0 {
			*l = found[i]
		}
	}
	return nil
}
