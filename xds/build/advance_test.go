package build

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/xds/validate"
)

// MGW 3.x's advanceEndpointConfig: the failure-ratio circuit breaker becomes outlier
// detection by failure percentage, retryConfig's interval a retry back-off; what Envoy
// cannot express is a warning naming the key, and an unknown key is an error at that key.
func TestMGW3AdvanceEndpointConfig(t *testing.T) {
	const doc = `openapi: 3.0.3
info: {title: Adv, version: v1}
x-wso2-basePath: /adv
paths:
  /breaker:
    get:
      x-wso2-production-endpoints:
        urls: [http://10.0.0.1:8080/v3]
        advanceEndpointConfig:
          circuitBreaker:
            rollingWindow: {requestVolumeThreshold: 4, timeWindowInMillis: 60000, bucketSizeInMillis: 2000}
            failureThreshold: 0.2
            resetTimeInMillis: 5000
            statusCodes: [500]
      responses: {"200": {description: ok}}
  /retry:
    get:
      x-wso2-production-endpoints:
        urls: [http://10.0.0.2:8080/v3]
        advanceEndpointConfig:
          timeoutInMillis: 7000
          retryConfig: {count: 1, intervalInMillis: 1000, backOffFactor: 1.2, statusCodes: [504]}
      responses: {"200": {description: ok}}
`
	res, err := openapi.Parse("adv.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	w := res.Warnings.Error()
	for _, want := range []string{"advanceEndpointConfig.retryConfig.backOffFactor: Envoy backs off", "advanceEndpointConfig.circuitBreaker.rollingWindow.bucketSizeInMillis: ignored"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	c, errs := Build([]*apimodel.API{res.API}, nil, Options{AuthzAddress: "127.0.0.1:9191", HTTPPort: 8080})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var od *clusterv3.OutlierDetection
	for _, r := range c.Clusters {
		if err := validate.Message(r); err != nil {
			t.Fatal(err)
		}
		if o := r.(*clusterv3.Cluster).OutlierDetection; o != nil {
			od = o
		}
	}
	if od == nil || od.GetFailurePercentageThreshold().GetValue() != 20 || od.GetFailurePercentageRequestVolume().GetValue() != 4 ||
		od.GetInterval().AsDuration() != time.Minute || od.GetBaseEjectionTime().AsDuration() != 5*time.Second ||
		od.GetEnforcingFailurePercentage().GetValue() != 100 || od.GetFailurePercentageMinimumHosts().GetValue() != 1 {
		t.Errorf("outlier detection %v", od)
	}
	var retry *routev3.RetryPolicy
	for _, r := range c.Routes {
		if err := validate.Message(r); err != nil {
			t.Fatal(err)
		}
		for _, vh := range r.(*routev3.RouteConfiguration).VirtualHosts {
			for _, rt := range vh.Routes {
				if strings.HasSuffix(rt.Name, "GET /retry") {
					retry = rt.GetRoute().GetRetryPolicy()
					if rt.GetRoute().GetTimeout().AsDuration() != 7*time.Second {
						t.Errorf("timeout %v", rt.GetRoute().GetTimeout())
					}
				}
			}
		}
	}
	if retry.GetNumRetries().GetValue() != 1 || retry.GetRetryBackOff().GetBaseInterval().AsDuration() != time.Second ||
		retry.GetRetryBackOff().GetMaxInterval().AsDuration() != 10*time.Second || len(retry.RetriableStatusCodes) != 1 {
		t.Errorf("retry policy %v", retry)
	}

	bad := strings.Replace(doc, "failureThreshold: 0.2", "failureTreshold: 0.2", 1)
	if _, err := openapi.Parse("adv.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "$.paths['/breaker'].get.x-wso2-production-endpoints.advanceEndpointConfig: unknown field \"failureTreshold\"") {
		t.Errorf("a misspelt key: %v", err)
	}
}
