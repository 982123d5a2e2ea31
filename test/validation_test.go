package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-gw/tollgate/extauthz"
)

// An API that says nothing of validation, under a gateway whose tollgate.yaml turns it on.
const notesAPI = `openapi: 3.0.3
info: {title: Notes, version: v1}
servers: [{url: "http://127.0.0.1:8088/notes"}]
security: [{}]
paths:
  /notes:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object, required: [text], properties: {text: {type: string, maxLength: 10}}}
      responses: {"201": {description: added}}
  /drafts:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {text: {type: string}}, propertyNames: {pattern: "^[a-z]+$"}}
      responses: {"201": {description: added}}
  /open:
    post:
      x-tollgate-validation: {request: false}
      requestBody:
        content:
          application/json: {schema: {type: object, required: [text]}}
      responses: {"201": {description: added}}
`

// Request validation as users run it: validate reads the gateway's default from
// tollgate.yaml, `tollgate run` serves routes that send validated operations' bodies (and
// only theirs) with the Check, and the enforcer's port refuses what the definition does
// not allow — over ADS and gRPC, as Envoy would see it.
func TestRequestValidationOverTheBinary(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("validation: {request: true, maxBodySize: 4096}\n")
	f.Close()
	notes := write(t, dir, "notes.yaml", notesAPI)
	shelf, _ := filepath.Abs("../examples/bookshelf/bookshelf.yaml")

	// validate under the same configuration: /drafts cannot be compiled (propertyNames),
	// which the gateway default asked for: a warning, and the API is accepted.
	o := tollgate(t, "validate", "--config", cfg, "-f", notes, "-f", shelf)
	if o.code != 0 || !strings.Contains(o.stderr, "POST /drafts: served without request validation") || !strings.Contains(o.stderr, "propertyNames") {
		t.Fatalf("validate: %d\n%s\n%s", o.code, o.stdout, o.stderr)
	}
	// A definition that asks for validation itself is refused with file, JSON path and reason.
	explicit := write(t, dir, "explicit.yaml", strings.Replace(notesAPI, "security: [{}]", "security: [{}]\nx-tollgate-validation: {request: true}", 1))
	o = tollgate(t, "validate", "-f", explicit)
	if o.code == 0 || !strings.Contains(o.stderr, "explicit.yaml: $.paths['/drafts'].post.requestBody.content['application/json'].schema: cannot validate POST /drafts") {
		t.Fatalf("validate of an explicit, uncompilable schema: %d\n%s", o.code, o.stderr)
	}

	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", notes, "-f", shelf)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := connectEnvoy(t, ctx, p.xds, "validation")
	e.waitFor("the routes", 20*time.Second, func(c config) bool {
		all := strings.Join(c.Routes, "\n")
		return strings.Contains(all, "notes/v1 POST /notes") && strings.Contains(all, "bookshelf/v1 POST /books")
	})
	routes := map[string]*routev3.Route{}
	for _, path := range []string{"/notes/v1/notes", "/bookshelf/v1/books"} {
		for _, vh := range e.tableFor(path).GetVirtualHosts() {
			for _, r := range vh.Routes {
				routes[r.Name] = r
			}
		}
	}
	body := func(name string) (*extauthzv3.BufferSettings, map[string]string) {
		r := routes[name]
		if r == nil {
			t.Fatalf("no route %q", name)
		}
		var per extauthzv3.ExtAuthzPerRoute
		if err := r.TypedPerFilterConfig["envoy.filters.http.ext_authz"].UnmarshalTo(&per); err != nil {
			t.Fatal(err)
		}
		return per.GetCheckSettings().GetWithRequestBody(), per.GetCheckSettings().GetContextExtensions()
	}
	for name, limit := range map[string]uint32{
		"notes/v1 POST /notes":                   4096,  // the gateway's default
		"notes/v1 POST /drafts":                  0,     // served unvalidated: its schema did not compile
		"notes/v1 POST /open":                    0,     // the definition turns it off
		"bookshelf/v1 POST /books":               65536, // the definition's maxBodySize
		"bookshelf/v1 PUT /books/{isbn}/cover":   2 << 20,
		"bookshelf/v1 GET /books/{isbn}/sandbox": 0, // no such route: checked below
	} {
		if strings.HasSuffix(name, "/sandbox") {
			if routes[name] != nil {
				t.Errorf("%s exists", name)
			}
			continue
		}
		b, _ := body(name)
		if b.GetMaxRequestBytes() != limit || (limit > 0 && (!b.GetPackAsBytes() || routes[name].GetRequestBodyBufferLimit().GetValue() != uint64(limit))) {
			t.Errorf("%s: body %v, route buffer limit %v; want %d bytes", name, b, routes[name].GetRequestBodyBufferLimit(), limit)
		}
	}

	conn, err := grpc.NewClient(p.authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	token := strings.TrimSpace(tollgate(t, "token", "--config", cfg, "--scope", "write:books").stdout)
	for _, c := range []struct {
		route, path, ctype, body string
		want                     int
		in                       string
	}{
		{"notes/v1 POST /notes", "/notes/v1/notes", "application/json", `{"text":"hi"}`, 200, ""},
		{"notes/v1 POST /notes", "/notes/v1/notes", "application/json", `{"text":"far too long a note"}`, 400, `"description":"body /text: `},
		{"notes/v1 POST /notes", "/notes/v1/notes", "text/plain", `hi`, 415, ""},
		{"notes/v1 POST /drafts", "/notes/v1/drafts", "application/json", `{"Text":1}`, 200, ""},
		{"notes/v1 POST /open", "/notes/v1/open", "application/json", `{}`, 200, ""},
		{"bookshelf/v1 POST /books", "/bookshelf/v1/books", "application/json", `{"title":"Dune","authors":["Frank Herbert"]}`, 200, ""},
		{"bookshelf/v1 POST /books", "/bookshelf/v1/books", "application/json", `{"title":"Dune"}`, 400, "required properties missing: authors"},
	} {
		_, ext := body(c.route)
		req := extauthz.NewCheckRequest(extauthz.Request{Method: "POST", Path: c.path, Host: "localhost", ContextExtensions: ext,
			Headers: map[string]string{"content-type": c.ctype, "authorization": "Bearer " + token}, Body: []byte(c.body)})
		resp, err := client.Check(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		status, got := 200, ""
		if d := resp.GetDeniedResponse(); d != nil {
			status, got = int(d.GetStatus().GetCode()), d.GetBody()
		}
		if status != c.want || !strings.Contains(got, c.in) {
			t.Errorf("%s %s: %d %s, want %d with %q", c.route, c.body, status, got, c.want, c.in)
		}
	}
	// The README's way without Envoy: tollgate check with a body.
	o = tollgate(t, "check", "--config", cfg, "--method", "POST", "--path", "/bookshelf/v1/books", "-H", "Authorization: Bearer "+token,
		"-H", "Content-Type: application/json", "-d", `{"title":"Dune","year":1965}`)
	// (in the bookshelf's own error format, x-tollgate-faults)
	if o.code != 3 || !strings.Contains(o.stdout, "DENIED 400") || !strings.Contains(o.stdout, `{"code":400,"status":400,"message":"Bad Request","description":"body: required properties missing: authors","requestId":"`) ||
		!strings.Contains(o.stdout, `"api":"bookshelf/v1","operation":"POST /books"}`) {
		t.Errorf("tollgate check -d: %d\n%s%s", o.code, o.stdout, o.stderr)
	}
	waitMetric(t, p.admin, `tollgate_validations_total\{result="invalid"\} ([3-9])`)

	// Responses: the route of GET /books/{isbn} enables ext_proc; a stream opened with its
	// metadata, on the enforcer's port, gets Envoy's messages and replaces a bad book.
	book := routes["bookshelf/v1 GET /books/{isbn}"]
	var fc routev3.FilterConfig
	var per extprocfilterv3.ExtProcPerRoute
	if book == nil || book.TypedPerFilterConfig["envoy.filters.http.ext_proc"].UnmarshalTo(&fc) != nil || fc.GetConfig().UnmarshalTo(&per) != nil {
		t.Fatalf("GET /books/{isbn} does not enable ext_proc: %v", book)
	}
	if routes["bookshelf/v1 POST /books"].TypedPerFilterConfig["envoy.filters.http.ext_proc"] != nil {
		t.Error("POST /books enables ext_proc though it does not validate responses")
	}
	var md []string
	for _, h := range per.GetOverrides().GetGrpcInitialMetadata() {
		md = append(md, h.Key, h.Value)
	}
	for body, replaced := range map[string]bool{`{"title":"Dune","authors":["Frank Herbert"]}`: false, `{"title":"Dune","authors":[]}`: true} {
		stream, err := extprocv3.NewExternalProcessorClient(conn).Process(metadata.AppendToOutgoingContext(ctx, md...))
		if err != nil {
			t.Fatal(err)
		}
		attrs, _ := structpb.NewStruct(map[string]any{"response.code_details": "via_upstream"})
		headers := &extprocv3.ProcessingRequest{
			Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				{Key: ":status", RawValue: []byte("200")}, {Key: "content-type", RawValue: []byte("application/json")}}}}},
			Attributes: map[string]*structpb.Struct{"envoy.filters.http.ext_proc": attrs}}
		var last *extprocv3.ProcessingResponse
		for _, m := range []*extprocv3.ProcessingRequest{headers, {Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}} {
			if err := stream.Send(m); err != nil {
				t.Fatal(err)
			}
			if last, err = stream.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		stream.CloseSend()
		imm := last.GetImmediateResponse()
		if (imm != nil) != replaced || (replaced && (imm.GetStatus().GetCode() != 500 || !strings.Contains(string(imm.GetBody()), `"message":"Bad Response","description":"body /authors: `))) {
			t.Errorf("response %s: %v", body, last)
		}
	}
	waitMetric(t, p.admin, `tollgate_response_validations_total\{result="replaced"\} (1)`)
}
