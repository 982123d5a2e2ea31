// Package openapi turns an OpenAPI 3.0/3.1 or Swagger 2.0 document (YAML or JSON) with
// x-tollgate-* extensions, or their WSO2 API Microgateway x-wso2-* aliases, into an
// apimodel.API. It is the only package that knows OpenAPI. A document is decoded once
// (tree.go, yaml.go), its references to other files bundled in (bundle.go), what real
// documents write loosely repaired (normalize.go), and only the gateway's view of it
// (reduce.go) read by kin-openapi.
package openapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// DefaultScheme is the implicit security scheme of a definition that declares no security
// at all: a valid bearer token from any configured issuer, as WSO2 gateways did. Mark an API
// or operation open with an empty requirement ("security: [{}]") or x-tollgate-disable-security.
const DefaultScheme = "default"

// Result is a parsed definition: the model and warnings that did not stop it.
type Result struct {
	API      *apimodel.API
	Warnings apimodel.Problems
	// Bundled is the document with every reference to another file resolved, to be
	// stored in place of what was read; nil when the document had no such reference.
	Bundled []byte
}

// Options say how a definition is read.
type Options struct {
	// Location is where the document was read from (a cleaned absolute file path, or a
	// URL): references to other files are relative to it, and a reference back to it is
	// a reference into the document.
	Location string
	// Open reads the files the document's $refs name. Nil refuses references to other
	// files: a stored definition stands alone.
	Open Opener
	// Validation is the gateway's default for operations whose definition does not say
	// whether their requests are validated.
	Validation apimodel.ValidationDefaults
}

// Parse reads one self-contained definition. file names it in problems. A definition with
// problems returns them all as apimodel.Problems and no API.
func Parse(file string, data []byte) (*Result, error) {
	return ParseWith(file, data, apimodel.ValidationDefaults{})
}

// ParseWith is Parse under the gateway's validation defaults.
func ParseWith(file string, data []byte, def apimodel.ValidationDefaults) (*Result, error) {
	d, err := Decode(data)
	if err != nil {
		return nil, apimodel.Problems{{File: file, Path: "$", Reason: err.Error()}}
	}
	return ParseDocument(file, d, Options{Validation: def})
}

// ParseDocument reads a decoded definition (and changes it: references to other files are
// bundled in, loose writing repaired). Only the gateway's view of the document is read by
// kin-openapi (see gatewayView), so a document costs little more than its decoding.
func ParseDocument(file string, d *Document, opts Options) (*Result, error) {
	p := &parser{file: file, tree: d.tree}
	res := &Result{}
	changed, problems, warnings := bundle(file, opts.Location, d.tree, opts.Open)
	p.problems, p.warnings = problems, warnings
	if len(p.problems) > 0 {
		return nil, p.problems
	}
	if changed {
		b, err := json.Marshal(d.tree)
		if err != nil {
			return nil, apimodel.Problems{{File: file, Path: "$", Reason: "the bundled document does not encode: " + err.Error()}}
		}
		res.Bundled = b
	}
	converted := swagger2(d.tree)
	if v := fmt.Sprint(d.tree["openapi"]); !converted && !strings.HasPrefix(v, "3.") {
		return nil, apimodel.Problems{{File: file, Path: "$.openapi", Reason: fmt.Sprintf("want an OpenAPI 3.x or Swagger 2.0 document, got openapi %q", v)}}
	}
	if v := fmt.Sprint(d.tree["swagger"]); converted && !strings.HasPrefix(v, "2") {
		return nil, apimodel.Problems{{File: file, Path: "$.swagger", Reason: fmt.Sprintf("swagger %q: only Swagger 2.0 and OpenAPI 3.x are supported", v)}}
	}
	p.normalize(d.tree)
	if converted {
		p.scheme(d.tree)
	}
	if len(p.problems) > 0 {
		return nil, p.problems
	}
	view := gatewayView(d.tree)
	if p.checkShape(view); len(p.problems) > 0 {
		return nil, p.problems
	}
	doc, err := load(view, converted)
	if err != nil {
		return nil, apimodel.Problems{{File: file, Path: "$", Reason: err.Error()}}
	}
	p.doc = doc
	if converted {
		p.warn("$.swagger", "Swagger 2.0 document converted to OpenAPI 3; JSON paths below refer to the converted document")
	}
	api := p.api()
	p.warnings = append(p.warnings, api.MergeDuplicates()...)
	if len(p.problems) == 0 {
		p.validations(api, d.tree, converted, opts.Validation)
	}
	if len(p.problems) == 0 {
		p.problems = append(p.problems, api.Validate()...)
	}
	if len(p.problems) > 0 {
		return nil, p.problems
	}
	sort.SliceStable(p.warnings, func(i, j int) bool { return p.warnings[i].Path < p.warnings[j].Path })
	res.API, res.Warnings = api, p.warnings
	return res, nil
}

