package extauthz

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

type metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	allowed   prometheus.Counter
	byCode    sync.Map // fault code → prometheus.Counter, resolved once
	// stages times each stage of one Check in timedEvery (check.go), by stage.
	stages []prometheus.Observer
	// valid and invalid count the requests validated against their definitions.
	valid, invalid prometheus.Counter
	// responses count the responses checked by the ext_proc service.
	responses struct{ valid, reported, replaced, unchecked prometheus.Counter }
	// byOperation counts decisions per API, operation, decision and code; its counters
	// are found once per (operation, code) and kept in perOp, so a Check looks one up
	// without building labels. Series are bounded by the catalogue: API ids and operation
	// keys, never paths.
	byOperation *prometheus.CounterVec
	perOp       memo[opCode, prometheus.Counter]
}

// opCode is one series of byOperation: the API and operation found (either may be nil)
// and the fault code (0: allowed).
type opCode struct {
	api  *apimodel.API
	op   *apimodel.Operation
	code int
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
	stageSeconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tollgate_authz_stage_seconds",
		Help:    "Time in each stage of a Check (route, peer, authenticate, authorize, revocation, throttle, validate), measured on one Check in 16.",
		Buckets: []float64{1e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 1e-4, 1e-3, 0.01, 0.1},
	}, []string{"stage"})
	for _, s := range stages {
		m.stages = append(m.stages, stageSeconds.WithLabelValues(s.name))
	}
	validations := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_validations_total",
		Help: "Requests checked against their operation's definition (x-tollgate-validation), by result: valid or invalid (refused with 400, 413 or 415).",
	}, []string{"result"})
	m.valid, m.invalid = validations.WithLabelValues("valid"), validations.WithLabelValues("invalid")
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_response_validations_total",
		Help: "Backend responses checked against their operation's declared responses, by result: valid, reported (invalid, let through), replaced (invalid, a 500 instead) or unchecked (a body longer than Envoy buffers).",
	}, []string{"result"})
	m.responses.valid, m.responses.reported, m.responses.replaced = responses.WithLabelValues("valid"), responses.WithLabelValues("reported"), responses.WithLabelValues("replaced")
	m.responses.unchecked = responses.WithLabelValues("unchecked")
	m.byOperation = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_decisions_total",
		Help: "Check decisions by API (name/version), operation (\"GET /menu\"), decision (allow or deny) and code (the fault code of a deny); an empty api or operation when none matched.",
	}, []string{"api", "operation", "decision", "code"})
	m.perOp.max = maxRoutes
	if reg != nil {
		reg.MustRegister(m.decisions, m.latency, stageSeconds, validations, responses, m.byOperation)
	}
	return m
}

// observeOperation counts a decision in its API's and operation's series.
func (m *metrics) observeOperation(a *apimodel.API, op *apimodel.Operation, f *Fault) {
	k := opCode{api: a, op: op}
	if f != nil {
		k.code = f.Code
	}
	m.perOp.of(k, func(k opCode) prometheus.Counter {
		api, operation, decision, code := "", "", "allow", ""
		if k.api != nil {
			api = k.api.ID()
		}
		if k.op != nil {
			operation = k.op.Key()
		}
		if k.code != 0 {
			decision, code = "deny", strconv.Itoa(k.code)
		}
		return m.byOperation.WithLabelValues(api, operation, decision, code)
	}, true).Inc()
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
