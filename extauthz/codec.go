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
// UTF-8 in every string field (nested messages and map entries included).
func repairUTF8(b []byte, md protoreflect.MessageDescriptor) ([]byte, bool) {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		fd := md.Fields().ByNumber(num)
		if typ != protowire.BytesType || fd == nil {
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
		switch fd.Kind() {
		case protoreflect.StringKind:
			v = []byte(strings.ToValidUTF8(string(v), "\uFFFD"))
		case protoreflect.MessageKind:
			var ok bool
			if v, ok = repairUTF8(v, fd.Message()); !ok {
				return nil, false
			}
		}
		out = protowire.AppendTag(out, num, typ)
		out = protowire.AppendBytes(out, v)
		b = b[n+m:]
	}
	return out, true
}
