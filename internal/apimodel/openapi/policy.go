package openapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
)

// policyFields are the endpoint-object fields besides urls and type.
type policyFields struct {
	LBPolicy       string          `json:"lbPolicy"`
	Timeout        string          `json:"timeout"`
	Retries        *retryFields    `json:"retries"`
	CircuitBreaker *breakerFields  `json:"circuitBreaker"`
	HealthCheck    *healthFields   `json:"healthCheck"`
	Protocol       string          `json:"protocol"`
	TLS            *tlsFields      `json:"tls"`
	Advance        *advanceFields  `json:"advanceEndpointConfig"` // WSO2
	Security       json.RawMessage `json:"securityConfig"`        // WSO2 backend basic auth: not supported
}

type retryFields struct {
	Count       int   `json:"count"`
	StatusCodes []int `json:"statusCodes"`
}

type breakerFields struct {
	MaxConnections     uint32 `json:"maxConnections"`
	MaxPendingRequests uint32 `json:"maxPendingRequests"`
	MaxRequests        uint32 `json:"maxRequests"`
	MaxRetries         uint32 `json:"maxRetries"`
	MaxConnectionPools uint32 `json:"maxConnectionPools"` // WSO2; Envoy's default applies
}

type healthFields struct {
	Path               string `json:"path"`
	Interval           string `json:"interval"`
	Timeout            string `json:"timeout"`
	HealthyThreshold   uint32 `json:"healthyThreshold"`
	UnhealthyThreshold uint32 `json:"unhealthyThreshold"`
}

type tlsFields struct {
	CA                string `json:"ca"`
	ClientCertificate string `json:"clientCertificate"`
	SNI               string `json:"sni"`
}

// advanceFields is WSO2 Choreo Connect's advanceEndpointConfig.
type advanceFields struct {
	TimeoutInMillis int            `json:"timeoutInMillis"`
	RetryConfig     *retryFields   `json:"retryConfig"`
	CircuitBreakers *breakerFields `json:"circuitBreakers"`
}

// policy reads the policy fields of an endpoint object, refusing unknown fields.
func (e extensions) policy(at string, obj map[string]any) apimodel.Policy {
	rest := map[string]any{}
	for k, v := range obj {
		if k != "urls" && k != "type" {
			rest[k] = v
		}
	}
	var f policyFields
	raw, _ := json.Marshal(rest)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		e.p.fail(at, "endpoint object: %s (known fields: urls, type, lbPolicy, timeout, retries, circuitBreaker, healthCheck, protocol, tls, advanceEndpointConfig)", strings.TrimPrefix(err.Error(), "json: "))
		return apimodel.Policy{}
	}
	p := apimodel.Policy{LB: f.LBPolicy, Protocol: f.Protocol}
	p.Timeout = e.duration(at+".timeout", f.Timeout)
	if f.Retries != nil {
		p.Retries, p.RetryOn = f.Retries.Count, f.Retries.StatusCodes
	}
	if f.CircuitBreaker != nil {
		p.CircuitBreaker = breaker(f.CircuitBreaker)
	}
	if h := f.HealthCheck; h != nil {
		if h.Path == "" {
			e.p.fail(at+".healthCheck.path", "a health check needs the path to probe")
		}
		p.HealthCheck = apimodel.HealthCheck{Path: h.Path, Healthy: h.HealthyThreshold, Unhealthy: h.UnhealthyThreshold,
			Interval: e.duration(at+".healthCheck.interval", h.Interval), Timeout: e.duration(at+".healthCheck.timeout", h.Timeout)}
	}
	if f.TLS != nil {
		p.TLS = apimodel.BackendTLS{CA: f.TLS.CA, ClientCert: f.TLS.ClientCertificate, SNI: f.TLS.SNI}
	}
	if a := f.Advance; a != nil {
		if a.TimeoutInMillis < 0 {
			e.p.fail(at+".advanceEndpointConfig.timeoutInMillis", "must not be negative")
		}
		if p.Timeout == 0 {
			p.Timeout = time.Duration(a.TimeoutInMillis) * time.Millisecond
		}
		if a.RetryConfig != nil && p.Retries == 0 {
			p.Retries, p.RetryOn = a.RetryConfig.Count, a.RetryConfig.StatusCodes
		}
		if a.CircuitBreakers != nil && p.CircuitBreaker == (apimodel.CircuitBreaker{}) {
			p.CircuitBreaker = breaker(a.CircuitBreakers)
		}
	}
	if len(f.Security) > 0 {
		e.p.warn(at+".securityConfig", "backend credentials (securityConfig) are not supported and are ignored")
	}
	return p
}

func breaker(b *breakerFields) apimodel.CircuitBreaker {
	return apimodel.CircuitBreaker{MaxConnections: b.MaxConnections, MaxPendingRequests: b.MaxPendingRequests,
		MaxRequests: b.MaxRequests, MaxRetries: b.MaxRetries}
}

func (e extensions) duration(at, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		e.p.fail(at, "%q is not a duration like \"10s\" or \"500ms\"", s)
		return 0
	}
	return d
}
