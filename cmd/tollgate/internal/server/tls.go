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
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollgate_tls_reloads_total",
		Help:        "Certificate files of a gRPC port read again by result: ok (in force for new connections), rejected (the last good ones stay).",
		ConstLabels: prometheus.Labels{"port": port}}, []string{"result"})
	reg.MustRegister(reloads)
	var last string
	p := &portTLS{srv: srv, report: func(changed bool, err error) {
		if err != nil {
			reloads.WithLabelValues("rejected").Inc()
			if err.Error() != last {
				last = err.Error()
				log.Error("TLS files not taken; the last good certificate stays in force", zap.String("port", port), zap.Error(err))
			}
			return
		}
		last = ""
		reloads.WithLabelValues("ok").Inc()
		log.Info("TLS files read again; new connections get them", zap.String("port", port))
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
