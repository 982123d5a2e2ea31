package extauthz

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	allowed   prometheus.Counter
	byCode    sync.Map // fault code → prometheus.Counter, resolved once
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_authz_decisions_total",
			Help: "Check decisions by result: allow, or the fault code of the deny.",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tollgate_authz_check_seconds",
			Help:    "Time to decide one Check, inside the enforcer.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1},
		}),
	}
	m.allowed = m.decisions.WithLabelValues("allow")
	if reg != nil {
		reg.MustRegister(m.decisions, m.latency)
	}
	return m
}

func (m *metrics) observe(f *Fault, d time.Duration) {
	m.latency.Observe(d.Seconds())
	if f == nil {
		m.allowed.Inc()
		return
	}
	c, ok := m.byCode.Load(f.Code)
	if !ok {
		c, _ = m.byCode.LoadOrStore(f.Code, m.decisions.WithLabelValues(strconv.Itoa(f.Code)))
	}
	c.(prometheus.Counter).Inc()
}
