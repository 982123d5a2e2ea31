package build

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-gw/tollgate/internal/errfmt"
)

// NoRoute is Envoy's answer to a request no route takes (no API serves its host and path).
var NoRoute = errfmt.Data{Code: 900906, Status: 404, Message: "No matching resource found in the API for the given request",
	Description: "No API serves the request's host, method and path"}

// localReply is one kind of answer Envoy makes itself, and the fault it is written as.
type localReply struct {
	filter *accesslogv3.AccessLogFilter
	fault  errfmt.Data
	// routed: the reply comes after a route was chosen (and the enforcer allowed the
	// request), so the API and operation are in the request's dynamic metadata.
	routed bool
}

// The codes of Envoy's own answers: WSO2 API Manager's for no resource and for a backend
// that cannot be reached or does not answer in time (101503, 101504); Tollgate's for the
// enforcer or its response check failing.
var localReplies = []localReply{
	{flags("NR"), NoRoute, false},
	{flags("UT"), errfmt.Data{Code: 101504, Status: 504, Message: "Runtime Error",
		Description: "The backend did not answer in time"}, true},
	{flags("UH", "UF", "UO", "URX", "UC"), errfmt.Data{Code: 101503, Status: 503, Message: "Runtime Error",
		Description: "Error connecting to the backend"}, true},
	{cel(`response.code == 413 && response.code_details != "ext_authz_denied"`), errfmt.Data{Code: 413, Status: 413, Message: "Payload Too Large",
		Description: "The request body is larger than the operation takes"}, false},
	{cel(`response.code_details == "ext_authz_error"`), errfmt.Data{Code: 900952, Status: 503, Message: "Service Unavailable",
		Description: "The gateway's enforcer cannot be reached. Try again later"}, false},
	{cel(`response.code_details.startsWith("ext_proc")`), errfmt.Data{Code: 900953, Status: 500, Message: "Internal Server Error",
		Description: "The gateway could not check the backend's response"}, true},
}

func flags(fs ...string) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
		ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: fs}}}
}

// cel is a filter on a CEL expression over Envoy's attributes (response.code_details
// tells replies apart that share a status and flags).
func cel(expr string) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ExtensionFilter{ExtensionFilter: &accesslogv3.ExtensionFilter{
		Name:       "envoy.access_loggers.extension_filters.cel",
		ConfigType: &accesslogv3.ExtensionFilter_TypedConfig{TypedConfig: mustAny(&celv3.ExpressionFilter{Expression: expr})},
	}}}
}

// localReplyConfig writes Envoy's own answers in the gateway's error format. A reply
// that matches no mapper — the enforcer's denies and its response check's 500s among them,
// already in the format — is left as it is.
func localReplyConfig(t *errfmt.Template) *hcmv3.LocalReplyConfig {
	out := &hcmv3.LocalReplyConfig{}
	for _, r := range localReplies {
		format, err := t.EnvoyFormat(r.fault, r.routed)
		if err != nil {
			continue // errfmt.Parse ran the template on data of the same shape
		}
		out.Mappers = append(out.Mappers, &hcmv3.ResponseMapper{
			Filter:     r.filter,
			StatusCode: wrapperspb.UInt32(uint32(r.fault.Status)),
			BodyFormatOverride: &corev3.SubstitutionFormatString{
				Format:      &corev3.SubstitutionFormatString_TextFormatSource{TextFormatSource: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: format}}},
				ContentType: t.ContentType,
			},
		})
	}
	return out
}
