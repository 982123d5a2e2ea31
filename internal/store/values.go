package store

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The formats of the values under endpoints/ and secrets/: what a writer (tollgate
// endpoints set, tollgate secret set, a discovery agent) must store and what the control
// plane reads.

// Target is one resolved backend address.
type Target struct {
	Host   string
	Port   uint32
	Weight uint32
	// Scheme and Path of the stored URL: the route follows them (DiscoveryShape).
	Scheme, Path string
}

// ParseDiscovery reads the value of endpoints/<key>: one URL, or a JSON list of URLs or of
// {"url": URL, "weight": N}.
func ParseDiscovery(raw string) ([]Target, error) {
	parsedMu.Lock()
	p, ok := parsed[raw]
	parsedMu.Unlock()
	if !ok {
		p.targets, p.err = parseDiscovery(raw)
		parsedMu.Lock()
		if len(parsed) >= maxParsed {
			clear(parsed)
		}
		parsed[raw] = p
		parsedMu.Unlock()
	}
	return slices.Clone(p.targets), p.err
}

// parsed remembers the values ParseDiscovery has read: every build reads every API's
// endpoints value again, and most are unchanged since the last one.
var (
	parsedMu sync.Mutex
	parsed   = map[string]parsedValue{}
)

type parsedValue struct {
	targets []Target
	err     error
}

// maxParsed bounds parsed (it is emptied when full): far more values than a gateway keeps.
const maxParsed = 1 << 16

func parseDiscovery(raw string) ([]Target, error) {
	raw = strings.TrimSpace(raw)
	if !strings.HasPrefix(raw, "[") {
		t, err := ParseTarget(raw, 1)
		if err != nil {
			return nil, err
		}
		return []Target{t}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(raw), &items); err != nil {
		return nil, fmt.Errorf("not a URL or a JSON list: %v", err)
	}
	var out []Target
	for _, it := range items {
		var s string
		var obj struct {
			URL    string `json:"url"`
			Weight uint32 `json:"weight"`
		}
		switch {
		case json.Unmarshal(it, &s) == nil:
			obj.URL, obj.Weight = s, 1
		case json.Unmarshal(it, &obj) == nil && obj.URL != "":
		default:
			return nil, fmt.Errorf("list item %s is not a URL or {\"url\":..., \"weight\":...}", it)
		}
		t, err := ParseTarget(obj.URL, obj.Weight)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

// ParseTarget resolves an endpoint URL to an address. EDS carries IP addresses: a host name must be an
// IP literal or "localhost".
func ParseTarget(raw string, weight uint32) (Target, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return Target{}, fmt.Errorf("endpoint %q is not a URL with a host", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if net.ParseIP(host) == nil {
		return Target{}, fmt.Errorf("endpoint %q: EDS needs an IP address, not the host name %q", raw, host)
	}
	p, err := strconv.ParseUint(PortOf(u), 10, 16)
	if err != nil || p == 0 {
		return Target{}, fmt.Errorf("endpoint %q: bad port", raw)
	}
	return Target{Host: host, Port: uint32(p), Weight: max(weight, 1), Scheme: u.Scheme, Path: strings.TrimRight(u.Path, "/")}, nil
}

// PortOf is a URL's port, or its scheme's (443 for https, else 80).
func PortOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// Secret is TLS material served by SDS: a certificate and key, or CA certificates.
type Secret struct {
	Name    string
	CertPEM []byte
	KeyPEM  []byte
	CA      []byte
}

// SecretValue is the JSON stored at secrets/<name>: a certificate chain and its private key
// (PEM), or CA certificates (PEM).
type SecretValue struct {
	Certificate string `json:"certificate,omitempty"`
	PrivateKey  string `json:"privateKey,omitempty"`
	CA          string `json:"ca,omitempty"`
}

// ParseSecret checks a stored secret.
func ParseSecret(name string, raw []byte) (Secret, error) {
	var v SecretValue
	if err := json.Unmarshal(raw, &v); err != nil {
		return Secret{}, fmt.Errorf("secrets/%s: not JSON: %v", name, err)
	}
	sec := Secret{Name: name, CertPEM: []byte(v.Certificate), KeyPEM: []byte(v.PrivateKey), CA: []byte(v.CA)}
	switch {
	case v.CA != "" && v.Certificate == "" && v.PrivateKey == "":
		if b, _ := pem.Decode(sec.CA); b == nil {
			return sec, fmt.Errorf("secrets/%s: ca holds no PEM certificate", name)
		}
	case v.Certificate != "" && v.PrivateKey != "" && v.CA == "":
		if _, err := tls.X509KeyPair(sec.CertPEM, sec.KeyPEM); err != nil {
			return sec, fmt.Errorf("secrets/%s: %v", name, err)
		}
	default:
		return sec, fmt.Errorf("secrets/%s: want {certificate, privateKey} or {ca}", name)
	}
	return sec, nil
}
