package extauthz

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// FuzzDecodeCheckRequest holds the lenient decoder to protobuf's own. Whatever the bytes:
// what proto.Unmarshal decodes, the codec decodes the same and does not mark; what it
// refuses only because a string is not UTF-8, the codec decodes to what an independent
// repair gives — the message decoded with every string field read as bytes (so protobuf
// itself says what is well formed), each of those made valid UTF-8 — and marks; what is
// not well formed, both refuse. Decoding never panics, and allocates at most a bound of the
// input's size, however deep the nesting.
func FuzzDecodeCheckRequest(f *testing.F) {
	for _, seed := range checkSeeds(f) {
		f.Add(seed)
	}
	lenient, stringsAsBytes := allBytes(f)
	codec := newLenientCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &authv3.CheckRequest{}
		wantErr := proto.Unmarshal(b, want)
		got := &authv3.CheckRequest{}
		before := tu.Allocated()
		err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got)
		if grew := tu.Allocated() - before; grew > uint64(16*len(b))+64<<10 {
			t.Fatalf("decoding %d bytes allocated %d", len(b), grew)
		}
		if wantErr == nil {
			if err != nil || !proto.Equal(got, want) {
				t.Fatalf("a valid request: codec gives %v (%v), proto.Unmarshal %v", got, err, want)
			}
			return
		}
		dyn := dynamicpb.NewMessage(lenient)
		if proto.Unmarshal(b, dyn) != nil {
			if err == nil {
				t.Fatalf("not well formed (%v), yet the codec decoded %v", wantErr, got)
			}
			return
		}
		if !strings.Contains(wantErr.Error(), "UTF-8") {
			t.Fatalf("well formed with strings as bytes, yet refused for %v", wantErr)
		}
		if err != nil {
			t.Fatalf("only a string that is not UTF-8, yet the codec refused it: %v", err)
		}
		repair(dyn, stringsAsBytes)
		fixed, err := proto.Marshal(dyn)
		if err != nil {
			t.Fatal(err)
		}
		want = &authv3.CheckRequest{}
		if err := proto.Unmarshal(fixed, want); err != nil {
			t.Fatalf("the oracle's repair does not decode: %v", err)
		}
		if !hadInvalidUTF8(got.GetAttributes()) {
			t.Fatal("a repaired request is not marked")
		}
		markInvalidUTF8(want)
		if !proto.Equal(got, want) {
			t.Fatalf("repaired to\n%v\nthe oracle gives\n%v", got, want)
		}
	})
}

// allBytes is CheckRequest's descriptor with every string field a bytes field (and map
// entries plain repeated messages, as a map's key may not be bytes), and the full names of
// the fields that were strings.
func allBytes(f *testing.F) (protoreflect.MessageDescriptor, map[protoreflect.FullName]bool) {
	root := (&authv3.CheckRequest{}).ProtoReflect().Descriptor()
	seen := map[string]bool{}
	var files []*descriptorpb.FileDescriptorProto
	var collect func(fd protoreflect.FileDescriptor)
	collect = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := range fd.Imports().Len() {
			collect(fd.Imports().Get(i).FileDescriptor)
		}
		files = append(files, protodesc.ToFileDescriptorProto(fd))
	}
	collect(root.ParentFile())
	wasString := map[protoreflect.FullName]bool{}
	var edit func(pkg string, prefix string, ms []*descriptorpb.DescriptorProto)
	edit = func(pkg, prefix string, ms []*descriptorpb.DescriptorProto) {
		for _, m := range ms {
			name := prefix + "." + m.GetName()
			if m.GetOptions().GetMapEntry() {
				m.Options.MapEntry = proto.Bool(false)
			}
			for _, fld := range m.Field {
				if fld.GetType() == descriptorpb.FieldDescriptorProto_TYPE_STRING {
					fld.Type = descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()
					wasString[protoreflect.FullName(name+"."+fld.GetName())] = true
				}
			}
			edit(pkg, name, m.NestedType)
		}
	}
	for _, fd := range files {
		edit(fd.GetPackage(), fd.GetPackage(), fd.MessageType)
	}
	reg, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: files})
	if err != nil {
		f.Fatal(err)
	}
	d, err := reg.FindDescriptorByName(root.FullName())
	if err != nil {
		f.Fatal(err)
	}
	return d.(protoreflect.MessageDescriptor), wasString
}

// repair makes every field of m that was a string valid UTF-8, as strings.ToValidUTF8 does.
func repair(m protoreflect.Message, wasString map[protoreflect.FullName]bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() == protoreflect.BytesKind && wasString[fd.FullName()]:
			if fd.IsList() {
				l := v.List()
				for i := range l.Len() {
					l.Set(i, protoreflect.ValueOfBytes(valid(l.Get(i).Bytes())))
				}
			} else {
				m.Set(fd, protoreflect.ValueOfBytes(valid(v.Bytes())))
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if fd.IsList() {
				l := v.List()
				for i := range l.Len() {
					repair(l.Get(i).Message(), wasString)
				}
			} else {
				repair(v.Message(), wasString)
			}
		}
		return true
	})
}

func valid(b []byte) []byte { return []byte(strings.ToValidUTF8(string(b), "\uFFFD")) }

// checkSeeds are CheckRequests as Envoy sends them (NewCheckRequest builds them so), some
// with bytes that are not UTF-8 in a path, a header and the metadata.
func checkSeeds(f *testing.F) [][]byte {
	md, err := structpb.NewStruct(map[string]any{"route": map[string]any{"api": "coffeebar/v1", "weights": []any{1.0, "x"}}})
	if err != nil {
		f.Fatal(err)
	}
	msgs := []*authv3.CheckRequest{
		NewCheckRequest(Request{Method: "GET", Path: "/coffeebar/v1/menu?size=large", Headers: map[string]string{
			"authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "user-agent": "curl/8.5.0", ":authority": "api.example.com"},
			ContextExtensions: map[string]string{"tollgate_api": "coffeebar/v1", "tollgate_operation": "GET /menu"}}),
		NewCheckRequest(Request{Method: "POST", Path: "/orders", Headers: map[string]string{"content-type": "application/json"}}),
	}
	msgs[1].Attributes.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": md}}
	var out [][]byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b, []byte(strings.Replace(string(b), "menu", "m\xffnu", 1)), []byte(strings.Replace(string(b), "curl", "c\xc3\x28l", 1)),
			[]byte(strings.Replace(string(b), "coffeebar/v1", "coffee\xe2\x82bar", -1)))
	}
	return out
}
