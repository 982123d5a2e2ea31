package analytics

import (
	"io"

	alsv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// serviceDesc is Envoy's AccessLogService (alsv3.AccessLogService_ServiceDesc) with a
// handler that reads each message's bytes itself (wire.go).
var serviceDesc = grpc.ServiceDesc{
	ServiceName: alsv3.AccessLogService_ServiceDesc.ServiceName,
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "StreamAccessLogs",
		Handler:       func(srv any, st grpc.ServerStream) error { return srv.(*Service).stream(st) },
		ClientStreams: true,
	}},
	Metadata: alsv3.AccessLogService_ServiceDesc.Metadata,
}

// Register serves the access log service on g, whose codec must be Codec's.
func (s *Service) Register(g *grpc.Server) { g.RegisterService(&serviceDesc, s) }

// wireMessage is a message's bytes, copied from gRPC's buffers into one reused slice.
type wireMessage struct{ b []byte }

// Codec is base, except that it hands the access log service its messages' bytes.
func Codec(base encoding.CodecV2) encoding.CodecV2 { return codec{base} }

type codec struct{ encoding.CodecV2 }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*wireMessage); ok {
		m.b = m.b[:0]
		for _, buf := range data {
			m.b = append(m.b, buf.ReadOnlyData()...)
		}
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// stream takes one Envoy's stream of entries until it ends. Envoy names its node in the
// stream's first message only.
func (s *Service) stream(st grpc.ServerStream) error {
	s.m.streams.Inc()
	defer s.m.streams.Dec()
	var (
		msg wireMessage
		e   Entry
		str = newStream()
	)
	for {
		if err := st.RecvMsg(&msg); err != nil {
			if err == io.EOF {
				return st.SendMsg(&alsv3.StreamAccessLogsResponse{})
			}
			return err
		}
		cat := s.cat.Load()
		taken := 0
		tcp, err := readMessage(msg.b, &str.node, &e, func(e *Entry) {
			if s.Take(cat, str, e) {
				taken++
			}
		})
		s.m.totals.flush(str.b)
		if s.lines != nil && len(str.lines) > 0 {
			s.lines.write(str.lines) // a message's lines under one lock
			str.lines = str.lines[:0]
		}
		s.m.taken.Add(float64(taken))
		if err != nil {
			s.m.malformed.Inc()
			if !s.bad.Swap(true) {
				s.log.Warn("malformed access log message refused (logged once; counted in tollgate_access_log_entries_total{result=\"malformed\"})",
					zap.String("envoy", str.node), zap.Error(err))
			}
			return status.Error(codes.InvalidArgument, err.Error())
		}
		s.m.tcp.Add(float64(tcp))
	}
}
