// Package apimodel is the API model shared by the control plane and the enforcer: APIs,
// their operations, endpoints and security requirements, and the checks a model must pass
// before anything serves it. It holds pure types and functions; parsing OpenAPI lives in
// apimodel/openapi, storage in internal/store.
package apimodel

import (
	"fmt"

	"github.com/tollgate-gw/tollgate/internal/errfmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"
)

// API is one versioned API, as the gateway serves it.
type API struct {
	Name    string // stable identifier, lower-case, used in etcd keys and route metadata
	Version string
	Title   string
	// BasePath is the prefix clients call ("/coffeebar/v1"); operations' paths follow it.
	BasePath string
	// Hosts limits the API to these request hosts (virtual hosts); empty means any host.
	Hosts []string
	// Gateways names the gateway groups (Envoy node clusters) that serve the API; empty
	// means every group.
	Gateways []string
	// MutualTLS is the API's own mutual TLS; "" means the security requirements decide.
	MutualTLS MutualTLSMode
	// WSO2 is set when the definition uses WSO2's extensions (x-wso2-*): it was written
	// for WSO2's gateways, and its answers carry WSO2 API Manager's fault codes where they
	// differ from Tollgate's.
	WSO2 bool
	// CORS, when set, answers browsers' preflight requests at the gateway and adds the
	// CORS response headers.
	CORS *CORS
	// CertificateBound requires bearer tokens to be bound to the client certificate
	// (RFC 8705), whatever their issuer says.
	CertificateBound bool
	// DPoP requires bearer tokens to be DPoP-bound (RFC 9449 cnf.jkt) and presented with
	// their proof, whatever their issuer says.
	DPoP bool
	// GRPC also serves the API to proxyless gRPC clients as an xDS API listener named
	// after the API (dial "xds:///<name>").
	GRPC bool
	// Production and Sandbox are the API's default backends; an operation may override them.
	Production Endpoints
	Sandbox    Endpoints
	// Schemes are the security schemes the API declares, by name.
	Schemes map[string]Scheme
	// Throttling is the API-level throttling policy name ("" = none).
	Throttling string
	// AuthHeader is the header a bearer token is read from (default "Authorization").
	AuthHeader string
	// Faults, when set, is the API's own error format (x-tollgate-faults) for the
	// enforcer's answers and Envoy's 405s on its paths; nil: the gateway's.
	Faults     *errfmt.Template
	Operations []Operation
	// Source names where the definition came from (a file or an etcd key), for messages.
	Source string
}

// ID is the API's key in the catalogue and in route metadata: "name/version".
func (a *API) ID() string { return a.Name + "/" + a.Version }

// Operation is one method on one path template of an API: a "resource" in WSO2 terms.
type Operation struct {
	Method string // upper case: GET, POST, ...
	Path   string // template relative to the base path: "/order/{orderId}"
	// OperationID is the OpenAPI operationId, if any.
	OperationID string
	// Production and Sandbox override the API's endpoints when not empty.
	Production Endpoints
	Sandbox    Endpoints
	// Security is the effective requirement set: any one alternative suffices, and an
	// alternative needs all of its schemes. An alternative with no schemes makes the
	// operation open. An empty list also means open.
	Security []Requirement
	// Throttling is the operation-level throttling policy name ("" = none).
	Throttling string
	// Validation, when set, checks the operation's requests against its definition.
	Validation *Validation

	template Template
}

// Key identifies the operation inside its API: "GET /order/{orderId}". It is what route
// metadata carries, so the enforcer finds the operation with one map lookup.
func (o *Operation) Key() string { return o.Method + " " + o.Path }

// Template is the operation's compiled path template.
func (o *Operation) Template() Template { return o.template }

// Open reports whether the operation needs no credentials.
func (o *Operation) Open() bool {
	if len(o.Security) == 0 {
		return true
	}
	for _, r := range o.Security {
		if len(r) == 0 {
			return true
		}
	}
	return false
}

// Requirement is one alternative of a security requirement: every scheme in it must pass.
type Requirement []SchemeUse

// SchemeUse names a scheme and the scopes the operation needs from it.
type SchemeUse struct {
	Scheme string
	Scopes []string
	// AnyScope: a token with any one of Scopes will do (WSO2's reading); otherwise it needs
	// them all (OpenAPI's).
	AnyScope bool
}

// SchemeType is what kind of credential a scheme takes.
type SchemeType string

