// Package admin is the admin HTTP port: /healthz (the process is up), /readyz (every
// component says it is ready, with the reasons when not), /metrics (Prometheus) and, when
// configured, Go's profiler and execution tracer at /debug/pprof/.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tollgate-gw/tollgate/internal/buildinfo"
)

// Server serves the admin endpoints.
type Server struct {
	reg    *prometheus.Registry
	mu     sync.Mutex
	checks map[string]func() error
	extra  map[string]http.Handler
}

// New makes an admin server with its own metrics registry, holding Go and process metrics
// and tollgate_build_info.
func New() *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildinfo.Register(reg)
	return &Server{reg: reg, checks: map[string]func() error{}, extra: map[string]http.Handler{}}
}

// Profiling serves Go's profiler and execution tracer under /debug/pprof/ (before Serve).
func (s *Server) Profiling() {
	s.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
	s.Handle("/debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	s.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	s.Handle("/debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	s.Handle("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
}

// Handle adds an endpoint (before Serve).
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra[pattern] = h
}

// Registry is where components register their metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Ready adds a readiness check; /readyz fails while any check returns an error.
func (s *Server) Ready(name string, check func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// Handler is the admin mux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	s.mu.Lock()
	for p, h := range s.extra {
		mux.Handle(p, h)
	}
	s.mu.Unlock()
	return mux
}

// Readiness is each readiness check by name, with its reason ("" when ready).
type Readiness struct {
	Name   string `json:"name"`
	Reason string `json:"reason,omitempty"`
}

// Readiness asks every check, in name order.
func (s *Server) Readiness() []Readiness {
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	out := make([]Readiness, 0, len(names))
	for _, n := range names {
		s.mu.Lock()
		check := s.checks[n]
		s.mu.Unlock()
		r := Readiness{Name: n}
		if err := check(); err != nil {
			r.Reason = err.Error()
		}
		out = append(out, r)
	}
	return out
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var failed []string
	for _, c := range s.Readiness() {
		if c.Reason != "" {
			failed = append(failed, c.Name+": "+c.Reason)
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(failed, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

// Serve serves on lis until ctx ends.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// CheckLoopback refuses an admin address beyond loopback unless allowRemote is set: the
// admin port shows internals and must not be exposed by accident.
func CheckLoopback(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("admin address %s is not loopback; set admin.allowRemote: true to expose it", addr)
	}
	return nil
}
