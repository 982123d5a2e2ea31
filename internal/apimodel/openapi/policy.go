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
	Advance        json.RawMessage `json:"advanceEndpointConfig"` // WSO2: read on its own (advanceFields)
	Security       json.RawMessage `json:"securityConfig"`        // WSO2 backend basic auth: not supported
}

type retryFields struct {
	Count       int   `json:"count"`
	StatusCodes []int `json:"statusCodes"`
	// Interval is the first wait before a retry ("200ms").
	Interval string `json:"interval"`
}

// wso2RetryFields is WSO2's retryConfig.
type wso2RetryFields struct {
	Count                   int     `json:"count"`
	StatusCodes             []int   `json:"statusCodes"`
	IntervalInMillis        int     `json:"intervalInMillis"`
	BackOffFactor           float64 `json:"backOffFactor"`
	MaxWaitIntervalInMillis int     `json:"maxWaitIntervalInMillis"`
}

// mgwBreakerFields is MGW 3.x's failure-ratio circuit breaker.
type mgwBreakerFields struct {
	RollingWindow struct {
		RequestVolumeThreshold uint32 `json:"requestVolumeThreshold"`
		TimeWindowInMillis     int    `json:"timeWindowInMillis"`
		BucketSizeInMillis     int    `json:"bucketSizeInMillis"`
	} `json:"rollingWindow"`
	FailureThreshold  float64 `json:"failureThreshold"`
	ResetTimeInMillis int     `json:"resetTimeInMillis"`
	StatusCodes       []int   `json:"statusCodes"`
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

// advanceFields is WSO2's advanceEndpointConfig: Choreo Connect's (circuitBreakers, by
// counts) and MGW 3.x's (circuitBreaker, by failure ratio).
type advanceFields struct {
	TimeoutInMillis int               `json:"timeoutInMillis"`
	RetryConfig     *wso2RetryFields  `json:"retryConfig"`
	CircuitBreakers *breakerFields    `json:"circuitBreakers"`
	CircuitBreaker  *mgwBreakerFields `json:"circuitBreaker"`
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
		p.RetryInterval = e.duration(at+".retries.interval", f.Retries.Interval)
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
	if len(f.Advance) > 0 {
		e.advance(at+".advanceEndpointConfig", f.Advance, &p)
	}
	if len(f.Security) > 0 {
		e.p.warn(at+".securityConfig", "backend credentials (securityConfig) are not supported and are ignored")
	}
	return p
}

// advance reads WSO2's advanceEndpointConfig into p, where p does not say otherwise.
func (e extensions) advance(at string, raw json.RawMessage, p *apimodel.Policy) {
	var a advanceFields
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		e.p.fail(at, "%s (known fields: timeoutInMillis, retryConfig {count, statusCodes, intervalInMillis, backOffFactor, maxWaitIntervalInMillis}, "+
			"circuitBreakers {maxConnections, maxPendingRequests, maxRequests, maxRetries, maxConnectionPools}, "+
			"circuitBreaker {rollingWindow, failureThreshold, resetTimeInMillis, statusCodes})", strings.TrimPrefix(err.Error(), "json: "))
		return
	}
	if a.TimeoutInMillis < 0 {
		e.p.fail(at+".timeoutInMillis", "must not be negative")
	}
	if p.Timeout == 0 {
		p.Timeout = time.Duration(a.TimeoutInMillis) * time.Millisecond
	}
	if r := a.RetryConfig; r != nil && p.Retries == 0 {
		e.retries(at+".retryConfig", r, p)
	}
	if a.CircuitBreakers != nil && p.CircuitBreaker == (apimodel.CircuitBreaker{}) {
		p.CircuitBreaker = breaker(a.CircuitBreakers)
	}
	if b := a.CircuitBreaker; b != nil {
		e.ejection(at+".circuitBreaker", b, p)
	}
}

// retries reads WSO2's retryConfig into p.
func (e extensions) retries(at string, r *wso2RetryFields, p *apimodel.Policy) {
	p.Retries, p.RetryOn = r.Count, r.StatusCodes
	if r.IntervalInMillis < 0 || r.MaxWaitIntervalInMillis < 0 {
		e.p.fail(at, "intervals must not be negative")
	}
	p.RetryInterval = time.Duration(r.IntervalInMillis) * time.Millisecond
	if r.BackOffFactor != 0 && r.BackOffFactor != 2 {
		e.p.warn(at+".backOffFactor", "Envoy backs off exponentially by 2 (with jitter) from intervalInMillis up to ten times it; a factor of %v is not expressible", r.BackOffFactor)
	}
	if r.MaxWaitIntervalInMillis != 0 {
		e.p.warn(at+".maxWaitIntervalInMillis", "ignored: Envoy waits at most ten times intervalInMillis between retries")
	}
}

// ejection reads MGW 3.x's circuitBreaker into p: it opens the circuit when the failure
// ratio over a rolling window passes the threshold, for resetTime; Envoy's outlier
// detection ejects the backend the same way.
func (e extensions) ejection(at string, b *mgwBreakerFields, p *apimodel.Policy) {
	if b.FailureThreshold <= 0 || b.FailureThreshold > 1 {
		e.p.fail(at+".failureThreshold", "must be a ratio above 0 and at most 1, got %v", b.FailureThreshold)
	}
	window := time.Duration(b.RollingWindow.TimeWindowInMillis) * time.Millisecond
	if window <= 0 {
		window = 10 * time.Second
	}
	reset := time.Duration(b.ResetTimeInMillis) * time.Millisecond
	if reset <= 0 {
		reset = 30 * time.Second
	}
	p.Ejection = apimodel.Ejection{FailurePercent: uint32(b.FailureThreshold*100 + 0.5), RequestVolume: max(b.RollingWindow.RequestVolumeThreshold, 1),
		Interval: window, EjectionTime: reset}
	for _, c := range b.StatusCodes {
		if c < 500 || c > 599 {
			e.p.warn(at+".statusCodes", "Envoy counts 5xx answers and connection failures as failures; %d does not count", c)
		}
	}
	if b.RollingWindow.BucketSizeInMillis != 0 {
		e.p.warn(at+".rollingWindow.bucketSizeInMillis", "ignored: Envoy looks at each whole window (timeWindowInMillis)")
	}
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
