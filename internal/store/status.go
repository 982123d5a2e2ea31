package store

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Status is where a followed range stands.
type Status struct {
	// Loaded: the consumer has a state (from etcd or from the local copy).
	Loaded bool
	// InStep: the watch is live and the consumer has every change up to Revision.
	InStep bool
	// FromCopy: the state came from the local copy and etcd has not answered since.
	FromCopy bool
	Revision int64
	// LastInStep is when the range was last known to be in step (zero: never, in this
	// process); for a state from the local copy, when the copy was written.
	LastInStep time.Time
	// Err is why the range is not in step.
	Err string
}

// follower is one followed range's state, shared by Follow, readiness and metrics.
type follower struct {
	s    *Store
	name string
	log  *zap.Logger
	copy *localCopy // nil: no local copy

	running atomic.Bool

	mu        sync.Mutex
	st        Status
	reported  bool // a "lost" line was logged and no "back" line since
	listeners []SyncState
	retries   prometheus.Counter
}

func (s *Store) follower(name string) *follower {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.followers[name]; f != nil {
		return f
	}
	f := &follower{s: s, name: name, log: s.log.With(zap.String("range", s.prefix+name))}
	if s.cacheDir != "" {
		f.copy = newLocalCopy(s.cacheDir, name)
	}
	f.retries = s.m.retries.WithLabelValues(name)
	s.followers[name] = f
	return f
}

func (f *follower) listen(l SyncState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listeners = append(f.listeners, l)
}

func (f *follower) set(inStep bool, change func(*Status)) {
	f.mu.Lock()
	was := f.st.InStep
	change(&f.st)
	f.st.InStep = inStep
	ls := f.listeners
	f.mu.Unlock()
	if was != inStep || !inStep {
		for _, l := range ls {
			l(inStep)
		}
	}
}

// lost records a failed attempt; only the first after being in step is logged.
func (f *follower) lost(err error) {
	f.retries.Inc()
	f.mu.Lock()
	log := !f.reported
	f.reported = true
	loaded := f.st.Loaded
	f.mu.Unlock()
	if log {
		if loaded {
			f.log.Warn("etcd range not in step; serving the last good state until etcd is back", zap.Error(err))
		} else {
			f.log.Warn("etcd range cannot be read; nothing to serve yet", zap.Error(err))
		}
	}
	f.set(false, func(st *Status) { st.Err = err.Error() })
}

// fromCopy records that the consumer starts from the local copy because etcd could not be
// read (err): one line says both.
func (f *follower) fromCopy(c *copyFile, err error) {
	f.retries.Inc()
	f.mu.Lock()
	f.reported = true
	f.mu.Unlock()
	f.log.Warn("etcd cannot be read; serving the local copy until it is back", zap.Int64("revision", c.Revision), zap.Time("written", c.Written), zap.Error(err))
	f.set(false, func(st *Status) {
		st.Loaded, st.FromCopy, st.Revision, st.LastInStep, st.Err = true, true, c.Revision, c.Written, err.Error()
	})
}

// inStep records that the consumer has every change up to rev.
func (f *follower) inStep(rev int64) {
	f.mu.Lock()
	back := f.reported
	f.reported = false
	f.mu.Unlock()
	if back {
		f.log.Info("etcd range back in step", zap.Int64("revision", rev))
	}
	f.set(true, func(st *Status) {
		st.Loaded, st.FromCopy, st.Revision, st.LastInStep, st.Err = true, false, rev, time.Now(), ""
	})
}

// Status is where the range rel stands (the zero Status if it is not followed).
func (s *Store) Status(rel string) Status {
	s.mu.Lock()
	f := s.followers[rel]
	s.mu.Unlock()
	if f == nil {
		return Status{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// Ready says why the range rel is not in step with etcd (nil when it is), for /readyz.
func (s *Store) Ready(rel string) error {
	st := s.Status(rel)
	switch {
	case st.InStep:
		return nil
	case !st.Loaded && st.Err == "":
		return errors.New("not read from etcd yet")
	case !st.Loaded:
		return fmt.Errorf("nothing loaded: etcd cannot be read (%s)", st.Err)
	case st.FromCopy:
		return fmt.Errorf("serving the local copy of revision %d written %s ago: etcd cannot be read (%s)",
			st.Revision, time.Since(st.LastInStep).Round(time.Second), st.Err)
	default:
		return fmt.Errorf("serving the state of revision %d, %s old: %s", st.Revision, time.Since(st.LastInStep).Round(time.Second), st.Err)
	}
}

// metrics are the store's Prometheus metrics; in-step and age are read when scraped.
type metrics struct {
	retries *prometheus.CounterVec
	inStep  *prometheus.Desc
	age     *prometheus.Desc
	s       *Store
}

func newMetrics(s *Store, reg prometheus.Registerer) *metrics {
	m := &metrics{s: s,
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_etcd_retries_total",
			Help: "Failed attempts to read or watch a range of etcd (each is retried with back-off)."}, []string{"range"}),
		inStep: prometheus.NewDesc("tollgate_etcd_in_step", "1 when the range is in step with etcd, 0 when the state served may be stale.", []string{"range"}, nil),
		age: prometheus.NewDesc("tollgate_state_age_seconds",
			"How long ago the state served for the range was last known to be in step with etcd (0 while in step).", []string{"range"}, nil),
	}
	if reg != nil {
		reg.MustRegister(m.retries, m)
	}
	return m
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.inStep; ch <- m.age }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.s.mu.Lock()
	names := make([]string, 0, len(m.s.followers))
	for n := range m.s.followers {
		names = append(names, n)
	}
	m.s.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		st := m.s.Status(n)
		in, age := 0.0, 0.0
		if st.InStep {
			in = 1
		} else if !st.LastInStep.IsZero() {
			age = time.Since(st.LastInStep).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(m.inStep, prometheus.GaugeValue, in, n)
		if st.Loaded {
			ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, age, n)
		}
	}
}
