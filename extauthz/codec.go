package extauthz

import (
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// lenientCodec is gRPC's protobuf codec, except that a CheckRequest whose string fields
// are not valid UTF-8 (proto3 requires it; HTTP does not: a path or, without raw header
// encoding, a header value may carry any byte) is still decoded — its strings with the bad
// bytes replaced, and marked — so that the enforcer can deny it with a fault instead of the
// call failing with a bare gRPC error that Envoy turns into its own status.
type lenientCodec struct{ base encoding.CodecV2 }

// invalidUTF8Key marks a CheckRequest that had to be repaired. Only the codec sets it: the
// metadata context comes from Envoy's configuration, never from the client.
const invalidUTF8Key = "tollgate.invalid_utf8"

func newLenientCodec() lenientCodec { return lenientCodec{base: encoding.GetCodecV2("proto")} }

// Codec is the codec ServerOptions force, for a server that wraps it to host other
// services on the enforcer's port.
func Codec() encoding.CodecV2 { return newLenientCodec() }

func (c lenientCodec) Name() string { return c.base.Name() }

func (c lenientCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	req, ok := v.(*authv3.CheckRequest)
	if err == nil || !ok || !strings.Contains(err.Error(), "UTF-8") {
		return err
	}
	fixed, ok := repairUTF8(data.Materialize(), req.ProtoReflect().Descriptor())
	if !ok {
		return err
	}
	proto.Reset(req)
	if err := proto.Unmarshal(fixed, req); err != nil {
		return err
	}
	markInvalidUTF8(req)
	return nil
}

func markInvalidUTF8(req *authv3.CheckRequest) {
	if req.Attributes == nil {
		req.Attributes = &authv3.AttributeContext{}
	}
	if req.Attributes.MetadataContext == nil {
		req.Attributes.MetadataContext = &corev3.Metadata{}
	}
	if req.Attributes.MetadataContext.FilterMetadata == nil {
		req.Attributes.MetadataContext.FilterMetadata = map[string]*structpb.Struct{}
	}
	req.Attributes.MetadataContext.FilterMetadata[invalidUTF8Key] = &structpb.Struct{}
}

func hadInvalidUTF8(attrs *authv3.AttributeContext) bool {
	_, ok := attrs.GetMetadataContext().GetFilterMetadata()[invalidUTF8Key]
	return ok
}

// repairUTF8 rewrites the wire form of a message of type md, replacing bytes that are not
// UTF-8 in every string field (nested messages and map entries included). It is linear in
// the input whatever the nesting: every level writes into one buffer, a nested message's
// length as a varint of a fixed width (protobuf decoders take varints of any width up to
// ten bytes), so no level copies what the levels below wrote. It refuses what is not well
// formed and what nests deeper than protobuf's decoder would (maxDepth).
func repairUTF8(b []byte, md protoreflect.MessageDescriptor) ([]byte, bool) {
	return repairInto(make([]byte, 0, len(b)+len(b)/8), b, md, 0)
}

// maxDepth is protobuf-go's default recursion limit.
const maxDepth = 10000

// lengthWidth is the width of a nested message's length: up to 2^35-1 bytes, more than
// gRPC lets a request carry.
const lengthWidth = 5

func repairInto(out, b []byte, md protoreflect.MessageDescriptor, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return nil, false
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		fd := md.Fields().ByNumber(num)
		kind := protoreflect.Kind(0)
		if fd != nil && typ == protowire.BytesType {
			kind = fd.Kind()
		}
		if kind != protoreflect.StringKind && kind != protoreflect.MessageKind {
			m := protowire.ConsumeFieldValue(num, typ, b[n:])
			if m < 0 {
				return nil, false
			}
			out = append(out, b[:n+m]...)
			b = b[n+m:]
			continue
		}
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			return nil, false
		}
		out = append(out, b[:n]...) // the tag
		if kind == protoreflect.StringKind {
			out = protowire.AppendBytes(out, []byte(strings.ToValidUTF8(string(v), "\uFFFD")))
		} else {
			at := len(out)
			out = append(out, make([]byte, lengthWidth)...)
			var ok bool
			if out, ok = repairInto(out, v, fd.Message(), depth+1); !ok {
				return nil, false
			}
			putWideVarint(out[at:at+lengthWidth], uint64(len(out)-at-lengthWidth))
		}
		b = b[n+m:]
	}
	return out, true
}

// putWideVarint writes x as a varint of exactly len(dst) bytes.
func putWideVarint(dst []byte, x uint64) {
	for i := range dst {
		dst[i] = byte(x&0x7f) | 0x80
		x >>= 7
	}
	dst[len(dst)-1] &^= 0x80
}
