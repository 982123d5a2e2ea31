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

// write writes whole lines: a reader following the file never sees half of one.
func (l *Lines) write(lines []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Available() < len(lines) && l.w.Buffered() > 0 {
		l.w.Flush()
	}
	if _, err := l.w.Write(lines); err != nil && l.err == nil {
		l.err = err
	}
}

// appendLine appends an entry's JSON line (LineFields) to b.
func appendLine(b []byte, node string, lb labels, e *Entry, total, up float64) []byte {
	b = append(b, '{')
	b = appendString(b, "time")
	b = append(b, ':', '"')
	b = e.Start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = field(b, "envoy", node)
	b = field(b, "request_id", e.RequestID)
	b = field(b, "api", lb.api)
	b = field(b, "operation", lb.operation)
	b = field(b, "application", e.ClientID)
	b = field(b, "subject", e.Subject)
	b = field(b, "auth_type", e.AuthType)
	b = field(b, "method", e.Method.String())
	b = field(b, "authority", e.Authority)
	path, _, _ := strings.Cut(e.Path, "?")
	b = field(b, "path", path)
	b = integer(b, "status", uint64(e.Code))
	b = field(b, "class", lb.class)
	b = append(b, `,"flags":"`...)
	b = e.appendFlags(b)
	b = append(b, '"')
	b = field(b, "cluster", e.Cluster)
	b = field(b, "upstream_host", e.UpstreamHost)
	b = field(b, "client_address", e.ClientAddress)
	b = field(b, "user_agent", e.UserAgent)
	b = integer(b, "request_bytes", e.RequestBytes)
	b = integer(b, "response_bytes", e.ResponseBytes)
	b = ms(b, "duration_ms", total)
	b = ms(b, "upstream_ms", up)
	return append(b, '}', '\n')
}

// field appends ,"k":"v".
func field(b []byte, k, v string) []byte {
	b = append(b, ',')
	b = appendString(b, k)
	b = append(b, ':')
	return appendString(b, v)
}

func integer(b []byte, k string, v uint64) []byte {
	b = append(b, ',')
	b = appendString(b, k)
	b = append(b, ':')
	return strconv.AppendUint(b, v, 10)
}

// ms writes seconds as milliseconds, or null when unknown (negative).
func ms(b []byte, k string, sec float64) []byte {
	if sec < 0 {
		b = append(b, ',')
		b = appendString(b, k)
		return append(b, ":null"...)
	}
	us := uint64(sec * 1e6)
	b = integer(b, k, us/1000)
	if f := us % 1000; f != 0 {
		b = append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
	}
	return b
}

// appendString appends s as a JSON string; bytes that are not UTF-8 become U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		// A run of bytes that need no escaping is copied at once.
		j := i
		for j < len(s) && plain[s[j]] {
			j++
		}
		b = append(b, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
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

// plain are the bytes a JSON string holds as they are: printable ASCII but '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