// The scheme types the model knows. OAuth2, OpenID Connect and HTTP bearer all mean a bearer
// token checked against the configured issuers.
const (
	SchemeBearer    SchemeType = "bearer"    // oauth2, openIdConnect, http bearer
	SchemeBasic     SchemeType = "basic"     // http basic
	SchemeAPIKey    SchemeType = "apiKey"    // apiKey in header, query or cookie
	SchemeMutualTLS SchemeType = "mutualTLS" // OpenAPI 3.1 mutualTLS
)

// Scheme is one declared security scheme.
type Scheme struct {
	Name string
	Type SchemeType
	// In and Param locate an API key.
	In    KeyLocation
	Param string
	// Issuers, for a bearer scheme, are the names of the configured issuers whose tokens
	// it accepts (x-tollgate-issuers); none: every configured issuer's.
	Issuers []string
}

// MutualTLSMode is an API's own mutual TLS (x-tollgate-mutual-tls).
type MutualTLSMode string

const (
	// MutualTLSOptional: a trusted client certificate is enough; without one the
	// security requirements apply.
	MutualTLSOptional MutualTLSMode = "optional"
	// MutualTLSRequired: no trusted certificate, 401; then the requirements apply too.
	MutualTLSRequired MutualTLSMode = "required"
)

// KeyLocation is where an API key is sent: OpenAPI's apiKey `in`.
type KeyLocation string

// The locations of an API key.
const (
	KeyInHeader KeyLocation = "header"
	KeyInQuery  KeyLocation = "query"
	KeyInCookie KeyLocation = "cookie"
)

// Valid reports whether l is one of the locations.
func (l KeyLocation) Valid() bool { return l == KeyInHeader || l == KeyInQuery || l == KeyInCookie }

// EndpointsType is how requests spread over a set's URLs.
type EndpointsType string

// The endpoint types; "" means LoadBalance.
const (
	LoadBalance EndpointsType = "load_balance"
	Failover    EndpointsType = "failover"
)

// Endpoints is a set of backend URLs with how to spread requests over them.
type Endpoints struct {
	// Type is LoadBalance (also "") or Failover.
	Type   EndpointsType
	URLs   []Endpoint
	Policy Policy
}

// Policy is how the gateway talks to a set of backends. The zero value is the gateway's
// defaults.
type Policy struct {
	LB      string        // "round_robin" (default) or "least_request"
	Timeout time.Duration // whole upstream request, retries included; 0: the gateway default
	// Retries are additional attempts; RetryOn lists the HTTP statuses that trigger one
	// (none: 5xx, connection failures and resets).
	Retries int
	RetryOn []int
	// RetryInterval is the first wait before a retry (Envoy backs off exponentially from
	// it, with jitter, to ten times it); 0: Envoy's 25 ms.
	RetryInterval time.Duration
	// CircuitBreaker caps what the gateway sends to the set at once (0: Envoy's default).
	CircuitBreaker CircuitBreaker
	// Ejection takes a backend out for a while when too many of its requests fail (MGW
	// 3.x's failure-ratio circuit breaker); zero: off.
	Ejection Ejection
	// HealthCheck, when Path is set, probes each backend and takes failing ones out.
	HealthCheck HealthCheck
	// Protocol to the backend: "" or "http1", "h2" (h2c for http:// URLs), "auto" (ALPN).
	Protocol string
	// TLS to https backends: CA and client certificate are secrets stored in etcd
	// (secrets/<name>); without a CA the system trust store verifies the backend.
	TLS BackendTLS
}

// CORS is a cross-origin resource sharing policy.
type CORS struct {
	AllowOrigins     []string // "*" for any
	AllowMethods     []string
	AllowHeaders     []string
	ExposeHeaders    []string
	AllowCredentials bool
	MaxAge           time.Duration
}

// CircuitBreaker thresholds.
type CircuitBreaker struct {
	MaxConnections, MaxPendingRequests, MaxRequests, MaxRetries uint32
}

// Ejection is outlier detection by failure ratio: over each Interval, a backend that
// answered at least RequestVolume requests with at least FailurePercent of them failing
// (5xx or no answer) is taken out for EjectionTime.
type Ejection struct {
	FailurePercent uint32
	RequestVolume  uint32
	Interval       time.Duration
	EjectionTime   time.Duration
}

// HealthCheck is an active HTTP health check.
type HealthCheck struct {
	Path               string
	Interval, Timeout  time.Duration
	Healthy, Unhealthy uint32
}

// BackendTLS names the secrets for TLS and mutual TLS to a backend.
type BackendTLS struct {
	CA         string // secret holding the CA certificates that sign the backend's
	ClientCert string // secret holding the gateway's client certificate and key
	SNI        string // server name; default: the URL's host
}

