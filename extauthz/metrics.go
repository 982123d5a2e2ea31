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
	allowed   prometheus.Counter
	byCode    sync.Map // fault code → prometheus.Counter, resolved once
	// latency and stageSeconds time Checks and (one Check in timedEvery, check.go) their
	// stages, per API; an API's observers are found once and kept in perAPI.
	latency, stageSeconds *prometheus.HistogramVec
	perAPI                memo[*apimodel.API, *apiTimers]
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
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_authz_check_seconds",
			Help:    "Time to decide one Check, inside the enforcer, by API (empty when none matched).",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1},
		}, []string{"api"}),
		stageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_authz_stage_seconds",
			Help:    "Time in each stage of a Check (route, peer, authenticate, authorize, revocation, throttle, validate) by API, measured on one Check in 16.",
			Buckets: []float64{1e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 1e-4, 1e-3, 0.01, 0.1},
		}, []string{"api", "stage"}),
	}
	m.allowed = m.decisions.WithLabelValues("allow")
	m.perAPI.max = maxRoutes
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
		reg.MustRegister(m.decisions, m.latency, m.stageSeconds, validations, responses, m.byOperation)
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

// apiTimers are one API's latency observers: the Check's and each stage's.
type apiTimers struct {
	check  prometheus.Observer
	stages []prometheus.Observer
}

// timers are a's observers (a may be nil: no API matched).
func (m *metrics) timers(a *apimodel.API) *apiTimers {
	return m.perAPI.of(a, func(a *apimodel.API) *apiTimers {
		id := ""
		if a != nil {
			id = a.ID()
		}
		t := &apiTimers{check: m.latency.WithLabelValues(id)}
		for _, s := range stages {
			t.stages = append(t.stages, m.stageSeconds.WithLabelValues(id, s.name))
		}
		return t
	}, true)
}

func (m *metrics) observe(a *apimodel.API, f *Fault, d time.Duration) {
	m.timers(a).check.Observe(d.Seconds())
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
