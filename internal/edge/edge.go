// Package edge holds the settings of how Envoy's generated listeners face clients — the
// configuration file's xds.edge and xds.accessLog, which the control plane (xds/build)
// turns into Envoy's fields — with their defaults and their checks.
package edge

import (
	"fmt"
	"slices"
	"time"
)

// Settings are how the generated listeners face untrusted clients. The defaults are Envoy's own
// "Configuring Envoy as an edge proxy" best practices; each can be changed in the config
// (xds.edge, xds.accessLog).
type Settings struct {
	// TrustedHops is how many proxies in front of Envoy append to x-forwarded-for (0: Envoy
	// is the edge and the client's address is the connection's).
	TrustedHops uint32
	// MaxRequestHeadersKB bounds the request headers (default 60; raise it for large
	// tokens, at most 8192).
	MaxRequestHeadersKB uint32
	// RequestHeadersTimeout: time for a client to send its headers (default 10s).
	RequestHeadersTimeout time.Duration
	// StreamIdleTimeout: a stream with no activity is reset (default 5m); RequestTimeout
	// bounds a whole request, body included (default 5m); IdleTimeout closes a connection
	// with no streams (default 1h).
	StreamIdleTimeout, RequestTimeout, IdleTimeout time.Duration
	// BufferLimitBytes is the per-connection read/write buffer (default 32 KiB).
	BufferLimitBytes uint32
	// HTTP/2: concurrent streams per connection (default 100) and flow-control windows
	// (default 64 KiB per stream, 1 MiB per connection).
	MaxConcurrentStreams                             uint32
	InitialStreamWindowSize, InitialConnectionWindow uint32
	// HeadersWithUnderscores: "reject" (default: 400, so no header smuggling past a
	// backend that maps _ and - alike), "drop" or "allow".
	HeadersWithUnderscores string
	// EscapedSlashes, for %2F and %5C in a path: "unescape-and-redirect" (default),
	// "reject", "unescape-and-forward" or "keep".
	EscapedSlashes string
	// TLSMinVersion and TLSMaxVersion ("1.2", "1.3"; default 1.2 and 1.3) and CipherSuites
	// (Envoy's names; empty: Envoy's defaults) for the HTTPS listener.
	TLSMinVersion, TLSMaxVersion string
	CipherSuites                 []string
	// AccessLog: where each request is logged, as one JSON object per line.
	AccessLog AccessLog
}

// AccessLog configures the listeners' access log.
type AccessLog struct {
	// Path is a file on the Envoy host; empty: Envoy's standard output.
	Path string
	// Disabled turns the access log off.
	Disabled bool
}

// Default is the settings with every default filled in.
func Default() Settings {
	var e Settings
	e.Fill()
	return e
}

// Fill sets every setting left zero to its default.
func (e *Settings) Fill() {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&e.MaxRequestHeadersKB, 60)
	def(&e.BufferLimitBytes, 32<<10)
	def(&e.MaxConcurrentStreams, 100)
	def(&e.InitialStreamWindowSize, 64<<10)
	def(&e.InitialConnectionWindow, 1<<20)
	defDur(&e.RequestHeadersTimeout, 10*time.Second)
	defDur(&e.StreamIdleTimeout, 5*time.Minute)
	defDur(&e.RequestTimeout, 5*time.Minute)
	defDur(&e.IdleTimeout, time.Hour)
	if e.HeadersWithUnderscores == "" {
		e.HeadersWithUnderscores = "reject"
	}
	if e.EscapedSlashes == "" {
		e.EscapedSlashes = "unescape-and-redirect"
	}
	if e.TLSMinVersion == "" {
		e.TLSMinVersion = "1.2"
	}
	if e.TLSMaxVersion == "" {
		e.TLSMaxVersion = "1.3"
	}
}

// Check says what is wrong with the settings (for the config's validation).
func (e Settings) Check() error {
	e.Fill()
	if !slices.Contains(HeadersWithUnderscores, e.HeadersWithUnderscores) {
		return fmt.Errorf("headersWithUnderscores %q must be reject, drop or allow", e.HeadersWithUnderscores)
	}
	if !slices.Contains(EscapedSlashes, e.EscapedSlashes) {
		return fmt.Errorf("escapedSlashes %q must be unescape-and-redirect, reject, unescape-and-forward or keep", e.EscapedSlashes)
	}
	min, max := slices.Index(TLSVersions, e.TLSMinVersion), slices.Index(TLSVersions, e.TLSMaxVersion)
	if min < slices.Index(TLSVersions, "1.2") || max < min {
		return fmt.Errorf("tls versions %q..%q: each 1.2 or 1.3, the minimum at least 1.2 and not above the maximum", e.TLSMinVersion, e.TLSMaxVersion)
	}
	if e.MaxRequestHeadersKB > 8192 {
		return fmt.Errorf("maxRequestHeadersKB %d is above Envoy's limit of 8192", e.MaxRequestHeadersKB)
	}
	return nil
}

// The values the string settings take (xds/build maps each to Envoy's enum).
var (
	HeadersWithUnderscores = []string{"reject", "drop", "allow"}
	EscapedSlashes         = []string{"unescape-and-redirect", "reject", "unescape-and-forward", "keep"}
	TLSVersions            = []string{"1.0", "1.1", "1.2", "1.3"} // oldest first
)
