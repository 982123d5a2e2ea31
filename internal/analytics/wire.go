package analytics

import (
	"errors"
	"math/bits"
	"time"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

// Entry is one HTTP access log entry as analytics reads it from the wire: what the metrics
// and the JSON lines need, nothing else. Decoding Envoy's messages with protobuf's
// generated types costs about 50 allocations an entry (the metadata maps above all); this
// costs none. Its strings alias the message read: they are good until the next one.
type Entry struct {
	// From the enforcer's dynamic metadata (MetadataNamespace).
	API, Operation, ClientID, Subject, AuthType string
	Route, Cluster                              string
	Type                                        accesslogdata.AccessLogType
	Intermediate                                bool
	Code                                        uint32 // 0: no response
	RequestBytes, ResponseBytes                 uint64 // headers and body
	// Flags has bit n set for the ResponseFlags field numbered n.
	Flags                                 uint64
	Start                                 time.Time
	Method                                corev3.RequestMethod
	Authority, Path, UserAgent, RequestID string
	UpstreamHost, ClientAddress           string

	duration, lastDownstreamTx, firstUpstreamTx, lastUpstreamRx time.Duration // -1: absent
}

// Total is the request's time in Envoy in seconds (its duration, else the time to its last
// byte sent); -1 when the entry does not say.
func (e *Entry) Total() float64 {
	switch {
	case e.duration >= 0:
		return e.duration.Seconds()
	case e.lastDownstreamTx >= 0:
		return e.lastDownstreamTx.Seconds()
	}
	return -1
}

// Upstream is the time from the first byte sent to the backend to the last byte received
// from it, in seconds; -1 when no backend answered.
func (e *Entry) Upstream() float64 {
	if e.firstUpstreamTx < 0 || e.lastUpstreamRx < 0 {
		return -1
	}
	return max(0, (e.lastUpstreamRx - e.firstUpstreamTx).Seconds())
}

var errMalformed = errors.New("malformed access log message")

// The field numbers read, from the messages' descriptors.
func number(m proto.Message, name string) protowire.Number {
	f := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name))
	if f == nil {
		panic("analytics: no field " + name)
	}
	return f.Number()
}

var (
	msgIdentifier = number(&alsv3.StreamAccessLogsMessage{}, "identifier")
	msgHTTP       = number(&alsv3.StreamAccessLogsMessage{}, "http_logs")
	msgTCP        = number(&alsv3.StreamAccessLogsMessage{}, "tcp_logs")
	idNode        = number(&alsv3.StreamAccessLogsMessage_Identifier{}, "node")
	nodeID        = number(&corev3.Node{}, "id")
	entriesEntry  = number(&alsv3.StreamAccessLogsMessage_HTTPAccessLogEntries{}, "log_entry")
	tcpEntry      = number(&alsv3.StreamAccessLogsMessage_TCPAccessLogEntries{}, "log_entry")

	entryCommon   = number(&accesslogdata.HTTPAccessLogEntry{}, "common_properties")
	entryRequest  = number(&accesslogdata.HTTPAccessLogEntry{}, "request")
	entryResponse = number(&accesslogdata.HTTPAccessLogEntry{}, "response")

	reqMethod      = number(&accesslogdata.HTTPRequestProperties{}, "request_method")
	reqAuthority   = number(&accesslogdata.HTTPRequestProperties{}, "authority")
	reqPath        = number(&accesslogdata.HTTPRequestProperties{}, "path")
	reqUserAgent   = number(&accesslogdata.HTTPRequestProperties{}, "user_agent")
	reqID          = number(&accesslogdata.HTTPRequestProperties{}, "request_id")
	reqHeaderBytes = number(&accesslogdata.HTTPRequestProperties{}, "request_headers_bytes")
	reqBodyBytes   = number(&accesslogdata.HTTPRequestProperties{}, "request_body_bytes")

	respCode        = number(&accesslogdata.HTTPResponseProperties{}, "response_code")
	respHeaderBytes = number(&accesslogdata.HTTPResponseProperties{}, "response_headers_bytes")
	respBodyBytes   = number(&accesslogdata.HTTPResponseProperties{}, "response_body_bytes")

	addrSocket   = number(&corev3.Address{}, "socket_address")
	socketAddr   = number(&corev3.SocketAddress{}, "address")
	mdFilter     = number(&corev3.Metadata{}, "filter_metadata")
	structFields = number(&structpb.Struct{}, "fields")
	valueString  = number(&structpb.Value{}, "string_value")
)

// commonField says what each AccessLogCommon field number is to the reader.
type commonKind uint8

