// Package tracing sets up OpenTelemetry traces: spans exported over OTLP/gRPC to a
// collector, and the propagators that read the trace context Envoy sends (W3C
// traceparent, B3 in one header or several). It is off unless configured: without it the
// enforcer makes no span at all.
package tracing

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"

	"github.com/tollgate-gw/tollgate/internal/buildinfo"
	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
)

// Config is where spans go and which are kept.
type Config struct {
	// Endpoint is the collector's OTLP/gRPC address, host:port.
	Endpoint string
	// Insecure speaks plain gRPC to the collector; else TLS, verified with CAFile (or the
	// system's roots).
	Insecure bool
	CAFile   string
	// SampleRatio is the share of requests traced when Envoy sent no trace context; a
	// request whose context Envoy sent is traced when Envoy's span was sampled.
	SampleRatio float64
	// ServiceName names this process in the traces (default "tollgate").
	ServiceName string
}

// Tracing is a tracer provider exporting to the collector.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// Propagator reads (and writes) W3C trace context and B3, single or multiple headers.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader)))

// New starts exporting; nothing is sent until a span ends, and a collector that is away
// costs only dropped spans (the exporter retries in the background).
func New(cfg Config) (*Tracing, error) {
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithTimeout(5 * time.Second)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	} else {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			c, err := tlsfiles.Client(cfg.CAFile, "", "", "")
			if err != nil {
				return nil, fmt.Errorf("tracing.caFile: %w", err)
			}
			tc = c
		}
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tc)))
	}
	exp, err := otlptracegrpc.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = "tollgate"
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name),
		semconv.ServiceVersion(strings.TrimPrefix(buildinfo.Read().Version, "v")))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return &Tracing{tp: tp}, nil
}

// Tracer is the named tracer of the provider.
func (t *Tracing) Tracer(name string) trace.Tracer { return t.tp.Tracer(name) }

// Shutdown sends what is buffered (within ctx) and stops.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }
