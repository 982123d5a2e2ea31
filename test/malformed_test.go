package test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/extauthz"
)

// rawCodec sends bytes as they are: the only way to put bytes that are not UTF-8 into a
// proto3 string field, as an HTTP request's path can carry them.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// Every CheckRequest Envoy can send gets a CheckResponse: bytes that are not UTF-8 in the
// path or a raw header value, and two credentials, are denied with a fault body — never a
// failed call. Raw header values (encode_raw_headers, as the generated filter sends them)
// are decided like the headers map; a claim with a line break stays out of the metadata
// that access logs print.
func TestEveryCheckRequestGetsADecision(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	srv := startTollgate(t, "run", "--dev", "--config", cfg, "-f", "../examples/coffeebar/coffeebar.yaml")
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	token := func(args ...string) string {
		o := tollgate(t, append([]string{"token", "--config", cfg, "--scope", "read:menu"}, args...)...)
		if o.code != 0 {
			t.Fatalf("token: %s", o.stderr)
		}
		return strings.TrimSpace(o.stdout)
	}
	good := token()

	conn, err := grpc.NewClient(p.authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	check := func(t *testing.T, wire []byte) *authv3.CheckResponse {
		t.Helper()
		resp := &authv3.CheckResponse{}
		ctx, cancel := contextWithTimeout(t, 5*time.Second)
		defer cancel()
		if err := conn.Invoke(ctx, "/envoy.service.auth.v3.Authorization/Check", wire, resp, grpc.ForceCodecV2(rawCodec{})); err != nil {
			t.Fatalf("the call failed instead of being decided: %v", err)
		}
		return resp
	}
	encode := func(t *testing.T, r *authv3.CheckRequest, swap ...[2]string) []byte {
		t.Helper()
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range swap {
			if len(s[0]) != len(s[1]) || !bytes.Contains(b, []byte(s[0])) {
				t.Fatalf("cannot swap %q", s[0])
			}
			b = bytes.Replace(b, []byte(s[0]), []byte(s[1]), 1)
		}
		return b
	}
	req := func(path string, headers map[string]string) *authv3.CheckRequest {
		return extauthz.NewCheckRequest(extauthz.Request{Method: "GET", Path: path, Host: "localhost", Headers: headers})
	}
	// rawReq is a request as the generated filter sends it: header_map with raw values.
	rawReq := func(path string, headers ...[2]string) *authv3.CheckRequest {
		r := req(path, nil)
		hm := &corev3.HeaderMap{}
		for k, v := range r.Attributes.Request.Http.Headers {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
		for _, h := range headers {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: h[0], RawValue: []byte(h[1])})
		}
		r.Attributes.Request.Http.Headers = nil
		r.Attributes.Request.Http.HeaderMap = hm
		return r
	}
	status := func(r *authv3.CheckResponse) (int, string) {
		if r.GetOkResponse() != nil {
			return 200, ""
		}
		d := r.GetDeniedResponse()
		return int(d.GetStatus().GetCode()), d.GetBody()
	}
	bearer := "Bearer " + good

	cases := []struct {
		name     string
		wire     func(t *testing.T) []byte
		status   int
		bodyPart string
	}{
		{"a raw-header request with a good token is allowed", func(t *testing.T) []byte {
			return encode(t, rawReq("/coffeebar/v1/menu", [2]string{"authorization", bearer}))
		}, 200, ""},
		{"a path that is not UTF-8 is 400", func(t *testing.T) []byte {
			return encode(t, req("/coffeebar/v1/menuXX", map[string]string{"authorization": bearer}), [2]string{"menuXX", "menu\xff\xfe"})
		}, 400, "not UTF-8"},
		{"a headers-map value that is not UTF-8 is 400", func(t *testing.T) []byte {
			return encode(t, req("/coffeebar/v1/menu", map[string]string{"authorization": bearer, "x-note": "abcXX"}), [2]string{"abcXX", "abc\xc3\x28"})
		}, 400, "not UTF-8"},
		{"a raw header value that is not UTF-8 is 400", func(t *testing.T) []byte {
			return encode(t, rawReq("/coffeebar/v1/menu", [2]string{"authorization", bearer}, [2]string{"x-note", "abcXX"}), [2]string{"abcXX", "abc\xe2\x28"})
		}, 400, "not UTF-8"},
		{"a token that is not UTF-8 is 400", func(t *testing.T) []byte {
			return encode(t, rawReq("/coffeebar/v1/menu", [2]string{"authorization", bearer + "XX"}), [2]string{good[len(good)-4:] + "XX", good[len(good)-4:] + "\xf0\x28"})
		}, 400, "not UTF-8"},
		{"two authorization headers are 400", func(t *testing.T) []byte {
			return encode(t, rawReq("/coffeebar/v1/menu", [2]string{"authorization", bearer}, [2]string{"authorization", bearer}))
		}, 400, "More than one credential"},
		{"two credentials joined in one header are 400", func(t *testing.T) []byte {
			return encode(t, req("/coffeebar/v1/menu", map[string]string{"authorization": bearer + ", " + bearer}))
		}, 400, "More than one credential"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := status(check(t, c.wire(t)))
			if code != c.status || !strings.Contains(body, c.bodyPart) {
				t.Errorf("got %d %s, want %d with %q", code, body, c.status, c.bodyPart)
			}
		})
	}

	t.Run("a claim with a line break stays out of the metadata", func(t *testing.T) {
		evil := token("--sub", "alice\r\nx-evil: 1")
		r := check(t, encode(t, rawReq("/coffeebar/v1/menu", [2]string{"authorization", "Bearer " + evil})))
		if r.GetOkResponse() == nil {
			t.Fatalf("denied: %v", r.GetDeniedResponse())
		}
		if s := r.GetDynamicMetadata().GetFields()["subject"]; s != nil {
			t.Errorf("subject reached the metadata: %q", s.GetStringValue())
		}
		if r.GetDynamicMetadata().GetFields()["api"].GetStringValue() != "coffeebar/v1" {
			t.Errorf("metadata: %v", r.GetDynamicMetadata())
		}
	})
	// The enforcer is still up and deciding.
	if code, _ := status(check(t, encode(t, req("/coffeebar/v1/menu", map[string]string{"authorization": bearer})))); code != 200 {
		t.Errorf("after the malformed requests: %d", code)
	}
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
