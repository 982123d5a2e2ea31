package build

import (
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/tollgate-gw/tollgate/internal/edge"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/xds/validate"
)

// Every value the edge settings accept has its Envoy enum here, and no other.
func TestEdgeValuesMapToEnvoy(t *testing.T) {
	for _, c := range []struct {
		values []string
		has    func(string) bool
		n      int
	}{
		{edge.HeadersWithUnderscores, func(v string) bool { _, ok := underscores[v]; return ok }, len(underscores)},
		{edge.EscapedSlashes, func(v string) bool { _, ok := escapedSlashes[v]; return ok }, len(escapedSlashes)},
		{edge.TLSVersions, func(v string) bool { _, ok := tlsVersions[v]; return ok }, len(tlsVersions)},
	} {
		for _, v := range c.values {
			if !c.has(v) {
				t.Errorf("%q is accepted but has no Envoy value", v)
			}
		}
		if c.n != len(c.values) {
			t.Errorf("%d Envoy values for %d accepted ones (%v)", c.n, len(c.values), c.values)
		}
	}
}

// edgeListeners builds the examples with o and returns each listener with its HCM.
func edgeListeners(t *testing.T, o Options) map[string]*hcmv3.HttpConnectionManager {
	t.Helper()
	o.AuthzAddress, o.HTTPPort, o.HTTPSPort = "127.0.0.1:9191", 8080, 8443
	c, errs := Build(examples(t), []store.Secret{{Name: ServerCertSecret}}, o)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	buffer := o.Edge.BufferLimitBytes
	if buffer == 0 {
		buffer = 32 << 10
	}
	for _, r := range c.Clusters {
		cl := r.(*clusterv3.Cluster)
		if got := cl.GetPerConnectionBufferLimitBytes().GetValue(); cl.Name != "tollgate_authz" && got != buffer {
			t.Errorf("cluster %s: buffer limit %d", cl.Name, got)
		}
	}
	out := map[string]*hcmv3.HttpConnectionManager{}
	for _, r := range c.Listeners {
		l := r.(*listenerv3.Listener)
		if err := validate.Message(l); err != nil {
			t.Fatalf("listener %s: %v", l.Name, err)
		}
		if got := l.GetPerConnectionBufferLimitBytes().GetValue(); got != buffer {
			t.Errorf("%s: buffer limit %d", l.Name, got)
		}
		h := &hcmv3.HttpConnectionManager{}
		if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(h); err != nil {
			t.Fatal(err)
		}
		out[l.Name] = h
		if l.Name == ListenerHTTPS {
			tls := &tlsv3.DownstreamTlsContext{}
			l.FilterChains[0].TransportSocket.GetTypedConfig().UnmarshalTo(tls)
			out["tls:"+tlsParamsString(tls.CommonTlsContext.TlsParams)] = h
		}
	}
	return out
}

func tlsParamsString(p *tlsv3.TlsParameters) string {
	return p.TlsMinimumProtocolVersion.String() + "-" + p.TlsMaximumProtocolVersion.String() + ":" + strings.Join(p.CipherSuites, ",")
}

