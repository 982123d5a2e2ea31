// Package status is the admin port's read-only status page: /status, server-rendered HTML
// with no external assets (and no script), and the same report as JSON at /status.json.
// It shows what the gateway serves and what is wrong: the APIs and operations with their
// security, throttling and endpoints; the live addresses of each discovery key; the
// connected Envoys with the versions they ACKed or NACKed and the last NACK's error; the
// revocations in force; the throttling backend; and readiness with its reasons.
package status

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/buildinfo"
)

// Fleet is the control plane's side: its clients, groups and discovery keys.
type Fleet interface {
	Clients() []Client
	Groups() []Group
	Discovery() map[string][]string
}

// Client is one stream connected to the control plane.
type Client struct {
	Stream uint64    `json:"stream"`
	Node   string    `json:"node"` // "" when the stream named none
	Group  string    `json:"group"`
	Kind   string    `json:"kind"` // envoy or grpc (proxyless)
	Since  time.Time `json:"since"`
	// Answers are its last answer to each type.
	Answers []Answer `json:"answers"`
}

// Answer is a client's last answer to the responses of one type.
type Answer struct {
	Type    string    `json:"type"` // short: Listener, Cluster, ...
	Version string    `json:"version"`
	Acked   bool      `json:"acked"`
	Error   string    `json:"error,omitempty"` // a NACK's message
	At      time.Time `json:"at"`
}

// Group is a gateway group's state.
type Group struct {
	Name      string    `json:"name"`
	Published time.Time `json:"published,omitzero"` // zero: nothing published yet
	// Versions are what its Envoys' caches serve now, by type.
	Versions map[string]string `json:"versions"`
}

// Enforcer is the enforcer's side.
type Enforcer interface {
	Revocations() int
	Limiter() Limiter
}

// Limiter is the throttling backend's state.
type Limiter struct {
	Backend string `json:"backend"` // local or redis
	Up      bool   `json:"up"`
}

// Sources are what the report is read from; Fleet and Enforcer are nil in a process
// without that role.
type Sources struct {
	Catalog  func() *apimodel.Catalog
	Ready    func() []admin.Readiness
	Fleet    Fleet
	Enforcer Enforcer
	Started  time.Time
}

// Report is the status at one moment (/status.json).
type Report struct {
	Time      time.Time         `json:"time"`
	Build     buildinfo.Info    `json:"build"`
	Started   time.Time         `json:"started"`
	Ready     bool              `json:"ready"`
	Readiness []admin.Readiness `json:"readiness"`
	APIs      []API             `json:"apis"`
	// Control plane (absent without one).
	Groups    []Group  `json:"groups,omitempty"`
	Clients   []Client `json:"clients,omitempty"`
	Discovery []Key    `json:"discovery,omitempty"`
	// Enforcer (absent without one).
	Revocations *int     `json:"revocations,omitempty"`
	Limiter     *Limiter `json:"limiter,omitempty"`
}

// API is one API in force.
type API struct {
	ID         string      `json:"id"`
	Title      string      `json:"title"`
	BasePath   string      `json:"basePath"`
	Hosts      []string    `json:"hosts,omitempty"`
	Gateways   []string    `json:"gateways,omitempty"`
	Throttling string      `json:"throttling,omitempty"`
	Production []string    `json:"production,omitempty"`
	Sandbox    []string    `json:"sandbox,omitempty"`
	Source     string      `json:"source,omitempty"`
	Operations []Operation `json:"operations"`
}

// Operation is one operation of an API.
type Operation struct {
	Key        string   `json:"key"`
	Security   string   `json:"security"` // apimodel.SecurityText: "oauth2[read:menu] or basicAuth", "open"
	Throttling string   `json:"throttling,omitempty"`
	Validation string   `json:"validation,omitempty"`
	Production []string `json:"production,omitempty"` // when the operation has its own
	Sandbox    []string `json:"sandbox,omitempty"`
}

// Key is one discovery key with its live addresses.
type Key struct {
	Key       string   `json:"key"`
	Addresses []string `json:"addresses"`
}

// Read makes the report now.
func (s Sources) Read() Report {
	r := Report{Time: time.Now().UTC(), Build: buildinfo.Read(), Started: s.Started.UTC(), Ready: true}
	if s.Ready != nil {
		r.Readiness = s.Ready()
	}
	for _, c := range r.Readiness {
		if c.Reason != "" {
			r.Ready = false
		}
	}
	if s.Catalog != nil {
		if cat := s.Catalog(); cat != nil {
			for _, a := range cat.APIs() {
				r.APIs = append(r.APIs, apiOf(a))
			}
		}
	}
	if s.Fleet != nil {
		r.Groups, r.Clients = s.Fleet.Groups(), s.Fleet.Clients()
		for k, addrs := range s.Fleet.Discovery() {
			r.Discovery = append(r.Discovery, Key{k, addrs})
		}
		slices.SortFunc(r.Discovery, func(a, b Key) int { return strings.Compare(a.Key, b.Key) })
	}
	if s.Enforcer != nil {
		n, l := s.Enforcer.Revocations(), s.Enforcer.Limiter()
		r.Revocations, r.Limiter = &n, &l
	}
	return r
}

func apiOf(a *apimodel.API) API {
	out := API{ID: a.ID(), Title: a.Title, BasePath: a.BasePath, Hosts: a.Hosts, Gateways: a.Gateways,
		Throttling: a.Throttling, Production: endpoints(a.Production), Sandbox: endpoints(a.Sandbox), Source: a.Source}
	for i := range a.Operations {
		op := &a.Operations[i]
		o := Operation{Key: op.Key(), Security: apimodel.SecurityText(op.Security), Throttling: op.Throttling,
			Production: endpoints(op.Production), Sandbox: endpoints(op.Sandbox)}
		if v := op.Validation; v != nil {
			var parts []string
			if v.Request {
				parts = append(parts, "request")
			}
			if v.Response != "" && v.Response != apimodel.ResponseOff {
				parts = append(parts, "response "+string(v.Response))
			}
			o.Validation = strings.Join(parts, ", ")
		}
		out.Operations = append(out.Operations, o)
	}
	return out
}

func endpoints(e apimodel.Endpoints) []string {
	var out []string
	for _, u := range e.URLs {
		out = append(out, u.String())
	}
	return out
}

// NoIcon answers a browser's /favicon.ico with nothing (204), so that opening
// /status.json in a browser logs no failed load.
var NoIcon = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

// Handlers are /status and /status.json over s.
func Handlers(s Sources) (page, report http.Handler) {
	page = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// Nothing but this document's own inline style: no script, no other origin.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		if err := pageTemplate.Execute(w, s.Read()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	report = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s.Read())
	})
	return page, report
}
