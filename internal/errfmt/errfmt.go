// Package errfmt is the one format of every error answer the gateway makes: a Go
// text/template over a fault's code, message, description, HTTP status, request id, API and
// operation, with its content type. The enforcer renders it for its denies; the control
// plane renders it once per kind of Envoy local reply (no route, no healthy upstream, an
// upstream timeout, a body too large, the enforcer unreachable) into the Envoy format string
// of the connection manager's local_reply_config, the request's own values left to Envoy's
// command operators. "wso2" and "problem" are the two shipped templates.
package errfmt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"
)

// Data is what a template reads.
type Data struct {
	Code        int    // the fault code: WSO2's (900901, ...) or the HTTP status
	Message     string // short
	Description string // what happened, for a person
	Status      int    // the HTTP status
	RequestID   string // the request's x-request-id
	API         string // "name/version", "" when no API was found
	Operation   string // "GET /pets/{id}", "" when no operation was found
}

// Template is a parsed error template.
type Template struct {
	Name        string // "wso2", "problem", or "custom"
	ContentType string
	t           *template.Template
}

// The shipped templates: WSO2 API Microgateway 3.x's fault, and RFC 9457 problem details.
const (
	WSO2Text    = `{"fault":{"code":{{.Code}}, "message":{{json .Message}}, "description":{{json .Description}}}}`
	ProblemText = `{"type":"https://tollgate.dev/faults/{{.Code}}","title":{{json .Message}},"status":{{.Status}},"detail":{{json .Description}},"code":{{.Code}}}`
)

var funcs = template.FuncMap{
	// json writes a value as JSON, without HTML escaping.
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	},
}

// Builtin is a shipped template by name ("wso2" or "problem"), or nil.
func Builtin(name string) *Template {
	switch name {
	case "wso2":
		return mustParse(name, WSO2Text, "application/json")
	case "problem":
		return mustParse(name, ProblemText, "application/problem+json")
	}
	return nil
}

func mustParse(name, text, ctype string) *Template {
	t, err := Parse(text, ctype)
	if err != nil {
		panic(err)
	}
	t.Name = name
	return t
}

// sample is what Parse renders a template with, to refuse one that fails on real data.
var sample = Data{Code: 900901, Message: `Invalid "Credentials"`, Description: "Invalid Credentials. 100% sure <&>", Status: 401,
	RequestID: "5f3c1a52-8b7e-4d1c-9f0a-2b6c8d4e1f3a", API: "petstore/v1", Operation: "GET /pets/{petId}"}

// Parse reads a template and its content type, refusing one that does not parse, fails
// on a fault's data, or — for a JSON content type — does not make JSON.
func Parse(text, contentType string) (*Template, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("the template is empty")
	}
	if contentType == "" {
		return nil, errors.New("the template needs its content type")
	}
	t, err := template.New("fault").Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	out := &Template{Name: "custom", ContentType: contentType, t: t}
	b, err := out.Render(sample)
	if err != nil {
		return nil, err
	}
	if isJSON(contentType) && !json.Valid(b) {
		return nil, fmt.Errorf("the content type is %s, and the template does not make JSON (write strings with {{json .Description}}): %s", contentType, b)
	}
	return out, nil
}

func isJSON(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	return ct == "application/json" || strings.HasSuffix(ct, "+json")
}

// Render writes the template with d.
func (t *Template) Render(d Data) ([]byte, error) {
	var b bytes.Buffer
	if err := t.t.Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Envoy's command operators for the request's own values, and the tokens that stand for
// them while the template is rendered (so that the rest can be escaped for Envoy).
const (
	RequestIDOperator = "%REQ(X-REQUEST-ID)%"
	APIOperator       = "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:api)%"
	OperationOperator = "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:operation)%"

	requestIDToken = "tollgate-request-id-0c4f9e2a"
	apiToken       = "tollgate-api-0c4f9e2a"
	operationToken = "tollgate-operation-0c4f9e2a"
)

// EnvoyFormat renders the template for one kind of Envoy local reply (d's code, message,
// description and status) as an Envoy format string: '%' in the text is written "%%", and
// the request id, API and operation are Envoy's command operators. withRoute: the reply
// comes after a route was chosen, so the API and operation are known.
func (t *Template) EnvoyFormat(d Data, withRoute bool) (string, error) {
	d.RequestID = requestIDToken
	d.API, d.Operation = "", ""
	if withRoute {
		d.API, d.Operation = apiToken, operationToken
	}
	b, err := t.Render(d)
	if err != nil {
		return "", err
	}
	s := strings.ReplaceAll(string(b), "%", "%%")
	return strings.NewReplacer(requestIDToken, RequestIDOperator, apiToken, APIOperator, operationToken, OperationOperator).Replace(s), nil
}
