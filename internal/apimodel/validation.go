package apimodel

import (
	"strings"

	"github.com/tollgate-gw/tollgate/internal/defaults"
	"github.com/tollgate-gw/tollgate/internal/jsonbody"
)

// DefaultMaxBody is the largest request body a validated operation takes unless its
// definition or the gateway says otherwise; MaxBodyLimit bounds what they may say.
const (
	DefaultMaxBody = defaults.MaxBodySize
	MaxBodyLimit   = defaults.MaxBodySizeLimit
)

// ValidationDefaults are the gateway's settings for operations whose definition says
// nothing (tollgate.yaml's validation section).
type ValidationDefaults struct {
	Request  bool
	Response ResponseMode
	MaxBody  int64 // 0: DefaultMaxBody
}

// ResponseMode is what the gateway does with responses that do not match the definition.
type ResponseMode string

// The response modes; "" is off.
const (
	ResponseOff     ResponseMode = "off"
	ResponseEnforce ResponseMode = "enforce" // replaced with a 500 fault
	ResponseReport  ResponseMode = "report"  // let through, counted and logged
)

// Valid reports whether m is a mode ("" included, as off).
func (m ResponseMode) Valid() bool {
	return m == "" || m == ResponseOff || m == ResponseEnforce || m == ResponseReport
}

// On reports whether responses are checked.
func (m ResponseMode) On() bool { return m == ResponseEnforce || m == ResponseReport }

// Validation is what the gateway checks of an operation's requests, compiled when its
// definition is loaded: nothing is compiled per request. Nil on an operation: nothing.
type Validation struct {
	// Request: the operation's requests are checked (parameters, content type, body).
	Request bool
	// Response: what becomes of responses that do not match Responses.
	Response ResponseMode
	// Responses are the declared responses, by status: exact codes first, then ranges
	// ("2XX"), then "default".
	Responses []Response
	// MaxBody is the largest body the operation takes, in bytes.
	MaxBody int64
	// Params are the operation's parameters (its path item's too), each with its rule.
	Params []Param
	// Body is the operation's request body; nil: it declares none, and a body is let
	// through unchecked (OpenAPI says nothing of it).
	Body *Body
}

// Response is one declared response.
type Response struct {
	Status string // "200", "2XX" or "default"
	// Media are its content types, most specific first; none: it has no body.
	Media []Media
}

// FindResponse is the declared response a status falls under, or nil.
func (v *Validation) FindResponse(status int) *Response {
	if status < 100 || status > 599 {
		return nil
	}
	code := [3]byte{byte('0' + status/100), byte('0' + status/10%10), byte('0' + status%10)}
	for i := range v.Responses {
		s := v.Responses[i].Status
		switch {
		case len(s) == 3 && s[0] == code[0] && s[1] == code[1] && s[2] == code[2]:
			return &v.Responses[i]
		case len(s) == 3 && s[0] == code[0] && (s[1] == 'X' || s[1] == 'x') && (s[2] == 'X' || s[2] == 'x'):
			return &v.Responses[i]
		case s == "default":
			return &v.Responses[i]
		}
	}
	return nil
}

// FindMedia is the declared media type a Content-Type falls under, or nil.
func FindMedia(media []Media, contentType string) *Media {
	mt := MediaType(contentType)
	for i := range media {
		if mediaMatch(media[i].Type, mt) {
			return &media[i]
		}
	}
	return nil
}

// Body is a declared request body.
type Body struct {
	Required bool
	// Media are the declared content types, most specific first ("application/json",
	// then "application/*", then "*/*").
	Media []Media
}

// Media is one declared content type of a body.
type Media struct {
	Type string // lower case, without parameters: "application/json", "text/*", "*/*"
	// Schema checks a JSON body; nil: only the content type is checked (a schema on a
	// type that is not JSON, or no schema).
	Schema *jsonbody.Validator
}

// Find is the declared media type a request's Content-Type falls under, or nil.
func (b *Body) Find(contentType string) *Media { return FindMedia(b.Media, contentType) }

// MediaType is a Content-Type's type/subtype in lower case, without parameters.
func MediaType(contentType string) string {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	contentType = strings.TrimSpace(contentType)
	for i := 0; i < len(contentType); i++ {
		if c := contentType[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(contentType)
		}
	}
	return contentType
}

func mediaMatch(pattern, mt string) bool {
	switch {
	case pattern == mt, pattern == "*/*":
		return true
	case strings.HasSuffix(pattern, "/*"):
		return strings.HasPrefix(mt, pattern[:len(pattern)-1])
	}
	// A structured-syntax range: "application/*+json".
	if i := strings.Index(pattern, "/*+"); i >= 0 {
		return strings.HasPrefix(mt, pattern[:i+1]) && strings.HasSuffix(mt, pattern[i+2:]) && len(mt) > len(pattern)-1
	}
	return false
}

// IsJSON reports whether a media type holds JSON: application/json or a +json suffix.
func IsJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// ParamIn is where a parameter is sent.
type ParamIn string

// The parameter locations.
const (
	InPath   ParamIn = "path"
	InQuery  ParamIn = "query"
	InHeader ParamIn = "header"
	InCookie ParamIn = "cookie"
)

// Param is one declared parameter and how its text becomes a JSON value for its schema.
type Param struct {
	Name     string // as declared; header names are matched in lower case
	In       ParamIn
	Required bool
	// Array: the value is a list, sent as repeated query keys (form, explode) or joined
	// by Sep (form without explode, simple, spaceDelimited, pipeDelimited).
	Array   bool
	Explode bool
	Sep     byte
	// Types are the JSON types a text value may stand for (of the items, for an array):
	// a text that reads as a number or boolean the schema takes is one; any other is a string.
	Types  ParamTypes
	Schema *jsonbody.Validator
}

// ParamTypes are the scalar JSON types a parameter's text may be read as.
type ParamTypes uint8

// The scalar types.
const (
	ParamString ParamTypes = 1 << iota
	ParamNumber
	ParamInteger
	ParamBoolean
	ParamNull
)
