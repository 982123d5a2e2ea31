package xds

import (
	"bytes"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
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
func (s *Server) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ForceServerCodecV2(newSharedCodec(s.names)),
		// Fixed flow-control windows: gRPC-Go's dynamic ones send a BDP ping, and a window
		// update before it, when data arrives after a quiet spell — on an xDS port every ACK
		// does, so each ACK of each Envoy cost two more frames written and one more read.
		// 1 MB lets a state-of-the-world ACK naming thousands of resources in without an
		// update per ACK, and is less than the 16 MB the dynamic windows may grow to.
		grpc.StaticStreamWindowSize(1 << 20), grpc.StaticConnWindowSize(1 << 20)}
}

// sharedCodec is the proto codec, except that a discovery response's unknown fields — the
// pre-framed resources — follow its own fields as a buffer of their own. Protobuf allows
// fields in any order, so the bytes on the wire decode to the same message.
type sharedCodec struct {
	encoding.CodecV2
	lists *nameLists
	held  *rescache.Names // the names the caches hold
}

func newSharedCodec(held *rescache.Names) sharedCodec {
	return sharedCodec{encoding.GetCodecV2("proto"), newNameLists(), held}
}

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
// every ACK, a copy each. The names of a state-of-the-world request are, moreover, most
// often byte for byte those of the stream's last request and of the other Envoys of its
// group: the lists last decoded are kept by their bytes, and a request with the same
// bytes gets the same list (read-only, as every request's names are to the servers).
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
	all := buf.ReadOnlyData()
	// First the fields' places: the other fields go to the proto decoder; the names of
	// the first list, when they are one run of fields, may be a list decoded before.
	rest := make([]byte, 0, 256)
	var count [2]int
	run := [2]int{-1, -1} // the first list's run of fields, if one
	split := false
	for b := all; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		at := len(all) - len(b)
		i := slices.Index(fields[:], num)
		switch {
		case num == 0 || i < 0 || typ != protowire.BytesType:
			rest = append(rest, b[:n+m]...)
		case i == 0 && run[0] < 0:
			run = [2]int{at, at + n + m}
			count[0]++
		case i == 0 && run[1] == at:
			run[1] = at + n + m
			count[0]++
		default:
			if i == 0 {
				split = true
			}
			count[i]++
		}
		b = b[n+m:]
	}
	if err := proto.Unmarshal(rest, v.(proto.Message)); err != nil {
		return err
	}
	var raw []byte
	var h uint64
	if run[0] >= 0 && !split {
		var kept bool
		if h, kept = c.lists.key(all[run[0]:run[1]]); kept {
			raw = all[run[0]:run[1]]
		}
	}
	if raw != nil {
		if names, ok := c.lists.get(h, raw); ok {
			*lists[0] = names
			if count[1] == 0 {
				return nil
			}
			count[0] = 0 // decoded; only the second list is left
		}
	}
	var found [2][]string
	for i := range found {
		if count[i] > 0 {
			found[i] = make([]string, 0, count[i])
		}
	}
	var err error
	c.held.Lookup(func(lookup func([]byte) (string, bool)) {
		for b := all; len(b) > 0; {
			num, typ, n := protowire.ConsumeTag(b)
			m := protowire.ConsumeFieldValue(num, typ, b[n:])
			i := slices.Index(fields[:], num)
			if num == 0 || i < 0 || typ != protowire.BytesType || count[i] == 0 {
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
	for i, l := range lists {
		if l != nil && count[i] > 0 {
			*l = found[i]
		}
	}
	if raw != nil && count[0] > 0 {
		c.lists.put(h, raw, found[0])
	}
	return nil
}

// nameLists are the name lists last decoded, by their bytes on the wire.
type nameLists struct {
	mu    sync.RWMutex
	seed  maphash.Seed
	by    map[uint64]*nameList
	order []uint64 // oldest first
}

type nameList struct {
	raw   []byte
	names []string
}

// keptLists is how many lists are kept: a group's Envoys subscribe to one list per type
// (the clusters' endpoints, the route tables), and groups are few.
const keptLists = 32

// A list is kept when it has from minListBytes (a short list costs little to decode) to
// maxListBytes (what a client can make the codec hold stays bounded: 32 lists of up to
// 10,000 names or so).
const (
	minListBytes = 256
	maxListBytes = 512 << 10
)

func newNameLists() *nameLists {
	return &nameLists{seed: maphash.MakeSeed(), by: map[uint64]*nameList{}}
}

// key is raw's hash, and whether a list of its size is kept.
func (l *nameLists) key(raw []byte) (uint64, bool) {
	if len(raw) < minListBytes || len(raw) > maxListBytes {
		return 0, false
	}
	return maphash.Bytes(l.seed, raw), true
}

// get is the list decoded before from raw, whose key is h.
func (l *nameLists) get(h uint64, raw []byte) ([]string, bool) {
	l.mu.RLock()
	e := l.by[h]
	l.mu.RUnlock()
	if e == nil || !bytes.Equal(e.raw, raw) {
		return nil, false
	}
	return e.names, true
}

// put keeps names, decoded from raw, whose key is h.
func (l *nameLists) put(h uint64, raw []byte, names []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.by[h]; ok {
		return
	}
	if len(l.order) == keptLists {
		delete(l.by, l.order[0])
		l.order = append(l.order[:0], l.order[1:]...)
	}
	l.by[h] = &nameList{raw: bytes.Clone(raw), names: names}
	l.order = append(l.order, h)
}