const (
	skip commonKind = iota
	cStart
	cDuration
	cLastDownstreamTx
	cFirstUpstreamTx
	cLastUpstreamRx
	cCluster
	cRoute
	cFlags
	cMetadata
	cIntermediate
	cType
	cUpstreamHost
	cClientAddress
)

// commonFields are the kinds by field number (AccessLogCommon's are below 64).
var commonFields = func() (out [64]commonKind) {
	c := &accesslogdata.AccessLogCommon{}
	for n, k := range map[protowire.Number]commonKind{
		number(c, "start_time"): cStart, number(c, "duration"): cDuration,
		number(c, "time_to_last_downstream_tx_byte"): cLastDownstreamTx,
		number(c, "time_to_first_upstream_tx_byte"):  cFirstUpstreamTx,
		number(c, "time_to_last_upstream_rx_byte"):   cLastUpstreamRx,
		number(c, "upstream_cluster"):                cCluster, number(c, "route_name"): cRoute,
		number(c, "response_flags"): cFlags, number(c, "metadata"): cMetadata,
		number(c, "intermediate_log_entry"): cIntermediate, number(c, "access_log_type"): cType,
		number(c, "upstream_remote_address"): cUpstreamHost, number(c, "downstream_remote_address"): cClientAddress,
	} {
		out[n] = k
	}
	return out
}()

// flagNames are Envoy's short names of the ResponseFlags fields, by field number.
var flagNames = func() map[protowire.Number]string {
	short := map[string]string{
		"failed_local_healthcheck": "LH", "no_healthy_upstream": "UH", "upstream_request_timeout": "UT",
		"local_reset": "LR", "upstream_remote_reset": "UR", "upstream_connection_failure": "UF",
		"upstream_connection_termination": "UC", "upstream_overflow": "UO", "no_route_found": "NR",
		"delay_injected": "DI", "fault_injected": "FI", "rate_limited": "RL", "unauthorized_details": "UAEX",
		"rate_limit_service_error": "RLSE", "downstream_connection_termination": "DC",
		"upstream_retry_limit_exceeded": "URX", "stream_idle_timeout": "SI", "invalid_envoy_request_headers": "IH",
		"downstream_protocol_error": "DPE", "upstream_max_stream_duration_reached": "UMSDR",
		"response_from_cache_filter": "RFCF", "no_filter_config_found": "NFCF", "duration_timeout": "DT",
		"upstream_protocol_error": "UPE", "no_cluster_found": "NC", "overload_manager": "OM",
		"dns_resolution_failure": "DF", "downstream_remote_reset": "DR",
	}
	out := map[protowire.Number]string{}
	fs := (&accesslogdata.ResponseFlags{}).ProtoReflect().Descriptor().Fields()
	for i := range fs.Len() {
		f := fs.Get(i)
		if s := short[string(f.Name())]; s != "" && f.Number() < 64 {
			out[f.Number()] = s
		}
	}
	return out
}()

// fields reads a message's fields one by one: for each, its number and type, and its bytes
// (length-delimited fields) or value (varints); fixed-size fields and groups are skipped.
// A loop over next does what a callback per field would without an indirect call each.
type fields struct {
	b   []byte
	bad bool // the message is malformed: next stops
}

func (f *fields) next() (num protowire.Number, typ protowire.Type, v []byte, x uint64, ok bool) {
	// Most fields of Envoy's entries have a one-byte tag (numbers below 16) and a one-byte
	// value or length: read those here, the rest with protowire.
	if b := f.b; len(b) >= 2 && b[0] < 0x80 && b[1] < 0x80 {
		num, typ = protowire.Number(b[0]>>3), protowire.Type(b[0]&7)
		switch {
		case typ == protowire.VarintType && num > 0:
			f.b = b[2:]
			return num, typ, nil, uint64(b[1]), true
		case typ == protowire.BytesType && num > 0 && 2+int(b[1]) <= len(b):
			n := 2 + int(b[1])
			f.b = b[n:]
			return num, typ, b[2:n], 0, true
		}
	}
	for len(f.b) > 0 && !f.bad {
		var n int
		num, typ, n = protowire.ConsumeTag(f.b)
		if n < 0 {
			f.bad = true
			return
		}
		f.b = f.b[n:]
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(f.b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(f.b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, f.b)
			if n >= 0 {
				f.b = f.b[n:]
				continue
			}
		}
		if n < 0 {
			f.bad = true
			return
		}
		f.b = f.b[n:]
		return num, typ, v, x, true
	}
	return
}

// err is errMalformed when the message did not read to its end.
func (f *fields) err() error {
	if f.bad {
		return errMalformed
	}
	return nil
}

