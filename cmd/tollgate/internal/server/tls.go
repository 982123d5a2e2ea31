package server

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/tollgate-gw/tollgate/internal/tlsfiles"
)

// tlsReloadEvery is how often a port's certificate files are looked at.
const tlsReloadEvery = 5 * time.Second

// portTLS is TLS on one of Tollgate's gRPC ports, kept fresh from its files.
type portTLS struct {
	srv    *tlsfiles.Server
	report func(changed bool, err error)
}

// newPortTLS reads the port's files and gives the gRPC server option that serves them; nil
// (and no option) when the port is plaintext.
func newPortTLS(port string, c tlsfiles.ServerConfig, reg prometheus.Registerer, log *zap.Logger) (*portTLS, []grpc.ServerOption, error) {
	if !c.Enabled() {
		return nil, nil, nil
	}
	srv, err := tlsfiles.NewServer(c)
	if err != nil {
		return nil, nil, fmt.Errorf("%s TLS: %w", port, err)
	}
	reloads := newFileReloads(reg, prometheus.CounterOpts{Name: "tollgate_tls_reloads_total",
		Help:        "Certificate files of a gRPC port read again by result: ok (in force for new connections), rejected (the last good ones stay).",
		ConstLabels: prometheus.Labels{"port": port}}, log.With(zap.String("port", port)), "TLS files not taken; the last good certificate stays in force")
	p := &portTLS{srv: srv, report: func(changed bool, err error) {
		reloads.settle(err)
		if err == nil {
			reloads.ok("TLS files read again; new connections get them")
		}
	}}
	mode := "TLS"
	if c.ClientCAFile != "" {
		mode = "mutual TLS"
	}
	log.Info("gRPC port with "+mode, zap.String("port", port), zap.String("cert", c.CertFile))
	return p, []grpc.ServerOption{grpc.Creds(credentials.NewTLS(srv.Config()))}, nil
}

// run keeps the files fresh until ctx ends (nothing to do for a plaintext port).
func (p *portTLS) run(ctx context.Context) {
	if p != nil {
		p.srv.Run(ctx, tlsReloadEvery, p.report)
	}
}

// fileReloads counts what a component reads again from its files — ok, or rejected (the
// last good state stays in force) — and logs a rejection once per distinct error, not at
// every look.
type fileReloads struct {
	counter  *prometheus.CounterVec
	log      *zap.Logger
	rejected string // the log message of a rejection
	last     string // the error last logged
}

func newFileReloads(reg prometheus.Registerer, opts prometheus.CounterOpts, log *zap.Logger, rejected string) *fileReloads {
	r := &fileReloads{counter: prometheus.NewCounterVec(opts, []string{"result"}), log: log, rejected: rejected}
	reg.MustRegister(r.counter)
	return r
}

// ok counts a reload that took effect and logs it.
func (r *fileReloads) ok(msg string, fields ...zap.Field) {
	r.counter.WithLabelValues("ok").Inc()
	r.log.Info(msg, fields...)
}

// settle records how a look ended: nil clears the error last logged; an error is counted
// and logged unless it is the one last logged.
func (r *fileReloads) settle(err error) {
	if err == nil {
		r.last = ""
		return
	}
	r.counter.WithLabelValues("rejected").Inc()
	if err.Error() != r.last {
		r.last = err.Error()
		r.log.Error(r.rejected, zap.Error(err))
	}
}
