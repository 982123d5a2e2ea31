package extauthz

import (
	"strings"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// checkRawHeaders checks the header_map that Envoy sends with encode_raw_headers (values as
// bytes, one entry per header line): a value that is not UTF-8 is a 400, and two lines of
// the authorization header are two credentials, refused too. The values are read where
// they are (header, headerMap), never copied into a map unless a policy needs one.
func checkRawHeaders(h *authv3.AttributeContext_HttpRequest) (*Fault, string) {
	auth := 0
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if raw := hv.GetRawValue(); len(raw) > 0 && !utf8.Valid(raw) {
			return &FaultBadBytes, "header " + hv.GetKey() + " is not UTF-8"
		}
		if strings.EqualFold(hv.GetKey(), "authorization") {
			auth++
		}
	}
	if auth > 1 {
		return &FaultTwoCredentials, "two authorization headers"
	}
	return nil, ""
}

// rawValue is a header_map entry's value. A raw value is used in place: the request owns
// its bytes and nothing writes to them.
func rawValue(hv *corev3.HeaderValue) string {
	if v := hv.GetValue(); v != "" {
		return v
	}
	raw := hv.GetRawValue()
	if len(raw) == 0 {
		return ""
	}
	return unsafe.String(&raw[0], len(raw))
}

// headerMap is the request's headers as a map (for throttling keys): the headers map when
// Envoy sent one, else the header_map's entries, repeated headers joined with commas as
// Envoy joins them.
func headerMap(h *authv3.AttributeContext_HttpRequest) map[string]string {
	if hs := h.GetHeaders(); len(hs) > 0 {
		return hs
	}
	hm := h.GetHeaderMap().GetHeaders()
	if len(hm) == 0 {
		return nil
	}
	m := make(map[string]string, len(hm))
	for _, hv := range hm {
		k, v := lower(hv.GetKey()), rawValue(hv)
		if prev, ok := m[k]; ok {
			v = prev + "," + v
		}
		m[k] = v
	}
	return m
}

// twoCredentials reports an authorization header (the API's, or the standard one) that
// holds more than one credential: Envoy joins repeated headers with commas, and neither a
// bearer token nor basic credentials contain one.
func twoCredentials(h *authv3.AttributeContext_HttpRequest, api *apimodel.API) bool {
	name := "authorization"
	if api != nil && api.AuthHeader != "" && !strings.EqualFold(api.AuthHeader, name) {
		name = api.AuthHeader
	}
	v, ok := header(h, name)
	return ok && strings.IndexByte(v, ',') >= 0
}
