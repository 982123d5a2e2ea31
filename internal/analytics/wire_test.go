package analytics

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// randomEntry fills what the reader reads and what it must skip (headers, other metadata
// namespaces, TLS properties, custom tags), each present or not.
func randomEntry(r *rand.Rand) *accesslogdata.HTTPAccessLogEntry {
	maybe := func() bool { return r.IntN(3) > 0 }
	s := func() string { return fmt.Sprintf("v%d-é", r.IntN(1000)) }
	d := func() *durationpb.Duration {
		if !maybe() {
			return nil
		}
		return durationpb.New(time.Duration(r.Int64N(int64(5 * time.Second))))
	}
	addr := func() *corev3.Address {
		if !maybe() {
			return nil
		}
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: s(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 443}}}}
	}
	c := &accesslogdata.AccessLogCommon{
		SampleRate: 1, DownstreamRemoteAddress: addr(), DownstreamLocalAddress: addr(), UpstreamRemoteAddress: addr(),
		StartTime: timestamppb.New(time.Unix(r.Int64N(2e9), r.Int64N(1e9))), Duration: d(), TimeToLastRxByte: d(),
		TimeToFirstUpstreamTxByte: d(), TimeToLastUpstreamRxByte: d(), TimeToLastDownstreamTxByte: d(),
		UpstreamCluster: s(), RouteName: s(),
		AccessLogType: accesslogdata.AccessLogType(r.IntN(14)), CustomTags: map[string]string{"a": s()},
		TlsProperties: &accesslogdata.TLSProperties{TlsSniHostname: s()},
	}
	// intermediate_log_entry is deprecated for access_log_type, but older Envoys set it.
	c.ProtoReflect().Set(intermediateField, protoreflect.ValueOfBool(r.IntN(5) == 0))
	if maybe() {
		f := &accesslogdata.ResponseFlags{}
		m := f.ProtoReflect()
		fs := m.Descriptor().Fields()
		for i := range fs.Len() {
			if r.IntN(6) == 0 {
				if fs.Get(i).Kind() == protoreflect.BoolKind {
					m.Set(fs.Get(i), protoreflect.ValueOfBool(true))
				} else {
					f.UnauthorizedDetails = &accesslogdata.ResponseFlags_Unauthorized{Reason: accesslogdata.ResponseFlags_Unauthorized_EXTERNAL_SERVICE}
				}
			}
		}
		c.ResponseFlags = f
	}
	if maybe() {
		fields := map[string]*structpb.Value{"other": structpb.NewNumberValue(3)}
		for _, k := range []string{"api", "operation", "client_id", "subject", "auth_type"} {
			if maybe() {
				fields[k] = structpb.NewStringValue(s())
			}
		}
		c.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			MetadataNamespace: {Fields: fields},
			"envoy.lb":        {Fields: map[string]*structpb.Value{"api": structpb.NewStringValue("not-this")}},
		}}
	}
	e := &accesslogdata.HTTPAccessLogEntry{CommonProperties: c, ProtocolVersion: accesslogdata.HTTPAccessLogEntry_HTTP2}
	if maybe() {
		e.Request = &accesslogdata.HTTPRequestProperties{RequestMethod: corev3.RequestMethod(r.IntN(10)), Authority: s(), Path: s(),
			UserAgent: s(), RequestId: s(), RequestHeadersBytes: r.Uint64N(1e6), RequestBodyBytes: r.Uint64N(1e9),
			RequestHeaders: map[string]string{"x": s()}, Port: wrapperspb.UInt32(8080)}
	}
	if maybe() {
		e.Response = &accesslogdata.HTTPResponseProperties{ResponseHeadersBytes: r.Uint64N(1e6), ResponseBodyBytes: r.Uint64N(1e9),
			ResponseHeaders: map[string]string{"y": s()}, ResponseCodeDetails: s()}
		if maybe() {
			e.Response.ResponseCode = wrapperspb.UInt32(uint32(r.IntN(600)))
		}
	}
	return e
}

var intermediateField = (&accesslogdata.AccessLogCommon{}).ProtoReflect().Descriptor().Fields().ByName("intermediate_log_entry")

// The reader agrees with protobuf's generated decoder on every field it reads.
func TestTheWireReaderAgreesWithProtobuf(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		msg := http(fmt.Sprintf("node-%d", round))
		for range 1 + r.IntN(5) {
			msg.GetHttpLogs().LogEntry = append(msg.GetHttpLogs().LogEntry, randomEntry(r))
		}
		raw, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		var node string
		var got []Entry
		var e Entry
		if _, err := readMessage(raw, &node, &e, func(e *Entry) { got = append(got, *e) }); err != nil {
			t.Fatal(err)
		}
		if node != fmt.Sprintf("node-%d", round) || len(got) != len(msg.GetHttpLogs().GetLogEntry()) {
			t.Fatalf("node %q, %d entries", node, len(got))
		}
		for i, want := range msg.GetHttpLogs().GetLogEntry() {
			compare(t, &got[i], want)
		}
	}
}