// Empty reports whether no endpoint is set.
func (e Endpoints) Empty() bool { return len(e.URLs) == 0 }

// Endpoint is one backend: a fixed URL, or a discovery key whose addresses live in etcd
// (WSO2's "etcd(KEY, DEFAULT_URL)"), with a URL to use while the key is absent.
type Endpoint struct {
	URL       string // fixed URL, or the default for a discovery key
	Discovery string // etcd key under endpoints/, "" for a fixed URL
}

func (e Endpoint) String() string {
	if strings.HasPrefix(e.Discovery, KubeScheme) {
		return e.Discovery
	}
	if e.Discovery != "" {
		return fmt.Sprintf("etcd(%s, %s)", e.Discovery, e.URL)
	}
	return e.URL
}

// Problem is one thing wrong with a definition, located by file and JSON path.
type Problem struct {
	File   string
	Path   string // JSON path, "$.paths['/menu'].get"
	Reason string
}

func (p Problem) String() string {
	file := p.File
	if file == "" {
		file = "<input>"
	}
	path := p.Path
	if path == "" {
		path = "$"
	}
	return file + ": " + path + ": " + p.Reason
}

// Problems is a list of problems that is also an error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// OpPath is the JSON path of an operation in its OpenAPI document.
func OpPath(path, method string) string {
	return fmt.Sprintf("$.paths['%s'].%s", path, strings.ToLower(method))
}

// Validate checks an API model for everything the gateway needs to serve it and compiles the
// operations' path templates. It returns all problems found, not only the first.
func (a *API) Validate() Problems {
	v := &validation{a: a}
	v.identity()
	v.ps = append(v.ps, a.Production.validate(a.Source, "$.x-tollgate-production-endpoints")...)
	v.ps = append(v.ps, a.Sandbox.validate(a.Source, "$.x-tollgate-sandbox-endpoints")...)
	if len(a.Operations) == 0 {
		v.add("$.paths", "the API has no operations")
	}
	seen := make(map[string]string, len(a.Operations))
	var noEndpoint []string
	for i := range a.Operations {
		op := &a.Operations[i]
		if !v.operation(op, seen) {
			continue
		}
		if op.Production.Empty() && op.Sandbox.Empty() && a.Production.Empty() && a.Sandbox.Empty() {
			noEndpoint = append(noEndpoint, op.Key())
		}
	}
	if len(noEndpoint) > 0 {
		v.add("$.servers", "%s", noBackend(noEndpoint, len(a.Operations)))
	}
	sort.SliceStable(v.ps, func(i, j int) bool { return v.ps[i].Path < v.ps[j].Path })
	return v.ps
}

// validation gathers an API's problems, step by step.
type validation struct {
	a  *API
	ps Problems
}

func (v *validation) add(path, format string, args ...any) {
	v.ps = append(v.ps, Problem{File: v.a.Source, Path: path, Reason: fmt.Sprintf(format, args...)})
}

// identity checks what names and places the API: its name, version, base path, hosts and
// mutual TLS mode.
func (v *validation) identity() {
	a := v.a
	if !validName(a.Name) {
		v.add("$.info.title", "API name %q must be 1-100 characters of letters, digits, '-', '_' or '.' (it is made of info.title; x-tollgate-name sets it)", a.Name)
	}
	if !validName(a.Version) {
		v.add("$.info.version", "API version %q must be 1-100 characters of letters, digits, '-', '_' or '.'", a.Version)
	}
	if a.BasePath == "" || a.BasePath[0] != '/' || strings.ContainsAny(a.BasePath, "{}?#* ") ||
		(len(a.BasePath) > 1 && strings.HasSuffix(a.BasePath, "/")) {
		v.add("$.x-tollgate-basePath", "base path %q must start with '/', not end with '/', and hold no template, query or space", a.BasePath)
	}
	if a.MutualTLS != "" && a.MutualTLS != MutualTLSOptional && a.MutualTLS != MutualTLSRequired {
		v.add("$.x-tollgate-mutual-tls", "%q must be optional or required", a.MutualTLS)
	}
	for i, h := range a.Hosts {
		if h == "" || strings.ContainsAny(h, "/ :?#*") || strings.ContainsFunc(h, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
			v.add(fmt.Sprintf("$.x-tollgate-hosts[%d]", i), "host %q must be a host name without scheme, port or path", h)
		}
	}
}

