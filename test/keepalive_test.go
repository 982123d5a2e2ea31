package test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A client that keeps its connection alive with pings about every 10 s — gRPC-Go's
// shortest keepalive, and what a busy server sees of a 10 s interval when its own clock
// reads each ping late or early — is never sent away for pinging too often: a connection
// waiting for its turn while a fleet joins must not be reset. (The enforcement allows
// pings from 5 s apart; these come 6 s apart, which a 10 s policy would strike three
// times, then answer with GOAWAY too_many_pings.)
func TestPingingClientsAreNotSentAway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPorts(t)
	startTollgate(t, "run", "--config", serverConfig(t, dir, "tollgate.yaml", p, "")) // stopped when the test and its subtests end
	waitReady(t, "http://"+p.admin+"/readyz")
	for _, c := range []struct{ port, path string }{
		{p.xds, "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"},
		{p.authz, "/envoy.service.auth.v3.Authorization/Check"},
	} {
		t.Run(c.port, func(t *testing.T) {
			t.Parallel()
			pingFor(t, c.port, c.path, 4, 6*time.Second)
		})
	}
}

// pingFor opens an HTTP/2 connection with one gRPC stream open on path and sends n pings
// every gap, failing if the server sends GOAWAY or closes the connection.
func pingFor(t *testing.T, addr, path string, n int, gap time.Duration) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", addr},
		{"content-type", "application/grpc"}, {"te", "trailers"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 1)
	go func() {
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				failed <- err
				return
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				failed <- &goAway{f.ErrCode, string(f.DebugData())}
				return
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			}
		}
	}()
	for i := range n {
		if i > 0 {
			select {
			case err := <-failed:
				t.Fatalf("after %d pings %s apart: %v", i, gap, err)
			case <-time.After(gap):
			}
		}
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	select {
	case err := <-failed:
		t.Fatalf("after %d pings %s apart: %v", n, gap, err)
	case <-time.After(time.Second):
	}
}

type goAway struct {
	code  http2.ErrCode
	debug string
}

func (g *goAway) Error() string { return "GOAWAY " + g.code.String() + " " + g.debug }
