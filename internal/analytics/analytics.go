// Package analytics turns the access logs Envoy sends over its gRPC access log service
// (envoy.service.accesslog.v3.AccessLogService, the http_grpc access logger the control
// plane adds when analytics is on) into per-API metrics and, when asked, one JSON line per
// request for a log pipeline.
//
// Every request Envoy finished is seen, also those the enforcer never decided (no route,
// an unreachable backend, a body too large). The API and operation are the enforcer's
// dynamic metadata, else the route's name; both are kept only when the catalogue has them,
// so the labels are bounded by the catalogue, never by paths. Applications and upstream
// clusters are capped: past the cap they count as "other".
package analytics

import (
	"strings"
	"sync"
	"sync/atomic"

	accesslogdata "github.com/envoyproxy/go-control-plane/envoy/data/accesslog/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// MetadataNamespace is where the enforcer's dynamic metadata is found in an entry: the
// namespace of Envoy's ext_authz filter (extauthz.MetadataNamespace).
const MetadataNamespace = "envoy.filters.http.ext_authz"

// Other is the label of applications and clusters past their cap.
const Other = "other"

// Catalog gives the APIs in force.
type Catalog interface{ Load() *apimodel.Catalog }

// Config is what the service is made of.
type Config struct {
	// Applications is how many distinct applications get a label of their own (default
	// 100); Clusters likewise for upstream clusters (default 1000).
	Applications int
	Clusters     int
	// Lines, if set, receives one JSON object per request (lines.go).
	Lines *Lines
}

// Service is Envoy's access log service.
type Service struct {
	cat      Catalog
	m        *metrics
	apps     *capped
	clusters *capped
	lines    *Lines
	log      *zap.Logger
	bad      atomic.Bool // a malformed message has been logged

	mu     sync.RWMutex
	series map[labels]*series
}

// New makes the service over the catalogue; its metrics go to reg.
func New(cfg Config, cat Catalog, log *zap.Logger, reg prometheus.Registerer) *Service {
	if cfg.Applications <= 0 {
		cfg.Applications = 100
	}
	if cfg.Clusters <= 0 {
		cfg.Clusters = 1000
	}
	return &Service{cat: cat, m: newMetrics(reg), apps: newCapped(cfg.Applications), clusters: newCapped(cfg.Clusters),
		lines: cfg.Lines, log: log, series: map[labels]*series{}}
}

// labels are one series' labels.
type labels struct{ api, operation, application, class, cluster string }

// series are the metrics of one set of labels, looked up once.
type series struct {
	requests, requestBytes, responseBytes prometheus.Counter
	duration, upstream                    prometheus.Observer
}

// Take counts one entry of the node's stream, under the catalogue cat.
func (s *Service) Take(cat *apimodel.Catalog, node string, e *Entry) {
	if e.Intermediate || (e.Type != accesslogdata.AccessLogType_NotSet && e.Type != accesslogdata.AccessLogType_DownstreamEnd) {
		s.m.intermediate.Inc() // a periodic or start entry: the request is counted when it ends
		return
	}
	s.m.taken.Inc()
	api, op := names(cat, e.API, e.Operation, e.Route)
	l := labels{api: api, operation: op, application: s.apps.label(e.ClientID), class: class(e.Code), cluster: s.clusters.label(e.Cluster)}
	se := s.seriesOf(l)
	se.requests.Inc()
	se.requestBytes.Add(float64(e.RequestBytes))
	se.responseBytes.Add(float64(e.ResponseBytes))
	total, up := e.Total(), e.Upstream()
	if total >= 0 {
		se.duration.Observe(total)
	}
	if up >= 0 {
		se.upstream.Observe(up)
	}
	if e.Flags != 0 {
		e.forFlags(func(flag string) { s.m.errors.WithLabelValues(api, op, flag).Inc() })
	}
	if s.lines != nil {
		s.lines.write(node, l, e, total, up)
	}
}

func (s *Service) seriesOf(l labels) *series {
	s.mu.RLock()
	se := s.series[l]
	s.mu.RUnlock()
	if se != nil {
		return se
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if se = s.series[l]; se == nil {
		lv := []string{l.api, l.operation, l.application, l.class, l.cluster}
		se = &series{
			requests:      s.m.requests.WithLabelValues(lv...),
			requestBytes:  s.m.requestBytes.WithLabelValues(lv...),
			responseBytes: s.m.responseBytes.WithLabelValues(lv...),
			duration:      s.m.duration.WithLabelValues(l.api, l.operation, l.class),
			upstream:      s.m.upstream.WithLabelValues(l.api, l.operation, l.class),
		}
		s.series[l] = se
	}
	return se
}

// names are an entry's API and operation as the catalogue knows them (the catalogue's own
// strings, which outlive the message): the enforcer's metadata, else the route's name
// ("API OPERATION", as the control plane names routes). What the catalogue does not have
// is "".
func names(cat *apimodel.Catalog, api, op, route string) (string, string) {
	if api == "" && route != "" {
		api, op, _ = strings.Cut(route, " ")
	}
	if api == "" || cat == nil {
		return "", ""
	}
	if a, o := cat.Operation(api, op); o != nil {
		return a.ID(), o.Key()
	}
	if a := cat.API(api); a != nil {
		return a.ID(), ""
	}
	return "", ""
}

// class is a status code's class: "2xx" and so on, "0" when no response was sent.
func class(code uint32) string {
	if code < 100 || code > 599 {
		return "0"
	}
	return classes[code/100-1]
}

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// capped gives a value its own label until max values have one; later ones are Other.
// The labels it gives are its own copies: a value may alias a message.
type capped struct {
	seen sync.Map // string → string (its copy)
	n    atomic.Int64
	max  int64
}

func newCapped(max int) *capped { return &capped{max: int64(max)} }

func (c *capped) label(v string) string {
	if v == "" {
		return ""
	}
	if own, ok := c.seen.Load(v); ok {
		return own.(string)
	}
	if c.n.Add(1) > c.max {
		c.n.Add(-1)
		return Other
	}
	own := strings.Clone(v)
	if prev, loaded := c.seen.LoadOrStore(own, own); loaded {
		c.n.Add(-1)
		return prev.(string)
	}
	return own
}
