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
	var fields nameFields
	switch r := v.(type) {
	case *discoveryv3.DiscoveryRequest:
		fields = nameFields{numbers: [2]protowire.Number{3}, lists: [2]*[]string{&r.ResourceNames}}
	case *discoveryv3.DeltaDiscoveryRequest:
		fields = nameFields{numbers: [2]protowire.Number{3, 4}, lists: [2]*[]string{&r.ResourceNamesSubscribe, &r.ResourceNamesUnsubscribe}}
	default:
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	all := buf.ReadOnlyData()
	l, err := fields.locate(all)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(l.rest, v.(proto.Message)); err != nil {
		return err
	}
	// The first list, when it is one run of fields of a size worth keeping, may be one
	// decoded before.
	var raw []byte
	var h uint64
	if l.run[0] >= 0 && !l.split {
		var kept bool
		if h, kept = c.lists.key(all[l.run[0]:l.run[1]]); kept {
			raw = all[l.run[0]:l.run[1]]
		}
	}
	if raw != nil {
		if names, ok := c.lists.get(h, raw); ok {
			*fields.lists[0] = names
			l.count[0] = 0 // decoded; only the second list may be left
		}
	}
	found, err := fields.decode(all, l.count, c.held)
	if err != nil {
		return err
	}
	for i, list := range fields.lists {
		if list != nil && l.count[i] > 0 {
			*list = found[i]
		}
	}
	if raw != nil && l.count[0] > 0 {
		c.lists.put(h, raw, found[0])
	}
	return nil
}

// nameFields are a request's repeated resource-name fields (one or two) and where their
// decoded names go.
type nameFields struct {
	numbers [2]protowire.Number
	lists   [2]*[]string
}

// layout is where a request's name fields are.
type layout struct {
	rest  []byte // every other field, for the proto decoder
	count [2]int // names of each list
	run   [2]int // the first list's fields, from..to, when they are one run; else -1
	split bool   // the first list's fields are not one run
}

// of is which list a field is of, or -1 when it is none.
func (f nameFields) of(num protowire.Number, typ protowire.Type) int {
	if num == 0 || typ != protowire.BytesType {
		return -1
	}
	return slices.Index(f.numbers[:], num)
}

// locate finds the name fields of a request, refusing bytes that are not well formed.
func (f nameFields) locate(all []byte) (layout, error) {
	l := layout{rest: make([]byte, 0, 256), run: [2]int{-1, -1}}
	for b := all; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return l, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return l, protowire.ParseError(m)
		}
		at := len(all) - len(b)
		switch i := f.of(num, typ); {
		case i < 0:
			l.rest = append(l.rest, b[:n+m]...)
		case i == 0 && l.run[0] < 0:
			l.run = [2]int{at, at + n + m}
		case i == 0 && l.run[1] == at:
			l.run[1] = at + n + m
		case i == 0:
			l.split = true
		}
		if i := f.of(num, typ); i >= 0 {
			l.count[i]++
		}
		b = b[n+m:]
	}
	return l, nil
}

// decode reads the names of the lists that count says are left, in order, as the copies
// held names share (all was checked by locate).
func (f nameFields) decode(all []byte, count [2]int, held *rescache.Names) ([2][]string, error) {
	var found [2][]string
	if count[0] == 0 && count[1] == 0 {
		return found, nil
	}
	for i := range found {
		if count[i] > 0 {
			found[i] = make([]string, 0, count[i])
		}
	}
	var err error
	held.Lookup(func(lookup func([]byte) (string, bool)) {
		for b := all; len(b) > 0; {
			num, typ, n := protowire.ConsumeTag(b)
			m := protowire.ConsumeFieldValue(num, typ, b[n:])
			i := f.of(num, typ)
			if i < 0 || count[i] == 0 {
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
	return found, err
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
