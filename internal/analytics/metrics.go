package analytics

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	totals                              *totals
	errors                              *prometheus.CounterVec
	taken, intermediate, tcp, malformed prometheus.Counter
	streams                             prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	entries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_access_log_entries_total",
		Help: "Access log entries received from Envoy: taken (a finished request), intermediate (periodic or start entries, not counted as requests), tcp (not HTTP, ignored), malformed (messages refused; the stream ends)."},
		[]string{"result"})
	m := &metrics{
		totals: newTotals(),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_request_errors_total",
			Help: "Requests Envoy flagged, by Envoy's response flag (UH no healthy upstream, UF connection failure, UT timeout, NR no route, UAEX denied by the enforcer, ...)."},
			[]string{"api", "operation", "flag"}),
		taken: entries.WithLabelValues("taken"), intermediate: entries.WithLabelValues("intermediate"), tcp: entries.WithLabelValues("tcp"),
		malformed: entries.WithLabelValues("malformed"),
		streams:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollgate_access_log_streams", Help: "Envoys' access log streams open."}),
	}
	if reg != nil {
		reg.MustRegister(m.totals, m.errors, entries, m.streams)
	}
	return m
}
