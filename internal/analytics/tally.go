package analytics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets is how many finite buckets the latency histograms have.
const latencyBuckets = 16

// LatencyBuckets are the request and upstream latency histograms' upper bounds, in
// seconds: 1 ms to about 33 s.
var LatencyBuckets = prometheus.ExponentialBuckets(0.001, 2, latencyBuckets)

// hist is a latency histogram: the count in each bucket (the last is above every bound).
type hist struct {
	counts [latencyBuckets + 1]uint64
	n      uint64
	sum    float64
}

func (h *hist) observe(v float64) {
	h.counts[sort.SearchFloat64s(LatencyBuckets, v)]++ // the first bound ≥ v
	h.n++
	h.sum += v
}

func (h *hist) add(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
}

// tally is what one set of labels has counted.
type tally struct {
	requests, requestBytes, responseBytes uint64
	duration, upstream                    hist
}

func (t *tally) add(o *tally) {
	t.requests += o.requests
	t.requestBytes += o.requestBytes
	t.responseBytes += o.responseBytes
	t.duration.add(&o.duration)
	t.upstream.add(&o.upstream)
}

// batch is what one stream has counted since its last flush: a stream counts a message's
// entries without a lock or an atomic, then adds them to the totals under one lock.
type batch map[labels]*tally

func (b batch) of(l labels) *tally {
	t := b[l]
	if t == nil {
		t = &tally{}
		b[l] = t
	}
	return t
}

// totals are every stream's counts, exposed as the request families.
type totals struct {
	mu sync.Mutex
	m  map[labels]*tally

	requests, requestBytes, responseBytes, duration, upstream *prometheus.Desc
}

func newTotals() *totals {
	series := []string{"api", "operation", "application", "class", "cluster"}
	short := []string{"api", "operation", "class"}
	return &totals{m: map[labels]*tally{},
		requests: prometheus.NewDesc("tollgate_requests_total",
			"Requests Envoy finished, from its access logs, by API, operation, application, response class (0: no response) and upstream cluster.", series, nil),
		requestBytes: prometheus.NewDesc("tollgate_request_bytes_total",
			"Bytes of the requests' headers and bodies, as Envoy received them.", series, nil),
		responseBytes: prometheus.NewDesc("tollgate_response_bytes_total",
			"Bytes of the responses' headers and bodies, as Envoy sent them.", series, nil),
		duration: prometheus.NewDesc("tollgate_request_duration_seconds",
			"Time of a request in Envoy, from its first byte received to its last byte sent.", short, nil),
		upstream: prometheus.NewDesc("tollgate_upstream_duration_seconds",
			"Time of a request at its backend, from the first byte sent to it to the last byte received.", short, nil),
	}
}

// flush adds a stream's batch to the totals and empties it (its tallies are kept for the
// stream's next message: the labels a stream meets repeat).
func (t *totals) flush(b batch) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for l, d := range b {
		if d.requests == 0 {
			continue
		}
		dst := t.m[l]
		if dst == nil {
			dst = &tally{}
			t.m[l] = dst
		}
		dst.add(d)
		*d = tally{}
	}
}

func (t *totals) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{t.requests, t.requestBytes, t.responseBytes, t.duration, t.upstream} {
		ch <- d
	}
}

// Collect exposes the counters per series and the histograms per API, operation and class.
func (t *totals) Collect(ch chan<- prometheus.Metric) {
	type short struct{ api, operation, class string }
	durations, upstreams := map[short]*hist{}, map[short]*hist{}
	t.mu.Lock()
	for l, c := range t.m {
		lv := []string{l.api, l.operation, l.application, l.class, l.cluster}
		ch <- prometheus.MustNewConstMetric(t.requests, prometheus.CounterValue, float64(c.requests), lv...)
		ch <- prometheus.MustNewConstMetric(t.requestBytes, prometheus.CounterValue, float64(c.requestBytes), lv...)
		ch <- prometheus.MustNewConstMetric(t.responseBytes, prometheus.CounterValue, float64(c.responseBytes), lv...)
		k := short{l.api, l.operation, l.class}
		for _, h := range []struct {
			into map[short]*hist
			from *hist
		}{{durations, &c.duration}, {upstreams, &c.upstream}} {
			if h.into[k] == nil {
				h.into[k] = &hist{}
			}
			h.into[k].add(h.from)
		}
	}
	t.mu.Unlock()
	for _, h := range []struct {
		desc *prometheus.Desc
		m    map[short]*hist
	}{{t.duration, durations}, {t.upstream, upstreams}} {
		for k, v := range h.m {
			if v.n == 0 {
				continue
			}
			buckets := make(map[float64]uint64, latencyBuckets)
			cum := uint64(0)
			for i, bound := range LatencyBuckets {
				cum += v.counts[i]
				buckets[bound] = cum
			}
			ch <- prometheus.MustNewConstHistogram(h.desc, v.n, v.sum, buckets, k.api, k.operation, k.class)
		}
	}
}