func TestEdgeDefaultsAreEnvoysEdgeBestPractices(t *testing.T) {
	ls := edgeListeners(t, Options{})
	if ls["tls:TLSv1_2-TLSv1_3:"] == nil {
		t.Errorf("HTTPS listener TLS parameters: %v", ls)
	}
	for _, name := range []string{ListenerHTTP, ListenerHTTPS} {
		h := ls[name]
		if h == nil {
			t.Fatalf("no %s", name)
		}
		for what, ok := range map[string]bool{
			"normalize_path":            h.GetNormalizePath().GetValue(),
			"merge_slashes":             h.MergeSlashes,
			"escaped slashes redirect":  h.PathWithEscapedSlashesAction == hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT,
			"use_remote_address":        h.GetUseRemoteAddress().GetValue(),
			"no trusted hops":           h.XffNumTrustedHops == 0,
			"underscore headers reject": h.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction() == corev3.HttpProtocolOptions_REJECT_REQUEST,
			"idle timeout 1h":           h.GetCommonHttpProtocolOptions().GetIdleTimeout().AsDuration() == time.Hour,
			"request headers 60 KiB":    h.GetMaxRequestHeadersKb().GetValue() == 60,
			"request headers timeout":   h.GetRequestHeadersTimeout().AsDuration() == 10*time.Second,
			"stream idle timeout":       h.GetStreamIdleTimeout().AsDuration() == 5*time.Minute,
			"request timeout":           h.GetRequestTimeout().AsDuration() == 5*time.Minute,
			"h2 streams":                h.GetHttp2ProtocolOptions().GetMaxConcurrentStreams().GetValue() == 100,
			"h2 stream window":          h.GetHttp2ProtocolOptions().GetInitialStreamWindowSize().GetValue() == 65536,
			"h2 connection window":      h.GetHttp2ProtocolOptions().GetInitialConnectionWindowSize().GetValue() == 1048576,
			"one access log":            len(h.AccessLog) == 1,
		} {
			if !ok {
				t.Errorf("%s: %s not set", name, what)
			}
		}
		std := &streamv3.StdoutAccessLog{}
		if err := h.AccessLog[0].GetTypedConfig().UnmarshalTo(std); err != nil {
			t.Fatalf("the default access log is not stdout: %v", err)
		}
		fields := std.GetLogFormat().GetJsonFormat().GetFields()
		for _, f := range []string{"api", "operation", "subject", "client_id", "auth_type", "status", "path", "request_id"} {
			if fields[f] == nil {
				t.Errorf("access log lacks %s", f)
			}
		}
		if !strings.Contains(fields["subject"].GetStringValue(), "DYNAMIC_METADATA(envoy.filters.http.ext_authz:subject)") {
			t.Errorf("subject field: %v", fields["subject"])
		}
		authz := &extauthzv3.ExtAuthz{}
		for _, f := range h.HttpFilters {
			if f.Name == extAuthzFilter {
				f.GetTypedConfig().UnmarshalTo(authz)
			}
		}
		if !authz.EncodeRawHeaders {
			t.Errorf("%s: ext_authz does not send raw header values", name)
		}
	}
}

func TestEdgeSettingsAreConfigurable(t *testing.T) {
	ls := edgeListeners(t, Options{Edge: edge.Settings{
		TrustedHops: 2, MaxRequestHeadersKB: 96, RequestHeadersTimeout: 3 * time.Second, StreamIdleTimeout: time.Minute,
		RequestTimeout: 30 * time.Second, IdleTimeout: 10 * time.Minute, BufferLimitBytes: 1 << 20, MaxConcurrentStreams: 10,
		InitialStreamWindowSize: 1 << 20, InitialConnectionWindow: 4 << 20, HeadersWithUnderscores: "drop", EscapedSlashes: "reject",
		TLSMinVersion: "1.3", TLSMaxVersion: "1.3", CipherSuites: []string{"ECDHE-ECDSA-AES128-GCM-SHA256"},
		AccessLog: edge.AccessLog{Path: "/var/log/envoy/access.log"},
	}})
	if ls["tls:TLSv1_3-TLSv1_3:ECDHE-ECDSA-AES128-GCM-SHA256"] == nil {
		t.Errorf("TLS parameters not applied: %v", ls)
	}
	h := ls[ListenerHTTP]
	if h.XffNumTrustedHops != 2 || h.GetMaxRequestHeadersKb().GetValue() != 96 || h.GetRequestHeadersTimeout().AsDuration() != 3*time.Second ||
		h.GetStreamIdleTimeout().AsDuration() != time.Minute || h.GetRequestTimeout().AsDuration() != 30*time.Second ||
		h.GetCommonHttpProtocolOptions().GetIdleTimeout().AsDuration() != 10*time.Minute ||
		h.GetHttp2ProtocolOptions().GetMaxConcurrentStreams().GetValue() != 10 ||
		h.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction() != corev3.HttpProtocolOptions_DROP_HEADER ||
		h.PathWithEscapedSlashesAction != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		t.Errorf("settings not applied: %v", h)
	}
	file := &filev3.FileAccessLog{}
	if err := h.AccessLog[0].GetTypedConfig().UnmarshalTo(file); err != nil || file.Path != "/var/log/envoy/access.log" {
		t.Errorf("file access log: %v %v", file, err)
	}
	if off := edgeListeners(t, Options{Edge: edge.Settings{AccessLog: edge.AccessLog{Disabled: true}}}); len(off[ListenerHTTP].AccessLog) != 0 {
		t.Error("access log not disabled")
	}
}

func TestEdgeSettingsAreChecked(t *testing.T) {
	for _, e := range []edge.Settings{
		{HeadersWithUnderscores: "maybe"},
		{EscapedSlashes: "decode"},
		{TLSMinVersion: "1.1"},
		{TLSMinVersion: "1.3", TLSMaxVersion: "1.2"},
		{MaxRequestHeadersKB: 9000},
	} {
		if err := e.Check(); err == nil {
			t.Errorf("%+v accepted", e)
		}
	}
	if err := (edge.Settings{}).Check(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
}