// load reads the gateway's view of a document with kin-openapi; Swagger 2.0 is converted
// to OpenAPI 3 (WSO2 gateways took both).
func load(view map[string]any, swagger bool) (*openapi3.T, error) {
	j, err := json.Marshal(view)
	if err != nil {
		return nil, err
	}
	if swagger {
		var doc2 openapi2.T
		if err := json.Unmarshal(j, &doc2); err != nil {
			return nil, fmt.Errorf("swagger 2.0: %v", err)
		}
		doc, err := openapi2conv.ToV3(&doc2)
		if err != nil {
			return nil, fmt.Errorf("converting Swagger 2.0: %v", err)
		}
		return doc, nil
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(j)
	if err != nil {
		return nil, errors.New(strings.Join(strings.Fields(err.Error()), " "))
	}
	return doc, nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

type parser struct {
	// unsupported are the security schemes the gateway cannot check, by name (with where
	// they are declared); uncheckable are the operations left without an alternative.
	unsupported map[string]string
	uncheckable []string
	file        string
	tree        map[string]any // the whole document, normalized
	doc         *openapi3.T    // its gateway view
	// docValidation is the document's x-tollgate-validation; opValidation each
	// operation's, by key, the document's included.
	docValidation validationSetting
	opValidation  map[string]validationSetting
	problems      apimodel.Problems
	warnings      apimodel.Problems
}

func (p *parser) fail(path, format string, args ...any) {
	p.problems = append(p.problems, apimodel.Problem{File: p.file, Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) warn(path, format string, args ...any) {
	p.warnings = append(p.warnings, apimodel.Problem{File: p.file, Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) api() *apimodel.API {
	doc := p.doc
	root := extensions{p: p, path: "$", m: doc.Extensions}
	root.checkKnown(apiExtensions)
	api := &apimodel.API{Source: p.file, Schemes: map[string]apimodel.Scheme{}}
	p.identity(api, root)
	p.settings(api, root)
	p.schemes(api)
	p.unsupportedWSO2("$", doc.Extensions)
	// How the scopes of one scheme in a requirement combine: OpenAPI says all of them, WSO2's
	// gateways any one. A document written for WSO2 (any x-wso2-* extension) gets WSO2's
	// reading; x-tollgate-scopes: any|all says it explicitly, on the document or an operation.
	api.WSO2 = usesWSO2(doc)
	d := defaults{anyScopes: scopeMode(root, api.WSO2)}
	p.docValidation = root.validation(validationSetting{})
	p.opValidation = map[string]validationSetting{}
	d.open, _ = root.boolean("disable-security")
	paths := doc.Paths.Map()
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, path := range keys {
		item := paths[path]
		// Choreo Connect writes endpoints on the path item, beside the operations: they are
		// the endpoints of every operation of the path that has none of its own.
		pathAt := "$.paths['" + path + "']"
		itemExt := extensions{p: p, path: pathAt, m: item.Extensions}
		itemExt.checkKnown([]string{"production-endpoints", "sandbox-endpoints"})
		d.itemProd, d.itemSand = itemExt.endpoints("production-endpoints"), itemExt.endpoints("sandbox-endpoints")
		p.unsupportedWSO2(pathAt, item.Extensions, "x-wso2-production-endpoints", "x-wso2-sandbox-endpoints")
		d.pathProd, d.pathSand = p.serverEndpoints(pathAt+".servers", item.Servers)
		ops := item.Operations()
		methods := make([]string, 0, len(ops))
		for m := range ops {
			methods = append(methods, m)
		}
		sort.Strings(methods)
		for _, m := range methods {
			api.Operations = append(api.Operations, p.operation(api, path, m, ops[m], d))
		}
	}
	p.lenientChecks(api, usesWSO2(doc))
	if len(p.uncheckable) > 0 {
		names := make([]string, 0, len(p.unsupported))
		for n := range p.unsupported {
			names = append(names, n)
		}
		sort.Strings(names)
		p.fail(p.unsupported[names[0]], "%d operations (%s) need %s, which the gateway cannot check, in every alternative; refused rather than served without it (give them another alternative)",
			len(p.uncheckable), firstFew(p.uncheckable), strings.Join(names, " or "))
	}
	return api
}

// unsupportedScheme records a scheme the gateway cannot check: alternatives that need it
// are not served (a client must present another), which narrows access, never widens it.
func (p *parser) unsupportedScheme(at, name, what string) {
	if p.unsupported == nil {
		p.unsupported = map[string]string{}
	}
	p.unsupported[name] = at
	p.warn(at, "%s is not supported: requirements that need scheme %q are not served, the operation's other alternatives are", what, name)
}

// checkable drops the alternatives that need a scheme the gateway cannot check; an
// operation left with none is recorded (and refused).
func (p *parser) checkable(reqs []apimodel.Requirement, op string) []apimodel.Requirement {
	if len(p.unsupported) == 0 {
		return reqs
	}
	out := reqs[:0:0]
	for _, r := range reqs {
		ok := true
		for _, use := range r {
			if _, bad := p.unsupported[use.Scheme]; bad {
				ok = false
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		p.uncheckable = append(p.uncheckable, op)
	}
	return out
}

// firstFew lists up to three items, and says when there are more.
func firstFew(items []string) string {
	if len(items) <= 3 {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:3], ", ") + ", ..."
}

// identity reads the API's name, version and base path.
func (p *parser) identity(api *apimodel.API, root extensions) {
	if p.doc.Info != nil {
		api.Title = p.doc.Info.Title
		api.Version = p.doc.Info.Version
	}
	if v := apimodel.Slug(api.Version); !apimodel.ValidName(api.Version) && apimodel.ValidName(v) {
		// info.version is any text in OpenAPI ("1.20.0+dev-539", a date, "N/A"); the gateway
		// keys and routes on it.
		p.warn("$.info.version", "version %q is not a name the gateway can key and route on (letters, digits, '-', '_', '.'); served as version %q", api.Version, v)
		api.Version = v
	}
	api.Name = apimodel.Slug(api.Title)
	if name, ok := root.str("name"); ok {
		api.Name = name
	} else {
		api.Name = p.nameFallback(api.Name)
	}
	api.BasePath = "/" + api.Name + "/" + api.Version
	if bp, ok := root.str("basePath"); ok {
		// WSO2 definitions write the version into the base path as a placeholder, and
		// "/*" for an API at the root.
		api.BasePath = strings.ReplaceAll(bp, "{version}", api.Version)
		if api.BasePath == "/*" {
			api.BasePath = "/"
		}
	}
	if len(api.BasePath) > 1 {
		api.BasePath = strings.TrimRight(api.BasePath, "/")
	}
}

// nameFallback makes a name of a title's slug that cannot be one: cut to 100 characters,
// or, for a title with nothing to make a name of, the first server's host. Each is a
// warning; x-tollgate-name says it outright.
func (p *parser) nameFallback(slug string) string {
	if len(slug) > 100 {
		cut := slug[:100]
		if i := strings.LastIndexByte(cut, '-'); i > 0 {
			cut = cut[:i]
		}
		p.warn("$.info.title", "the title makes a name longer than 100 characters; the API is named %q (x-tollgate-name names it)", cut)
		return cut
	}
	if slug != "" {
		return slug
	}
	for _, s := range p.doc.Servers {
		if u, err := url.Parse(s.URL); err == nil && u.Hostname() != "" && !strings.Contains(u.Host, "{") {
			name := apimodel.Slug(u.Hostname())
			p.warn("$.info.title", "the title makes no name; the API is named %q after its server (x-tollgate-name names it)", name)
			return name
		}
	}
	return slug
}

// settings reads the document-level extensions and servers.
func (p *parser) settings(api *apimodel.API, root extensions) {
	api.Hosts = root.strings("hosts")
	api.Gateways = root.strings("gateways")
	api.GRPC, _ = root.boolean("grpc")
	api.CertificateBound, _ = root.boolean("certificate-bound")
	api.DPoP, _ = root.boolean("dpop")
	api.CORS = root.cors()
	if m, ok := root.str("mutual-tls"); ok {
		// WSO2 writes mandatory for required.
		api.MutualTLS = apimodel.MutualTLSMode(strings.ToLower(m))
		if api.MutualTLS == "mandatory" {
			api.MutualTLS = apimodel.MutualTLSRequired
		}
	}
	api.Production = root.endpoints("production-endpoints")
	api.Sandbox = root.endpoints("sandbox-endpoints")
	if api.Production.Empty() {
		// servers give what the extensions do not.
		prod, sand := p.serverEndpoints("$.servers", p.doc.Servers)
		api.Production = prod
		if api.Sandbox.Empty() {
			api.Sandbox = sand
		}
	}
	api.Throttling, _ = root.str("throttling")
	api.Faults = root.faults()
	api.AuthHeader, _ = root.str("auth-header")
	if api.AuthHeader == "" {
		api.AuthHeader = "Authorization"
	}
}

// defaults is what an operation takes from its document and its path item.
type defaults struct {
	open, anyScopes    bool
	itemProd, itemSand apimodel.Endpoints // the path item's extensions
	pathProd, pathSand apimodel.Endpoints // the path item's servers
}

// operation reads one operation.
func (p *parser) operation(api *apimodel.API, path, m string, op *openapi3.Operation, d defaults) apimodel.Operation {
	at := apimodel.OpPath(path, m)
	ext := extensions{p: p, path: at, m: op.Extensions}
	ext.checkKnown(operationExtensions)
	o := apimodel.Operation{Method: strings.ToUpper(m), Path: path, OperationID: op.OperationID}
	o.Production = ext.endpoints("production-endpoints")
	o.Sandbox = ext.endpoints("sandbox-endpoints")
	if o.Production.Empty() && o.Sandbox.Empty() {
		// An operation's or a path's own servers override the document's.
		o.Production, o.Sandbox = d.pathProd, d.pathSand
		if op.Servers != nil {
			o.Production, o.Sandbox = p.serverEndpoints(at+".servers", *op.Servers)
		}
	}
	if o.Production.Empty() {
		o.Production = d.itemProd
	}
	if o.Sandbox.Empty() {
		o.Sandbox = d.itemSand
	}
	p.unsupportedWSO2(at, op.Extensions)
	o.Throttling, _ = ext.str("throttling")
	p.opValidation[o.Key()] = ext.validation(p.docValidation)
	o.Security = p.operationSecurity(api, at, o.Key(), op, ext, d)
	return o
}

// operationSecurity is an operation's effective requirements.
func (p *parser) operationSecurity(api *apimodel.API, at, key string, op *openapi3.Operation, ext extensions, d defaults) []apimodel.Requirement {
	// The operation's own x-wso2-disable-security wins over the API's, either way:
	// false under an API-level true secures the operation again (as in WSO2).
	open := d.open
	if v, set := ext.boolean("disable-security"); set {
		open = v
	}
	// WSO2 API Manager exports an open resource as x-auth-type: None.
	if at, _ := op.Extensions["x-auth-type"].(string); strings.EqualFold(at, "none") {
		open = true
	}
	var reqs []apimodel.Requirement
	switch {
	case open:
		return []apimodel.Requirement{{}}
	case op.Security != nil:
		reqs = p.requirements(*op.Security)
	case p.doc.Security != nil:
		reqs = p.requirements(p.doc.Security)
	default:
		reqs = []apimodel.Requirement{{{Scheme: DefaultScheme}}}
		api.Schemes[DefaultScheme] = apimodel.Scheme{Name: DefaultScheme, Type: apimodel.SchemeBearer}
	}
	// WSO2's older spelling of a resource's scope: x-scope on the operation adds the
	// scope to every bearer scheme of its requirements.
	if scope, _ := op.Extensions["x-scope"].(string); scope != "" {
		reqs = withScope(reqs, api.Schemes, scope)
	}
	reqs = p.checkable(reqs, key)
	reqs = withScopeMode(reqs, scopeMode(ext, d.anyScopes))
	appSec := p.doc.Extensions["x-wso2-application-security"]
	if v, ok := op.Extensions["x-wso2-application-security"]; ok {
		appSec = v
	}
	return p.applicationSecurity(at, appSec, reqs, api.Schemes)
}

// lenientChecks turn spec problems that change neither routing nor security into
// warnings, as WSO2's gateways accepted them: a duplicate operationId (operations are told
// apart by method and path), and — in a WSO2 document — a requirement naming a scheme that
// is not declared, which WSO2 reads as OAuth2 (a bearer token).
func (p *parser) lenientChecks(api *apimodel.API, wso2 bool) {
	ids := make(map[string]string)
	for _, op := range api.Operations {
		if op.OperationID == "" {
			continue
		}
		if prev, dup := ids[op.OperationID]; dup {
			p.warn(apimodel.OpPath(op.Path, op.Method)+".operationId", "duplicate operationId %q (also on %s); ignored", op.OperationID, prev)
			continue
		}
		ids[op.OperationID] = op.Key()
	}
	if !wso2 {
		return // an undeclared scheme stays an error (the model's validation says so)
	}
	for _, op := range api.Operations {
		for j, r := range op.Security {
			for _, use := range r {
				if _, ok := api.Schemes[use.Scheme]; !ok {
					api.Schemes[use.Scheme] = apimodel.Scheme{Name: use.Scheme, Type: apimodel.SchemeBearer}
					p.warn(fmt.Sprintf("%s.security[%d]", apimodel.OpPath(op.Path, op.Method), j),
						"security scheme %q is not declared; read as OAuth2 (a bearer token), as WSO2 does", use.Scheme)
				}
			}
		}
	}
}

// scopeMode reads x-tollgate-scopes (any or all) at one level; def is the level above's.
func scopeMode(e extensions, def bool) bool {
	v, ok := e.str("scopes")
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "any":
		return true
	case "all":
		return false
	}
	e.p.fail(e.path+"."+prefix+"scopes", "must be any or all, got %q", v)
	return def
}

// honouredWSO2 are the x-wso2-* extensions Tollgate reads (at the level they are allowed).
var honouredWSO2 = func() map[string]bool {
	m := map[string]bool{"x-wso2-application-security": true}
	for _, v := range wso2Alias {
		m[v] = true
	}
	return m
}()

// unsupportedWSO2 warns about each x-wso2-* extension of one object that Tollgate does
// not do, naming what is not done: a definition that relies on it must not pass in silence.
// honoured lists what this object may carry; nil means the document's and operations' set.
func (p *parser) unsupportedWSO2(at string, m map[string]any, honoured ...string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, "x-wso2-") {
			continue
		}
		if honoured == nil && honouredWSO2[k] || slices.Contains(honoured, k) {
			continue
		}
		switch {
		case strings.Contains(k, "interceptor"):
			p.warn(at+"."+k, "request and response interceptors are not run: the request reaches the backend unchanged")
		case honouredWSO2[k]:
			p.warn(at+"."+k, "not read here (on a path item only endpoints are); put it on the operations")
		default:
			p.warn(at+"."+k, "not supported; ignored")
		}
	}
}

// usesWSO2 reports whether a document is written for WSO2's gateways: an x-wso2-*
// extension on the document, a path or an operation.
func usesWSO2(doc *openapi3.T) bool {
	has := func(m map[string]any) bool {
		for k := range m {
			if strings.HasPrefix(k, "x-wso2-") {
				return true
			}
		}
		return false
	}
	if has(doc.Extensions) {
		return true
	}
	for _, item := range doc.Paths.Map() {
		if has(item.Extensions) {
			return true
		}
		for _, op := range item.Operations() {
			if has(op.Extensions) {
				return true
			}
		}
	}
	return false
}

// withScopeMode marks every scheme use's scopes as any-of (or all-of).
func withScopeMode(reqs []apimodel.Requirement, anyOf bool) []apimodel.Requirement {
	out := make([]apimodel.Requirement, len(reqs))
	for i, r := range reqs {
		out[i] = make(apimodel.Requirement, len(r))
		for j, use := range r {
			use.AnyScope = anyOf && len(use.Scopes) > 0
			out[i][j] = use
		}
	}
	return out
}

// WSO2 API Manager's API key and basic-auth schemes, as its gateways read them.
const (
	wso2APIKeyHeader = "wso2_apikey_header"
	wso2APIKeyQuery  = "wso2_apikey_query"
	wso2Basic        = "wso2_basic"
)

// applicationSecurity reads WSO2 API Manager's x-wso2-application-security
// ({security-types: [oauth2, api_key, basic_auth]}): the kinds of application credential an
// API takes besides (or instead of) its OAuth2 requirements. An API key travels in the
// "apikey" header or query parameter, as WSO2 gateways expect it.
func (p *parser) applicationSecurity(at string, v any, reqs []apimodel.Requirement, schemes map[string]apimodel.Scheme) []apimodel.Requirement {
	m, ok := v.(map[string]any)
	if !ok {
		return reqs
	}
	if opt, _ := m["optional"].(bool); opt {
		// WSO2: application security may be skipped when mutual TLS passed. Tollgate keeps
		// it required (closed rather than open); say so.
		p.warn(at+".x-wso2-application-security.optional", "true is not honoured: the application credential stays required (use x-tollgate-mutual-tls with an mTLS requirement for certificate-only access)")
	}
	types, _ := m["security-types"].([]any)
	if len(types) == 0 {
		return reqs
	}
	var out []apimodel.Requirement
	for _, t := range types {
		switch t {
		case "oauth2":
			out = append(out, reqs...)
		case "api_key":
			schemes[wso2APIKeyHeader] = apimodel.Scheme{Name: wso2APIKeyHeader, Type: apimodel.SchemeAPIKey, In: apimodel.KeyInHeader, Param: "apikey"}
			schemes[wso2APIKeyQuery] = apimodel.Scheme{Name: wso2APIKeyQuery, Type: apimodel.SchemeAPIKey, In: apimodel.KeyInQuery, Param: "apikey"}
			out = append(out, apimodel.Requirement{{Scheme: wso2APIKeyHeader}}, apimodel.Requirement{{Scheme: wso2APIKeyQuery}})
		case "basic_auth":
			schemes[wso2Basic] = apimodel.Scheme{Name: wso2Basic, Type: apimodel.SchemeBasic}
			out = append(out, apimodel.Requirement{{Scheme: wso2Basic}})
		default:
			p.warn(at+".x-wso2-application-security", "security type %v is not known and is ignored", t)
		}
	}
	if len(out) == 0 {
		return reqs
	}
	return out
}

// withScope returns requirements where every bearer scheme also needs scope.
func withScope(reqs []apimodel.Requirement, schemes map[string]apimodel.Scheme, scope string) []apimodel.Requirement {
	out := make([]apimodel.Requirement, len(reqs))
	for i, r := range reqs {
		out[i] = make(apimodel.Requirement, len(r))
		for j, use := range r {
			if schemes[use.Scheme].Type == apimodel.SchemeBearer {
				use.Scopes = append(append([]string(nil), use.Scopes...), scope)
			}
			out[i][j] = use
		}
	}
	return out
}

func (p *parser) requirements(reqs openapi3.SecurityRequirements) []apimodel.Requirement {
	out := make([]apimodel.Requirement, 0, len(reqs))
	for _, r := range reqs {
		names := make([]string, 0, len(r))
		for name := range r {
			names = append(names, name)
		}
		sort.Strings(names)
		req := apimodel.Requirement{}
		for _, name := range names {
			req = append(req, apimodel.SchemeUse{Scheme: name, Scopes: r[name]})
		}
		out = append(out, req)
	}
	if len(out) == 0 {
		// "security: []" removes all requirements: the operation is open.
		out = append(out, apimodel.Requirement{})
	}
	return out
}

// issuerNames reads a bearer scheme's x-tollgate-issuers: the configured issuers (by name)
// whose tokens it accepts.
func (p *parser) issuerNames(at string, t apimodel.SchemeType, v any) []string {
	list, ok := v.([]any)
	if t != apimodel.SchemeBearer {
		p.fail(at, "only an oauth2, openIdConnect or http bearer scheme takes issuers")
		return nil
	}
	if !ok || len(list) == 0 {
		p.fail(at, "must be a non-empty list of issuer names (the names in the configuration's issuers)")
		return nil
	}
	names := make([]string, 0, len(list))
	for i, e := range list {
		n, ok := e.(string)
		if !ok || n == "" {
			p.fail(fmt.Sprintf("%s[%d]", at, i), "an issuer name must be a non-empty string")
			continue
		}
		names = append(names, n)
	}
	return names
}

func (p *parser) schemes(api *apimodel.API) {
	if p.doc.Components == nil {
		return
	}
	for name, ref := range p.doc.Components.SecuritySchemes {
		at := "$.components.securitySchemes." + name
		if ref == nil || ref.Value == nil {
			p.fail(at, "security scheme has no value")
			continue
		}
		s := ref.Value
		sc := apimodel.Scheme{Name: name}
		switch strings.ToLower(s.Type) {
		case "oauth2", "openidconnect":
			sc.Type = apimodel.SchemeBearer
		case "http":
			switch strings.ToLower(s.Scheme) {
			case "bearer":
				sc.Type = apimodel.SchemeBearer
			case "basic":
				sc.Type = apimodel.SchemeBasic
			default:
				p.unsupportedScheme(at+".scheme", name, fmt.Sprintf("HTTP authentication scheme %q", s.Scheme))
				continue
			}
		case "apikey":
			sc.Type = apimodel.SchemeAPIKey
			sc.In, sc.Param = apimodel.KeyLocation(s.In), s.Name
			if !sc.In.Valid() {
				p.fail(at+".in", "apiKey location %q must be header, query or cookie", s.In)
				continue
			}
			if sc.Param == "" {
				p.fail(at+".name", "apiKey scheme needs the name of its header, query parameter or cookie")
				continue
			}
		case "mutualtls":
			sc.Type = apimodel.SchemeMutualTLS
		default:
			p.unsupportedScheme(at+".type", name, fmt.Sprintf("security scheme type %q", s.Type))
			continue
		}
		if v, ok := s.Extensions[prefix+"issuers"]; ok {
			sc.Issuers = p.issuerNames(at+"."+prefix+"issuers", sc.Type, v)
		}
		api.Schemes[name] = sc
	}
}
