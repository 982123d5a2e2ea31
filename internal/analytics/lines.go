package analytics

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// LineFields are the fields of a JSON line, in the order written (README "Analytics").
var LineFields = []string{"time", "envoy", "request_id", "api", "operation", "application", "subject", "auth_type",
	"method", "authority", "path", "status", "class", "flags", "cluster", "upstream_host", "client_address",
	"user_agent", "request_bytes", "response_bytes", "duration_ms", "upstream_ms"}

// Lines writes one JSON object per request to w, buffered; Run flushes it every second
// and when it ends. A path's query string is never written: it may carry an API key.
type Lines struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
	err error
}

// NewLines writes to w.
func NewLines(w io.Writer) *Lines { return &Lines{w: bufio.NewWriterSize(w, 64<<10)} }

// Run flushes every second until ctx ends, then once more.
func (l *Lines) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.Flush()
			return
		case <-t.C:
			l.Flush()
		}
	}
}

// Flush writes what is buffered; it returns the first write error met so far.
func (l *Lines) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil && l.err == nil {
		l.err = err
	}
	return l.err
}

func (l *Lines) write(node string, lb labels, e *Entry, total, up float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := append(l.buf[:0], '{')
	b = appendString(b, "time")
	b = append(b, ':', '"')
	b = e.Start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = field(b, "envoy", node, true)
	b = field(b, "request_id", e.RequestID, true)
	b = field(b, "api", lb.api, true)
	b = field(b, "operation", lb.operation, true)
	b = field(b, "application", e.ClientID, true)
	b = field(b, "subject", e.Subject, true)
	b = field(b, "auth_type", e.AuthType, true)
	b = field(b, "method", e.Method.String(), true)
	b = field(b, "authority", e.Authority, true)
	path, _, _ := strings.Cut(e.Path, "?")
	b = field(b, "path", path, true)
	b = num(b, "status", float64(e.Code))
	b = field(b, "class", lb.class, true)
	b = field(b, "flags", e.FlagNames(), true)
	b = field(b, "cluster", e.Cluster, true)
	b = field(b, "upstream_host", e.UpstreamHost, true)
	b = field(b, "client_address", e.ClientAddress, true)
	b = field(b, "user_agent", e.UserAgent, true)
	b = num(b, "request_bytes", float64(e.RequestBytes))
	b = num(b, "response_bytes", float64(e.ResponseBytes))
	b = ms(b, "duration_ms", total)
	b = ms(b, "upstream_ms", up)
	b = append(b, '}', '\n')
	l.buf = b
	if l.w.Available() < len(b) && l.w.Buffered() > 0 {
		l.w.Flush() // whole lines only: a reader following the file never sees half of one
	}
	if _, err := l.w.Write(b); err != nil && l.err == nil {
		l.err = err
	}
}

func field(b []byte, k, v string, comma bool) []byte {
	if comma {
		b = append(b, ',')
	}
	b = appendString(b, k)
	b = append(b, ':')
	return appendString(b, v)
}

func num(b []byte, k string, v float64) []byte {
	b = append(b, ',')
	b = appendString(b, k)
	b = append(b, ':')
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// ms writes seconds as milliseconds, or null when unknown (negative).
func ms(b []byte, k string, sec float64) []byte {
	if sec < 0 {
		b = append(b, ',')
		b = appendString(b, k)
		return append(b, ":null"...)
	}
	return num(b, k, float64(int64(sec*1e6))/1e3)
}

// appendString appends s as a JSON string; bytes that are not UTF-8 become U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, `\u00`...)
				b = append(b, hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

const hex = "0123456789abcdef"
