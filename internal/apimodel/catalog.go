package apimodel

import (
	"slices"
	"sort"
	"strings"
)

// Catalog is an immutable set of validated APIs with the two lookups the enforcer needs:
// by route metadata (API id and operation key) and by matching a request's method and path.
// Build a new one on every change and swap it in; readers never lock.
type Catalog struct {
	apis  map[string]*API
	ops   map[string]map[string]*Operation // API id → operation key → operation
	bases []*API                           // sorted by base path length, longest first
}

// NewCatalog indexes APIs that have passed Validate. A later API with the same ID replaces
// an earlier one.
func NewCatalog(apis []*API) *Catalog {
	c := &Catalog{apis: map[string]*API{}, ops: map[string]map[string]*Operation{}}
	for _, a := range apis {
		c.apis[a.ID()] = a
	}
	for id, a := range c.apis {
		ops := make(map[string]*Operation, len(a.Operations))
		for i := range a.Operations {
			ops[a.Operations[i].Key()] = &a.Operations[i]
		}
		c.ops[id] = ops
		c.bases = append(c.bases, a)
	}
	sort.Slice(c.bases, func(i, j int) bool {
		if len(c.bases[i].BasePath) != len(c.bases[j].BasePath) {
			return len(c.bases[i].BasePath) > len(c.bases[j].BasePath)
		}
		return c.bases[i].ID() < c.bases[j].ID()
	})
	return c
}

// Len is the number of APIs.
func (c *Catalog) Len() int { return len(c.apis) }

// APIs lists the APIs in a stable order.
func (c *Catalog) APIs() []*API {
	out := make([]*API, 0, len(c.apis))
	for _, a := range c.apis {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

// API returns an API by ID.
func (c *Catalog) API(id string) *API { return c.apis[id] }

// Operation returns an operation by API id and operation key, as route metadata names them.
func (c *Catalog) Operation(apiID, opKey string) (*API, *Operation) {
	a := c.apis[apiID]
	if a == nil {
		return nil, nil
	}
	return a, c.ops[apiID][opKey]
}

// Match finds the API serving host whose base path prefixes the request path (longest base
// path wins) and the operation in it matching method and path. It returns the API alone
// when the base path matches but no operation does, and nothing when no base path matches.
// The path must not carry the query string; host may carry a port.
func (c *Catalog) Match(host, method, path string) (*API, *Operation) {
	for _, a := range c.bases {
		rel, ok := trimBase(path, a.BasePath)
		if !ok || !a.servesHost(host) {
			continue
		}
		var best *Operation
		for i := range a.Operations {
			op := &a.Operations[i]
			if op.Method != method || !op.template.Match(rel) {
				continue
			}
			if best == nil || op.template.Specificity() > best.template.Specificity() {
				best = op
			}
		}
		return a, best
	}
	return nil, nil
}

func trimBase(path, base string) (string, bool) {
	if base == "/" {
		return path, strings.HasPrefix(path, "/")
	}
	if !strings.HasPrefix(path, base) {
		return "", false
	}
	rel := path[len(base):]
	if rel == "" {
		return "/", true
	}
	if rel[0] != '/' {
		return "", false
	}
	return rel, true
}

func (a *API) servesHost(host string) bool {
	if len(a.Hosts) == 0 {
		return true
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	for _, h := range a.Hosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// Methods lists the methods a's operations take on path (a request path, base path
// included): empty when no operation's template matches it.
func (c *Catalog) Methods(a *API, path string) []string {
	rel, ok := trimBase(path, a.BasePath)
	if !ok {
		return nil
	}
	var out []string
	for i := range a.Operations {
		if op := &a.Operations[i]; op.template.Match(rel) && !slices.Contains(out, op.Method) {
			out = append(out, op.Method)
		}
	}
	sort.Strings(out)
	return out
}
