// Package validate checks Envoy configuration the way Envoy would before it is served or
// shipped: the protoc-gen-validate rules compiled into go-control-plane's types
// (ValidateAll) on every message, including every message packed in a google.protobuf.Any
// (typed_config), which ValidateAll itself does not descend into.
package validate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	// Extension types that appear in typed_config: registered so that Any can be unpacked.
	_ "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/bootstrap/internal_listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

type validatorAll interface{ ValidateAll() error }

// Message validates m and every message inside it, unpacking Any fields. The error names
// the path of the failing message.
func Message(m proto.Message) error {
	return walk(m.ProtoReflect(), &at{name: string(m.ProtoReflect().Descriptor().Name())}, true)
}

// at is where walk is, rendered only for an error: a field, a list index or map key, or the
// type an Any holds.
type at struct {
	parent *at
	name   string // ".field", "(Type)" or the root's type
	key    any    // a list index or map key, or nil
}

func (a *at) String() string {
	var parts []string
	for p := a; p != nil; p = p.parent {
		s := p.name
		if p.key != nil {
			s += fmt.Sprintf("[%v]", p.key)
		}
		parts = append(parts, s)
	}
	slices.Reverse(parts)
	return strings.Join(parts, "")
}

// walk validates m when check is set — the root, the message inside each Any, and the
// children of a message without a validator: a message's ValidateAll checks every message
// under it except inside Anys, so calling it at every level would check a route table's
// routes once per level above them — and descends to find the Anys.
func walk(m protoreflect.Message, path *at, check bool) error {
	if !m.IsValid() {
		return nil
	}
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("%s: cannot unpack %s: %w", path, a.GetTypeUrl(), err)
		}
		return walk(inner.ProtoReflect(), &at{parent: path, name: "(" + string(inner.ProtoReflect().Descriptor().Name()) + ")"}, true)
	}
	var errs []error
	v, has := m.Interface().(validatorAll)
	if has && check {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	// A message with a validator checked its children (run here, or by an ancestor's);
	// the children of one without are checked on their own.
	check = !has
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		if descend(fd, check) {
			errs = append(errs, walkField(fd, val, &at{parent: path, name: "." + string(fd.Name())}, check)...)
		}
		return true
	})
	return errors.Join(errs...)
}

// descend reports whether walk goes into a field: a message field, when its messages are
// to be checked or may hold an Any.
func descend(fd protoreflect.FieldDescriptor, check bool) bool {
	if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
		return false
	}
	if fd.IsMap() {
		return fd.MapValue().Kind() == protoreflect.MessageKind && (check || mayHoldAny(fd.MapValue().Message()))
	}
	return check || mayHoldAny(fd.Message()) // else checked by the validator above, and no Any below it
}

// walkField walks the message or messages of a field.
func walkField(fd protoreflect.FieldDescriptor, val protoreflect.Value, path *at, check bool) []error {
	var errs []error
	each := func(m protoreflect.Message, key any) {
		if err := walk(m, &at{parent: path.parent, name: path.name, key: key}, check); err != nil {
			errs = append(errs, err)
		}
	}
	switch {
	case fd.IsList():
		l := val.List()
		for i := 0; i < l.Len(); i++ {
			each(l.Get(i).Message(), i)
		}
	case fd.IsMap():
		val.Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			each(v.Message(), k.Interface())
			return true
		})
	default:
		if err := walk(val.Message(), path, check); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// holdsAny remembers, by message type, whether a message of it can hold an Any at any
// depth: walk needs to descend only into those below a validated message.
var holdsAny sync.Map // protoreflect.FullName → bool

func mayHoldAny(md protoreflect.MessageDescriptor) bool {
	if v, ok := holdsAny.Load(md.FullName()); ok {
		return v.(bool)
	}
	seen := map[protoreflect.FullName]bool{}
	var visit func(protoreflect.MessageDescriptor) bool
	visit = func(d protoreflect.MessageDescriptor) bool {
		if d.FullName() == "google.protobuf.Any" {
			return true
		}
		if v, ok := holdsAny.Load(d.FullName()); ok {
			return v.(bool)
		}
		if seen[d.FullName()] {
			return false // a cycle: decided by the other fields
		}
		seen[d.FullName()] = true
		fields := d.Fields()
		for i := 0; i < fields.Len(); i++ {
			f := fields.Get(i)
			var sub protoreflect.MessageDescriptor
			switch {
			case f.IsMap() && f.MapValue().Kind() == protoreflect.MessageKind:
				sub = f.MapValue().Message()
			case f.Kind() == protoreflect.MessageKind || f.Kind() == protoreflect.GroupKind:
				sub = f.Message()
			}
			if sub != nil && visit(sub) {
				return true
			}
		}
		return false
	}
	v := visit(md)
	holdsAny.Store(md.FullName(), v)
	return v
}
