// Candidate JSON Schema validators for request and response bodies (issue 25), measured on
// the official JSON-Schema-Test-Suite; a module of its own so that the candidates stay out
// of the product's module.
module github.com/tollgate-gw/tollgate/test/interop/jsonschema

go 1.26.8

require (
	github.com/getkin/kin-openapi v0.152.0
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.3
	github.com/xeipuuv/gojsonschema v1.2.0
)

require (
	github.com/go-openapi/jsonpointer v1.0.0 // indirect
	github.com/kr/pretty v0.3.1 // indirect
	github.com/oasdiff/yaml v0.1.1 // indirect
	github.com/oasdiff/yaml3 v0.0.14 // indirect
	github.com/xeipuuv/gojsonpointer v0.0.0-20180127040702-4e3ac2762d5f // indirect
	github.com/xeipuuv/gojsonreference v0.0.0-20180127040603-bd5ef7bd5415 // indirect
	golang.org/x/text v0.43.0 // indirect
)

require github.com/tollgate-gw/tollgate v0.0.0

replace github.com/tollgate-gw/tollgate => ../../..
