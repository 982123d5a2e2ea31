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
		lines: cfg.Lines, log: log}
}

// labels are one series' labels.
type labels struct{ api, operation, application, class, cluster string }

// stream is what one Envoy's stream keeps between its entries.
type stream struct {
	node  string
	b     batch
	lines []byte // the JSON lines of the message being read, written at its end
	// names are the catalogue's names of the APIs and operations met: made once, not per
	// entry (the catalogue's ID and Key concatenate).
	names map[any]string
}

func newStream() *stream { return &stream{b: batch{}, names: map[any]string{}} }

// name is k's name, made by mk once; at most 10,000 are kept (a catalogue that changes
// often makes new operations).
func (st *stream) name(k any, mk func() string) string {
	if n, ok := st.names[k]; ok {
		return n
	}
	if len(st.names) >= 10000 {
		clear(st.names)
	}
	n := mk()
	st.names[k] = n
	return n
}

// Take counts one entry of the stream, under the catalogue cat; it says whether the entry
// was a finished request.
func (s *Service) Take(cat *apimodel.Catalog, st *stream, e *Entry) bool {
	if e.Intermediate || (e.Type != accesslogdata.AccessLogType_NotSet && e.Type != accesslogdata.AccessLogType_DownstreamEnd) {
		s.m.intermediate.Inc() // a periodic or start entry: the request is counted when it ends
		return false
	}
	api, op := st.labels(cat, e.API, e.Operation, e.Route)
	l := labels{api: api, operation: op, application: s.apps.label(e.ClientID), class: class(e.Code), cluster: s.clusters.label(e.Cluster)}
	t := st.b.of(l)
	t.requests++
	t.requestBytes += e.RequestBytes
	t.responseBytes += e.ResponseBytes
	total, up := e.Total(), e.Upstream()
	if total >= 0 {
		t.duration.observe(total)
	}
	if up >= 0 {
		t.upstream.observe(up)
	}
	if e.Flags != 0 {
		e.forFlags(func(flag string) { s.m.errors.WithLabelValues(api, op, flag).Inc() })
	}
	if s.lines != nil {
		st.lines = appendLine(st.lines, st.node, l, e, total, up)
	}
	return true
}

// labels are an entry's API and operation as the catalogue knows them (the catalogue's
// names, which outlive the message): the enforcer's metadata, else the route's name
// ("API OPERATION", as the control plane names routes). What the catalogue does not have
// is "".
func (st *stream) labels(cat *apimodel.Catalog, api, op, route string) (string, string) {
	if api == "" && route != "" {
		api, op, _ = strings.Cut(route, " ")
	}
	if api == "" || cat == nil {
		return "", ""
	}
	a, o := cat.Operation(api, op)
	if a == nil {
		return "", ""
	}
	id := st.name(a, a.ID)
	if o == nil {
		return id, ""
	}
	return id, st.name(o, o.Key)
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