// operation checks one operation and compiles its path template; seen holds the request
// shapes of the operations before it. It reports whether the template compiled.
func (v *validation) operation(op *Operation, seen map[string]string) bool {
	at := OpPath(op.Path, op.Method)
	t, err := ParseTemplate(op.Path)
	if err != nil {
		v.add("$.paths['"+op.Path+"']", "%v", err)
		return false
	}
	op.template = t
	// Two templates that differ only in parameter names match the same requests.
	shape := op.Method + " " + t.Shape()
	if prev, dup := seen[shape]; dup {
		v.add(at, "duplicate operation: %s %s matches the same requests as %s, and they differ in security, endpoints or throttling", op.Method, op.Path, prev)
	} else {
		seen[shape] = op.Key()
	}
	v.ps = append(v.ps, op.Production.validate(v.a.Source, at+".x-tollgate-production-endpoints")...)
	v.ps = append(v.ps, op.Sandbox.validate(v.a.Source, at+".x-tollgate-sandbox-endpoints")...)
	for j, r := range op.Security {
		for _, use := range r {
			if _, ok := v.a.Schemes[use.Scheme]; !ok {
				v.add(fmt.Sprintf("%s.security[%d]", at, j), "unknown security scheme %q (declare it in components.securitySchemes)", use.Scheme)
			}
		}
	}
	return true
}

// noBackend says, once for the API, which operations have no backend and how to give one.
func noBackend(ops []string, total int) string {
	which, verb := fmt.Sprintf("%d of its %d operations", len(ops), total), "have"
	if len(ops) == total {
		which, verb = fmt.Sprintf("none of its %d operations", total), "has"
	}
	if len(ops) <= 3 {
		which += " (" + strings.Join(ops, ", ") + ")"
	} else {
		which += " (" + strings.Join(ops[:3], ", ") + ", ...)"
	}
	return fmt.Sprintf("the API has no backend, and %s %s one of its own: give the API an absolute http(s) URL in servers, "+
		"or x-tollgate-production-endpoints (x-wso2-production-endpoints); an operation may have its own", which, verb)
}

// MergeDuplicates keeps the first of two operations that match the same requests (the same
// method, templates that differ only in their parameters' names) when they are alike in
// everything the gateway enforces — security, endpoints, throttling — and returns a warning
// for each one merged. Operations that differ stay, and Validate refuses them.
func (a *API) MergeDuplicates() Problems {
	var warnings Problems
	seen := map[string]int{}
	kept := a.Operations[:0]
	for _, op := range a.Operations {
		t, err := ParseTemplate(op.Path)
		if err != nil {
			kept = append(kept, op)
			continue
		}
		shape := op.Method + " " + t.Shape()
		if i, dup := seen[shape]; dup && alike(kept[i], op) {
			warnings = append(warnings, Problem{File: a.Source, Path: OpPath(op.Path, op.Method),
				Reason: fmt.Sprintf("matches the same requests as %s, with the same security and endpoints; served as that operation", kept[i].Key())})
			continue
		}
		if _, dup := seen[shape]; !dup {
			seen[shape] = len(kept)
		}
		kept = append(kept, op)
	}
	a.Operations = kept
	return warnings
}

func alike(x, y Operation) bool {
	return x.Throttling == y.Throttling && fmt.Sprint(x.Security) == fmt.Sprint(y.Security) &&
		fmt.Sprint(x.Production) == fmt.Sprint(y.Production) && fmt.Sprint(x.Sandbox) == fmt.Sprint(y.Sandbox)
}

func (e Endpoints) validate(file, path string) Problems {
	var ps Problems
	switch e.Type {
	case "", LoadBalance, Failover:
	default:
		ps = append(ps, Problem{file, path + ".type", fmt.Sprintf("endpoint type %q must be load_balance or failover", e.Type)})
	}
	p := e.Policy
	switch p.LB {
	case "", "round_robin", "least_request":
	default:
		ps = append(ps, Problem{file, path + ".lbPolicy", fmt.Sprintf("%q must be round_robin or least_request", p.LB)})
	}
	switch p.Protocol {
	case "", "http1", "h2", "auto":
	default:
		ps = append(ps, Problem{file, path + ".protocol", fmt.Sprintf("%q must be http1, h2 or auto", p.Protocol)})
	}
	if p.Timeout < 0 || p.Retries < 0 || p.Retries > 10 {
		ps = append(ps, Problem{file, path, "timeout must not be negative and retries must be 0 to 10"})
	}
	for _, c := range p.RetryOn {
		if c < 100 || c > 599 {
			ps = append(ps, Problem{file, path + ".retries.statusCodes", fmt.Sprintf("%d is not an HTTP status", c)})
		}
	}
	if hc := p.HealthCheck; hc.Path != "" && (hc.Path[0] != '/' || hc.Interval < 0 || hc.Timeout < 0) {
		ps = append(ps, Problem{file, path + ".healthCheck", "path must start with '/' and durations must not be negative"})
	}
	bad := false
	for i, u := range e.URLs {
		if err := CheckURL(u.URL); err != nil {
			ps = append(ps, Problem{file, fmt.Sprintf("%s.urls[%d]", path, i), err.Error()})
			bad = true
		}
		if _, kerr := ParseKubeKey(u.Discovery); u.Discovery != "" && !validKey(u.Discovery) && kerr != nil {
			ps = append(ps, Problem{file, fmt.Sprintf("%s.urls[%d]", path, i), fmt.Sprintf("discovery key %q must be letters, digits, '-', '_', '.' or '/'", u.Discovery)})
		}
	}
	if !bad {
		if err := e.Conflicts(); err != nil {
			ps = append(ps, Problem{file, path + ".urls", err.Error()})
		}
	}
	return ps
}