func compare(t *testing.T, got *Entry, w *accesslogdata.HTTPAccessLogEntry) {
	t.Helper()
	c, req, resp := w.GetCommonProperties(), w.GetRequest(), w.GetResponse()
	md := c.GetMetadata().GetFilterMetadata()[MetadataNamespace].GetFields()
	total, up := -1.0, -1.0
	if d := c.GetDuration(); d != nil {
		total = d.AsDuration().Seconds()
	} else if d := c.GetTimeToLastDownstreamTxByte(); d != nil {
		total = d.AsDuration().Seconds()
	}
	if a, b := c.GetTimeToFirstUpstreamTxByte(), c.GetTimeToLastUpstreamRxByte(); a != nil && b != nil {
		up = max(0, (b.AsDuration() - a.AsDuration()).Seconds())
	}
	want := map[string]any{
		"api": md["api"].GetStringValue(), "operation": md["operation"].GetStringValue(), "client_id": md["client_id"].GetStringValue(),
		"subject": md["subject"].GetStringValue(), "auth_type": md["auth_type"].GetStringValue(),
		"route": c.GetRouteName(), "cluster": c.GetUpstreamCluster(), "type": c.GetAccessLogType(), "intermediate": c.ProtoReflect().Get(intermediateField).Bool(),
		"code": resp.GetResponseCode().GetValue(), "request bytes": req.GetRequestHeadersBytes() + req.GetRequestBodyBytes(),
		"response bytes": resp.GetResponseHeadersBytes() + resp.GetResponseBodyBytes(), "flags": Flags(c.GetResponseFlags()),
		"start": c.GetStartTime().AsTime().UTC(), "method": req.GetRequestMethod(), "authority": req.GetAuthority(), "path": req.GetPath(),
		"user agent": req.GetUserAgent(), "request id": req.GetRequestId(),
		"upstream host": c.GetUpstreamRemoteAddress().GetSocketAddress().GetAddress(), "client": c.GetDownstreamRemoteAddress().GetSocketAddress().GetAddress(),
		"total": total, "upstream": up,
	}
	have := map[string]any{
		"api": got.API, "operation": got.Operation, "client_id": got.ClientID, "subject": got.Subject, "auth_type": got.AuthType,
		"route": got.Route, "cluster": got.Cluster, "type": got.Type, "intermediate": got.Intermediate, "code": got.Code,
		"request bytes": got.RequestBytes, "response bytes": got.ResponseBytes, "flags": got.FlagNames(), "start": got.Start,
		"method": got.Method, "authority": got.Authority, "path": got.Path, "user agent": got.UserAgent, "request id": got.RequestID,
		"upstream host": got.UpstreamHost, "client": got.ClientAddress, "total": got.Total(), "upstream": got.Upstream(),
	}
	for k, v := range want {
		if have[k] != v {
			t.Errorf("%s: read %#v, protobuf %#v", k, have[k], v)
		}
	}
}

// Flags is what Envoy's %RESPONSE_FLAGS% would write for the flags set, by the generated
// getters: the reader's names are checked against it.
func Flags(r *accesslogdata.ResponseFlags) string {
	out := ""
	for _, fl := range []struct {
		set  bool
		name string
	}{
		{r.GetFailedLocalHealthcheck(), "LH"}, {r.GetNoHealthyUpstream(), "UH"}, {r.GetUpstreamRequestTimeout(), "UT"},
		{r.GetLocalReset(), "LR"}, {r.GetUpstreamRemoteReset(), "UR"}, {r.GetUpstreamConnectionFailure(), "UF"},
		{r.GetUpstreamConnectionTermination(), "UC"}, {r.GetUpstreamOverflow(), "UO"}, {r.GetNoRouteFound(), "NR"},
		{r.GetDelayInjected(), "DI"}, {r.GetFaultInjected(), "FI"}, {r.GetRateLimited(), "RL"},
		{r.GetUnauthorizedDetails() != nil, "UAEX"}, {r.GetRateLimitServiceError(), "RLSE"},
		{r.GetDownstreamConnectionTermination(), "DC"}, {r.GetUpstreamRetryLimitExceeded(), "URX"},
		{r.GetStreamIdleTimeout(), "SI"}, {r.GetInvalidEnvoyRequestHeaders(), "IH"}, {r.GetDownstreamProtocolError(), "DPE"},
		{r.GetUpstreamMaxStreamDurationReached(), "UMSDR"}, {r.GetResponseFromCacheFilter(), "RFCF"},
		{r.GetNoFilterConfigFound(), "NFCF"}, {r.GetDurationTimeout(), "DT"}, {r.GetUpstreamProtocolError(), "UPE"},
		{r.GetNoClusterFound(), "NC"}, {r.GetOverloadManager(), "OM"}, {r.GetDnsResolutionFailure(), "DF"},
		{r.GetDownstreamRemoteReset(), "DR"},
	} {
		if fl.set {
			if out != "" {
				out += ","
			}
			out += fl.name
		}
	}
	if out == "" {
		return "-"
	}
	return out
}

// Every ResponseFlags field has a short name.
func TestEveryResponseFlagIsNamed(t *testing.T) {
	fs := (&accesslogdata.ResponseFlags{}).ProtoReflect().Descriptor().Fields()
	if len(flagNames) != fs.Len() {
		t.Errorf("%d of %d response flags named", len(flagNames), fs.Len())
	}
}

func FuzzReadMessage(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	msg := http("n", randomEntry(r), randomEntry(r))
	raw, _ := proto.Marshal(msg)
	f.Add(raw)
	tcp, _ := proto.Marshal(&alsv3.StreamAccessLogsMessage{LogEntries: &alsv3.StreamAccessLogsMessage_TcpLogs{}})
	f.Add(tcp)
	f.Fuzz(func(t *testing.T, b []byte) {
		var node string
		var e Entry
		readMessage(b, &node, &e, func(e *Entry) { _ = e.FlagNames() })
	})
}