// str is b as a string without a copy: it lives as long as the message.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// readMessage reads a StreamAccessLogsMessage: the node's id when it names one, each HTTP
// entry handed to take (e is reused), and the number of TCP entries.
func readMessage(b []byte, node *string, e *Entry, take func(*Entry)) (tcp int, err error) {
	m := fields{b: b}
	for {
		num, typ, v, _, ok := m.next()
		if !ok {
			return tcp, m.err()
		}
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case msgIdentifier:
			if err := readIdentifier(v, node); err != nil {
				return tcp, err
			}
		case msgHTTP:
			es := fields{b: v}
			for {
				num, typ, v, _, ok := es.next()
				if !ok {
					break
				}
				if num != entriesEntry || typ != protowire.BytesType {
					continue
				}
				if err := readEntry(v, e); err != nil {
					return tcp, err
				}
				take(e)
			}
			if err := es.err(); err != nil {
				return tcp, err
			}
		case msgTCP:
			ts := fields{b: v}
			for {
				num, typ, _, _, ok := ts.next()
				if !ok {
					break
				}
				if num == tcpEntry && typ == protowire.BytesType {
					tcp++
				}
			}
			if err := ts.err(); err != nil {
				return tcp, err
			}
		}
	}
}

// readIdentifier reads the node's id of a stream's identifier.
func readIdentifier(b []byte, node *string) error {
	id := fields{b: b}
	for {
		num, typ, v, _, ok := id.next()
		if !ok {
			return id.err()
		}
		if num != idNode || typ != protowire.BytesType {
			continue
		}
		n := fields{b: v}
		for {
			num, typ, v, _, ok := n.next()
			if !ok {
				break
			}
			if num == nodeID && typ == protowire.BytesType {
				*node = string(v) // kept for the stream: a copy
			}
		}
		if err := n.err(); err != nil {
			return err
		}
	}
}

// readEntry reads one HTTPAccessLogEntry into e.
func readEntry(b []byte, e *Entry) error {
	*e = Entry{duration: -1, lastDownstreamTx: -1, firstUpstreamTx: -1, lastUpstreamRx: -1}
	f := fields{b: b}
	for {
		num, typ, v, _, ok := f.next()
		if !ok {
			return f.err()
		}
		if typ != protowire.BytesType {
			continue
		}
		var err error
		switch num {
		case entryCommon:
			err = readCommon(v, e)
		case entryRequest:
			err = readRequest(v, e)
		case entryResponse:
			err = readResponse(v, e)
		}
		if err != nil {
			return err
		}
	}
}

func readRequest(b []byte, e *Entry) error {
	f := fields{b: b}
	for {
		num, _, v, x, ok := f.next()
		if !ok {
			return f.err()
		}
		switch num {
		case reqMethod:
			e.Method = corev3.RequestMethod(int32(x))
		case reqAuthority:
			e.Authority = str(v)
		case reqPath:
			e.Path = str(v)
		case reqUserAgent:
			e.UserAgent = str(v)
		case reqID:
			e.RequestID = str(v)
		case reqHeaderBytes, reqBodyBytes:
			e.RequestBytes += x
		}
	}
}

func readResponse(b []byte, e *Entry) error {
	f := fields{b: b}
	for {
		num, typ, v, x, ok := f.next()
		if !ok {
			return f.err()
		}
		switch num {
		case respCode:
			if typ == protowire.BytesType {
				c := fields{b: v}
				for {
					_, _, _, x, ok := c.next()
					if !ok {
						break
					}
					e.Code = uint32(x)
				}
				if err := c.err(); err != nil {
					return err
				}
			}
		case respHeaderBytes, respBodyBytes:
			e.ResponseBytes += x
		}
	}
}

func readCommon(b []byte, e *Entry) error {
	f := fields{b: b}
	for {
		num, _, v, x, ok := f.next()
		if !ok {
			return f.err()
		}
		if num >= 64 {
			continue
		}
		var err error
		switch k := commonFields[num]; k {
		case cStart:
			var d time.Duration
			var s int64
			if s, d, err = readTime(v); err == nil {
				e.Start = time.Unix(s, int64(d)).UTC()
			}
		case cDuration, cLastDownstreamTx, cFirstUpstreamTx, cLastUpstreamRx:
			*e.timing(k), err = readDuration(v)
		case cCluster:
			e.Cluster = str(v)
		case cRoute:
			e.Route = str(v)
		case cFlags:
			e.Flags, err = readFlags(v)
		case cMetadata:
			err = readMetadata(v, e)
		case cIntermediate:
			e.Intermediate = x != 0
		case cType:
			e.Type = accesslogdata.AccessLogType(int32(x))
		case cUpstreamHost:
			e.UpstreamHost, err = readAddress(v)
		case cClientAddress:
			e.ClientAddress, err = readAddress(v)
		}
		if err != nil {
			return err
		}
	}
}