// Conflicts reports what cannot be served in one set of endpoints: host names (which Envoy
// resolves itself) beside discovery keys (whose addresses come over EDS), and backend TLS
// settings on a plain http URL. The build asks the same, so what Validate accepts is
// never dropped when Envoy's configuration is made. URLs must have passed CheckURL.
func (e Endpoints) Conflicts() error {
	var named, keyed string
	for _, ep := range e.URLs {
		u, _ := url.Parse(ep.URL)
		if ep.Discovery != "" {
			keyed = ep.Discovery
		} else if h := u.Hostname(); h != "localhost" && net.ParseIP(h) == nil {
			named = ep.URL
		}
		if (e.Policy.TLS.CA != "" || e.Policy.TLS.ClientCert != "") && u.Scheme != "https" {
			return fmt.Errorf("backend TLS settings (CA or client certificate) on the plain http endpoint %s", ep.URL)
		}
	}
	if named != "" && keyed != "" {
		return fmt.Errorf("endpoints by host name (%s) and by discovery key (%s) cannot share a set: Envoy resolves the one and gets the other over EDS", named, keyed)
	}
	return nil
}

// ValidName says whether s can be an API's name or version: 1-100 letters, digits, '-',
// '_' or '.' (it is part of etcd keys, route metadata and the default base path).
func ValidName(s string) bool { return validName(s) }

func validName(s string) bool {
	if len(s) == 0 || len(s) > 100 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return s != "." && s != ".."
}

func validKey(s string) bool {
	if len(s) == 0 || len(s) > 200 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./", c)) {
			return false
		}
	}
	return true
}

// Slug turns a title into a valid API name: lower case, runs of other characters become '-'.
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' {
			b.WriteRune(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// Route metadata: the keys of the ExtAuthzPerRoute context extensions the control plane
// sets on each route, so the enforcer finds the operation without matching paths again.
const (
	RouteKeyAPI       = "tollgate_api"       // API ID, "name/version"
	RouteKeyOperation = "tollgate_operation" // operation key, "GET /order/{orderId}"
)

// Response validation: the gRPC metadata the control plane puts on a route's ext_proc
// stream (ExtProcOverrides.grpc_initial_metadata) to name the operation, and the response
// attribute it asks Envoy for, which says who made the response ("via_upstream": the
// backend).
const (
	ProcessAPIKey        = "x-tollgate-api"
	ProcessOperationKey  = "x-tollgate-operation"
	CodeDetailsAttribute = "response.code_details"
	RequestIDAttribute   = "request.id"
)

// EnvironmentHeader selects an operation's sandbox endpoints when it is "sandbox". Only the
// enforcer sets it (for tokens issued for the sandbox); it removes any value a client sent,
// and Envoy picks the route again after ext_authz.
const EnvironmentHeader = "x-tollgate-environment"

// SecurityText writes requirements as people read them: "oauth[read write] or key",
// "mtls and key", "open"; any-of scopes are separated by " | ".
func SecurityText(reqs []Requirement) string {
	if len(reqs) == 0 {
		return "open"
	}
	var alts []string
	for _, r := range reqs {
		if len(r) == 0 {
			alts = append(alts, "open")
			continue
		}
		var all []string
		for _, u := range r {
			s := u.Scheme
			if len(u.Scopes) > 0 {
				sep := " "
				if u.AnyScope {
					sep = " | "
				}
				s += "[" + strings.Join(u.Scopes, sep) + "]"
			}
			all = append(all, s)
		}
		alts = append(alts, strings.Join(all, " and "))
	}
	return strings.Join(alts, " or ")
}
