package analytics

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests, requestBytes, responseBytes *prometheus.CounterVec
	duration, upstream                    *prometheus.HistogramVec
	errors                                *prometheus.CounterVec
	taken, intermediate, tcp, malformed   prometheus.Counter
	streams                               prometheus.Gauge
}

// LatencyBuckets are the request and upstream latency histograms' buckets, in seconds:
// 1 ms to about 33 s.
var LatencyBuckets = prometheus.ExponentialBuckets(0.001, 2, 16)

func newMetrics(reg prometheus.Registerer) *metrics {
	series := []string{"api", "operation", "application", "class", "cluster"}
	entries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_access_log_entries_total",
		Help: "Access log entries received from Envoy: taken (a finished request), intermediate (periodic or start entries, not counted as requests), tcp (not HTTP, ignored), malformed (messages refused; the stream ends)."},
		[]string{"result"})
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_requests_total",
			Help: "Requests Envoy finished, from its access logs, by API, operation, application, response class (0: no response) and upstream cluster."}, series),
		requestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_request_bytes_total",
			Help: "Bytes of the requests' headers and bodies, as Envoy received them."}, series),
		responseBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_response_bytes_total",
			Help: "Bytes of the responses' headers and bodies, as Envoy sent them."}, series),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tollgate_request_duration_seconds",
			Help: "Time of a request in Envoy, from its first byte received to its last byte sent.", Buckets: LatencyBuckets},
			[]string{"api", "operation", "class"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tollgate_upstream_duration_seconds",
			Help: "Time of a request at its backend, from the first byte sent to it to the last byte received.", Buckets: LatencyBuckets},
			[]string{"api", "operation", "class"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_request_errors_total",
			Help: "Requests Envoy flagged, by Envoy's response flag (UH no healthy upstream, UF connection failure, UT timeout, NR no route, UAEX denied by the enforcer, ...)."},
			[]string{"api", "operation", "flag"}),
		taken: entries.WithLabelValues("taken"), intermediate: entries.WithLabelValues("intermediate"), tcp: entries.WithLabelValues("tcp"),
		malformed: entries.WithLabelValues("malformed"),
		streams:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_access_log_streams", Help: "Envoys' access log streams open."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.requestBytes, m.responseBytes, m.duration, m.upstream, m.errors, entries, m.streams)
	}
	return m
}
