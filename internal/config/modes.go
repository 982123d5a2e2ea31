package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The configuration's modes: each a named type whose values are checked once, when the
// file is decoded, with the field and the allowed values in the error.

// Backend is where throttling counters live.
type Backend string

const (
	BackendLocal Backend = "local" // in each enforcer
	BackendRedis Backend = "redis" // shared by the replicas
)

// Fallback is what throttling does while Redis is unreachable.
type Fallback string

const (
	FallbackLocal Fallback = "local"
	FallbackAllow Fallback = "allow"
	FallbackDeny  Fallback = "deny"
)

// ClientCertificates is whether Envoy's HTTPS listener asks clients for certificates
// ("" : it does not).
type ClientCertificates string

const (
	ClientCertificatesOptional ClientCertificates = "optional"
	ClientCertificatesRequire  ClientCertificates = "require"
)

// CRLExpiry is what a CRL past its nextUpdate means.
type CRLExpiry string

const (
	CRLExpiryHard CRLExpiry = "hard" // every certificate of its issuer is refused
	CRLExpirySoft CRLExpiry = "soft" // the stale list is used, with a warning
)

// FaultFormat is the form of deny bodies.
type FaultFormat string

const (
	FaultFormatWSO2    FaultFormat = "wso2"
	FaultFormatProblem FaultFormat = "problem" // RFC 9457
)

// LogLevel is the least severity logged.
type LogLevel string

// LogFormat is how log lines are written.
type LogFormat string

func (m *Backend) UnmarshalJSON(b []byte) error {
	return oneOf(b, m, "throttling.backend", BackendLocal, BackendRedis)
}

func (m *Fallback) UnmarshalJSON(b []byte) error {
	return oneOf(b, m, "throttling.redis.fallback", FallbackLocal, FallbackAllow, FallbackDeny)
}

func (m *ClientCertificates) UnmarshalJSON(b []byte) error {
	return oneOf(b, m, "xds.tls.clientCertificates", "", ClientCertificatesOptional, ClientCertificatesRequire)
}

func (m *CRLExpiry) UnmarshalJSON(b []byte) error {
	return oneOf(b, m, "authz.mutualTLS.crlExpiry", CRLExpiryHard, CRLExpirySoft)
}

func (m *FaultFormat) UnmarshalJSON(b []byte) error {
	return oneOf(b, m, "authz.faultFormat", FaultFormatWSO2, FaultFormatProblem)
}

func (m *LogLevel) UnmarshalJSON(b []byte) error {
	return oneOf[LogLevel](b, m, "log.level", "debug", "info", "warn", "error")
}

func (m *LogFormat) UnmarshalJSON(b []byte) error {
	return oneOf[LogFormat](b, m, "log.format", "json", "console")
}

// oneOf decodes a JSON string into m when it is one of allowed.
func oneOf[T ~string](b []byte, m *T, field string, allowed ...T) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s must be a string, got %s", field, b)
	}
	if !slices.Contains(allowed, T(s)) {
		names := make([]string, 0, len(allowed))
		for _, a := range allowed {
			if a != "" {
				names = append(names, string(a))
			}
		}
		return fmt.Errorf("%s %q must be %s", field, s, strings.Join(names, ", "))
	}
	*m = T(s)
	return nil
}

// Set sets the level from a flag's value, checked as in a file.
func (m *LogLevel) Set(s string) error {
	b, _ := json.Marshal(s)
	return m.UnmarshalJSON(b)
}