// timing is the entry's field for a timing kind of AccessLogCommon.
func (e *Entry) timing(k commonKind) *time.Duration {
	switch k {
	case cDuration:
		return &e.duration
	case cLastDownstreamTx:
		return &e.lastDownstreamTx
	case cFirstUpstreamTx:
		return &e.firstUpstreamTx
	}
	return &e.lastUpstreamRx
}

// readFlags reads ResponseFlags: bit n set for field n, a bool set or the message
// unauthorized_details present.
func readFlags(b []byte) (uint64, error) {
	var flags uint64
	f := fields{b: b}
	for {
		num, typ, _, x, ok := f.next()
		if !ok {
			return flags, f.err()
		}
		if num < 64 && (typ == protowire.BytesType || x != 0) {
			flags |= 1 << uint(num)
		}
	}
}

// readTime reads a Timestamp or a Duration: seconds and nanoseconds.
func readTime(b []byte) (sec int64, nanos time.Duration, err error) {
	f := fields{b: b}
	for {
		num, _, _, x, ok := f.next()
		if !ok {
			return sec, nanos, f.err()
		}
		switch num {
		case 1:
			sec = int64(x)
		case 2:
			nanos = time.Duration(int32(x))
		}
	}
}

func readDuration(b []byte) (time.Duration, error) {
	s, n, err := readTime(b)
	if err != nil || s < 0 || n < 0 {
		return -1, err
	}
	return time.Duration(s)*time.Second + n, nil
}

func readAddress(b []byte) (string, error) {
	out := ""
	f := fields{b: b}
	for {
		num, typ, v, _, ok := f.next()
		if !ok {
			return out, f.err()
		}
		if num != addrSocket || typ != protowire.BytesType {
			continue
		}
		sa := fields{b: v}
		for {
			num, typ, v, _, ok := sa.next()
			if !ok {
				break
			}
			if num == socketAddr && typ == protowire.BytesType {
				out = str(v)
			}
		}
		if err := sa.err(); err != nil {
			return out, err
		}
	}
}

// readMetadata reads the enforcer's fields from the filter metadata's ext_authz entry.
func readMetadata(b []byte, e *Entry) error {
	f := fields{b: b}
	for {
		num, typ, v, _, ok := f.next()
		if !ok {
			return f.err()
		}
		if num != mdFilter || typ != protowire.BytesType {
			continue
		}
		key, value, err := mapEntry(v)
		if err == nil && key == MetadataNamespace {
			err = readAuthzFields(value, e)
		}
		if err != nil {
			return err
		}
	}
}

// readAuthzFields reads the string fields of the enforcer's metadata Struct.
func readAuthzFields(b []byte, e *Entry) error {
	st := fields{b: b}
	for {
		num, typ, v, _, ok := st.next()
		if !ok {
			return st.err()
		}
		if num != structFields || typ != protowire.BytesType {
			continue
		}
		k, val, err := mapEntry(v)
		if err != nil {
			return err
		}
		s, err := stringValue(val)
		if err != nil {
			return err
		}
		switch k {
		case "api":
			e.API = s
		case "operation":
			e.Operation = s
		case "client_id":
			e.ClientID = s
		case "subject":
			e.Subject = s
		case "auth_type":
			e.AuthType = s
		}
	}
}

// stringValue is a Value's string_value ("" when it holds another kind).
func stringValue(b []byte) (string, error) {
	s := ""
	f := fields{b: b}
	for {
		num, typ, v, _, ok := f.next()
		if !ok {
			return s, f.err()
		}
		if num == valueString && typ == protowire.BytesType {
			s = str(v)
		}
	}
}

// mapEntry reads a map entry: its key (field 1, a string) and value (field 2, a message).
func mapEntry(b []byte) (key string, value []byte, err error) {
	f := fields{b: b}
	for {
		num, typ, v, _, ok := f.next()
		if !ok {
			return key, value, f.err()
		}
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case 1:
			key = str(v)
		case 2:
			value = v
		}
	}
}

// FlagNames are the short names of the flags set, as Envoy's %RESPONSE_FLAGS% writes
// them ("-": none).
func (e *Entry) FlagNames() string { return string(e.appendFlags(nil)) }

func (e *Entry) appendFlags(b []byte) []byte {
	if e.Flags == 0 {
		return append(b, '-')
	}
	first := true
	e.forFlags(func(s string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, s...)
	})
	return b
}

func (e *Entry) forFlags(f func(string)) {
	for fl := e.Flags; fl != 0; {
		n := protowire.Number(bits.TrailingZeros64(fl))
		fl &^= 1 << uint(n)
		if s := flagNames[n]; s != "" {
			f(s)
		}
	}
}
