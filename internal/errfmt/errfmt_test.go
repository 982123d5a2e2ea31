package errfmt

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBuiltins(t *testing.T) {
	d := Data{Code: 900906, Message: "No matching resource", Description: `a "quoted" <b> & 50%`, Status: 404}
	for name, want := range map[string]string{
		"wso2":    `{"fault":{"code":900906, "message":"No matching resource", "description":"a \"quoted\" <b> & 50%"}}`,
		"problem": `{"type":"https://tollgate.dev/faults/900906","title":"No matching resource","status":404,"detail":"a \"quoted\" <b> & 50%","code":900906}`,
	} {
		b, err := Builtin(name).Render(d)
		if err != nil || string(b) != want {
			t.Errorf("%s: %s (%v)\nwant %s", name, b, err, want)
		}
	}
	if Builtin("xml") != nil {
		t.Error("an unknown builtin")
	}
}

func TestParseRefuses(t *testing.T) {
	for text, want := range map[string]string{
		"":                                  "empty",
		`{"code": {{.Code}`:                 "bad character",
		`{"code": {{.Nope}}}`:               "Nope",
		`{"message": "{{.Message}}"}`:       "does not make JSON",
		`{"code": {{.Code}}, {{json .API}}`: "does not make JSON",
	} {
		if _, err := Parse(text, "application/json"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
	if _, err := Parse(`{{.Code}}`, ""); err == nil {
		t.Error("a template without a content type")
	}
	// Text that is not JSON is fine under another content type.
	if tp, err := Parse("error {{.Code}}: {{.Message}} (request {{.RequestID}})\n", "text/plain"); err != nil {
		t.Error(err)
	} else if b, _ := tp.Render(Data{Code: 404, Message: "Not Found", RequestID: "r1"}); string(b) != "error 404: Not Found (request r1)\n" {
		t.Errorf("%q", b)
	}
}

func TestEnvoyFormat(t *testing.T) {
	tp, err := Parse(`{"error":{"code":{{.Code}},"detail":{{json .Description}},"request":{{json .RequestID}},"api":{{json .API}},"op":{{json .Operation}}}}`, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.EnvoyFormat(Data{Code: 504, Description: "timed out after 100% of the time", Status: 504}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"error":{"code":504,"detail":"timed out after 100%% of the time","request":"%REQ(X-REQUEST-ID)%","api":"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:api)%","op":"%DYNAMIC_METADATA(envoy.filters.http.ext_authz:operation)%"}}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// What Envoy would write, its operators replaced, is JSON.
	out := strings.NewReplacer("%%", "%", RequestIDOperator, "abc", APIOperator, "a/v1", OperationOperator, "GET /x").Replace(got)
	if !json.Valid([]byte(out)) {
		t.Errorf("not JSON once substituted: %s", out)
	}
	noRoute, _ := tp.EnvoyFormat(Data{Code: 404}, false)
	if strings.Contains(noRoute, "DYNAMIC_METADATA") || !strings.Contains(noRoute, `"api":""`) {
		t.Errorf("without a route: %s", noRoute)
	}
}
