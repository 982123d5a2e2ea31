package build

import (
	"bytes"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
)

// Service discovery follows the whole stored URL: a service moved to another path is
// routed to that path (WSO2's own test: /echo/prod moved to /echo/newprod), and an unusable
// or absent value leaves the default URL's path.
func TestDiscoveryFollowsTheStoredPath(t *testing.T) {
	res, err := openapi.Parse("d.yaml", []byte(`openapi: 3.0.3
info: {title: Echo, version: v1}
x-wso2-basePath: /echo
x-wso2-production-endpoints: {urls: ["etcd(echoprod, http://127.0.0.1:9443/echo/prod)"]}
paths:
  /hello: {get: {responses: {"200": {description: ok}}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(discovery map[string]string) string {
		c, errs := Build([]*apimodel.API{res.API}, nil, Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080, Discovery: discovery})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		for _, vh := range c.Routes[0].(*routev3.RouteConfiguration).VirtualHosts {
			for _, r := range vh.Routes {
				if ra := r.GetRoute(); ra != nil {
					return ra.GetRegexRewrite().GetSubstitution()
				}
			}
		}
		return ""
	}
	for _, c := range []struct {
		name      string
		discovery map[string]string
		want      string
	}{
		{"absent: the default's path", nil, "/echo/prod/"},
		{"moved to another path", map[string]string{"echoprod": "http://10.0.0.9:9443/echo/newprod"}, "/echo/newprod/"},
		{"a list sharing a path", map[string]string{"echoprod": `["http://10.0.0.9:1/v2", {"url": "http://10.0.0.8:1/v2", "weight": 2}]`}, "/v2/"},
		{"a list that disagrees: the default's", map[string]string{"echoprod": `["http://10.0.0.9:1/a", "http://10.0.0.8:1/b"]`}, "/echo/prod/"},
		{"unusable: the default's", map[string]string{"echoprod": "not a url"}, "/echo/prod/"},
	} {
		if got := rewrite(c.discovery); got != c.want {
			t.Errorf("%s: rewrite to %q, want %q", c.name, got, c.want)
		}
	}
}

// The same inputs build the same bytes, Any contents included (maps in them are marshalled
// deterministically), so a rebuild resends nothing that did not change.
func TestBuildIsDeterministic(t *testing.T) {
	apis := examples(t)
	bytesOf := func(rs []types.Resource) []byte {
		var b []byte
		for _, r := range rs {
			m, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, m...)
		}
		return b
	}
	first, _ := Build(apis, nil, opt)
	for range 20 {
		next, _ := Build(apis, nil, opt)
		if !bytes.Equal(bytesOf(first.Listeners), bytesOf(next.Listeners)) || !bytes.Equal(bytesOf(first.Routes), bytesOf(next.Routes)) || !bytes.Equal(bytesOf(first.Clusters), bytesOf(next.Clusters)) {
			t.Fatal("two builds of the same input differ")
		}
	}
}
