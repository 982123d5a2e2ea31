package extauthz

import (
	"strings"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// readRawHeaders turns the header_map that Envoy sends with encode_raw_headers (values as
// bytes, one entry per header line) into the headers map the rest of the pipeline reads.
// A value that is not UTF-8 is a 400; two lines of the authorization header are two
// credentials, refused too. Without a header_map nothing changes.
func readRawHeaders(h *authv3.AttributeContext_HttpRequest) (*Fault, string) {
	hm := h.GetHeaderMap().GetHeaders()
	if len(hm) == 0 || len(h.Headers) > 0 {
		return nil, ""
	}
	m := make(map[string]string, len(hm))
	for _, hv := range hm {
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			if !utf8.Valid(raw) {
				return &FaultBadBytes, "header " + hv.GetKey() + " is not UTF-8"
			}
			v = string(raw)
		}
		k := lower(hv.GetKey())
		if prev, ok := m[k]; ok {
			if k == "authorization" {
				return &FaultTwoCredentials, "two authorization headers"
			}
			v = prev + "," + v // as Envoy joins repeated headers
		}
		m[k] = v
	}
	h.Headers = m
	return nil, ""
}

// twoCredentials reports an authorization header (the API's, or the standard one) that
// holds more than one credential: Envoy joins repeated headers with commas, and neither a
// bearer token nor basic credentials contain one.
func twoCredentials(h *authv3.AttributeContext_HttpRequest, api *apimodel.API) bool {
	name := "authorization"
	if api != nil && api.AuthHeader != "" {
		name = lower(api.AuthHeader)
	}
	v, ok := header(h, name)
	return ok && strings.IndexByte(v, ',') >= 0
}
