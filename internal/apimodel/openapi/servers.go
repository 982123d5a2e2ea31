package openapi

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// serverEndpoints reads a servers list (the document's, a path's or an operation's) at
// at. Servers are alternatives, not replicas: the first absolute one not described as a
// sandbox is production; the first described as a sandbox (in its description or host
// name) is the sandbox; every other one is named in a warning, as is a relative URL, which
// names no backend.
func (p *parser) serverEndpoints(at string, servers openapi3.Servers) (prod, sandbox apimodel.Endpoints) {
	var chosen string
	for i, s := range servers {
		if s == nil {
			continue
		}
		here := fmt.Sprintf("%s[%d].url", at, i)
		raw := s.URL
		for name, v := range s.Variables {
			if v != nil {
				raw = strings.ReplaceAll(raw, "{"+name+"}", v.Default)
			}
		}
		u, err := url.Parse(raw)
		if err == nil && u.Scheme == "" && u.Host != "" {
			// "//api.example.com": a description converted from Swagger 2.0 without
			// schemes. The gateway reaches its backend over TLS.
			raw, u.Scheme = "https:"+raw, "https"
			p.warn(here, "server URL %q names no scheme; read as %q", s.URL, raw)
		}
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.warn(here, "server URL %q is not an absolute http(s) URL, so it names no backend and is not used (give the backend in x-tollgate-production-endpoints)", s.URL)
			continue
		}
		isSandbox := strings.Contains(strings.ToLower(s.Description), "sandbox") || strings.Contains(strings.ToLower(u.Host), "sandbox")
		switch {
		case isSandbox && sandbox.Empty():
			sandbox.URLs = []apimodel.Endpoint{{URL: raw}}
			p.warn(here, "server %q is described as a sandbox: it is the sandbox endpoint, not a production one", raw)
		case !isSandbox && prod.Empty():
			prod.URLs = []apimodel.Endpoint{{URL: raw}}
			chosen = raw
		default:
			p.warn(here, "server %q is an alternative to %q and is not used: servers are alternatives, not replicas (to balance load over backends, list them in x-tollgate-production-endpoints)", raw, cmp.Or(chosen, sandboxURL(sandbox)))
		}
	}
	return prod, sandbox
}

func sandboxURL(s apimodel.Endpoints) string {
	if len(s.URLs) == 0 {
		return ""
	}
	return s.URLs[0].URL
}

// scheme keeps one of a Swagger 2.0 document's schemes: https when listed, else the first.
// The others would be other backends on the same port, not replicas.
func (p *parser) scheme(tree map[string]any) {
	schemes := list(tree["schemes"])
	if len(schemes) < 2 {
		return
	}
	chosen := schemes[0]
	for _, s := range schemes {
		if s == "https" {
			chosen = s
		}
	}
	var dropped []string
	for _, s := range schemes {
		if s != chosen {
			dropped = append(dropped, fmt.Sprint(s))
		}
	}
	tree["schemes"] = []any{chosen}
	p.warn("$.schemes", "the backend is reached over %v; %s not used (schemes are alternatives, not replicas)", chosen, strings.Join(dropped, ", ")+map[bool]string{true: " is", false: " are"}[len(dropped) == 1])
}
