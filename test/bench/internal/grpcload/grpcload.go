// Package grpcload drives unary gRPC calls the way a proxy does: over one HTTP/2
// connection, requests written from pre-encoded frames by one goroutine and answers read by
// another, with no goroutine and no protobuf work per call. On a 2-core machine a load
// generator built on gRPC-Go's client takes about as much CPU as the server it measures;
// this one leaves nearly all of it to the server, as Envoy on its own cores would.
package grpcload

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/encoding/protowire"
)

// Stats is one run's outcome.
type Stats struct {
	Calls    int
	Rate     float64 // completed calls per second
	P50, P99 time.Duration
	Max      time.Duration
}

func (s Stats) String() string {
	return fmt.Sprintf("%8.0f/s p50 %v p99 %v", s.Rate, s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond))
}

// Load is a run against one method with a set of pre-encoded request messages, used in turn.
type Load struct {
	Addr   string
	Method string   // "/package.Service/Method"
	Msgs   [][]byte // serialized request messages
	// Check inspects each answer's message (the bytes are only valid during the call);
	// an error stops the run. Nil accepts any answer with grpc-status 0.
	Check func(msg []byte) error
}

// Paced offers rate calls per second for d and reports latency from each call's send.
// Go's timers wake about once a millisecond here, so calls leave in bunches of rate/1000
// — harsher than a smooth arrival. (Sleeping in nanosleep on a locked thread instead holds
// one of the server's two Ps while it sleeps, which is worse.) A server that cannot keep
// up shows as a completed rate below the offered one.
func (l Load) Paced(rate float64, d time.Duration) (Stats, error) {
	return l.run(rate, 0, d)
}

// Closed keeps inflight calls outstanding for d: the most the server can do.
func (l Load) Closed(inflight int, d time.Duration) (Stats, error) {
	return l.run(0, inflight, d)
}

type conn struct {
	nc     net.Conn
	mu     sync.Mutex // the writer side: framer, buffer, window
	bw     *bufio.Writer
	fr     *http2.Framer
	window int64 // connection send window
	more   *sync.Cond
	block  []byte // the request header block
	sent   []atomic.Int64
	lat    []time.Duration
	done   atomic.Int64
	slots  chan struct{} // closed-loop: free call slots
	failed atomic.Pointer[error]
	dead   chan struct{} // closed on the first failure
	once   sync.Once
	want   atomic.Int64 // calls sent, once sending is over
}

func (l Load) run(rate float64, inflight int, d time.Duration) (Stats, error) {
	nc, err := net.Dial("tcp", l.Addr)
	if err != nil {
		return Stats{}, err
	}
	defer nc.Close()
	c := &conn{nc: nc, bw: bufio.NewWriterSize(nc, 64<<10), window: 65535, dead: make(chan struct{})}
	c.more = sync.NewCond(&c.mu)
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(nc, 64<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", l.Method},
		{":authority", l.Addr}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		// Never indexed: the block stays valid however often it is sent.
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1], Sensitive: true})
	}
	c.block = hb.Bytes()
	frames := make([][]byte, len(l.Msgs))
	for i, m := range l.Msgs {
		frames[i] = binary.BigEndian.AppendUint32([]byte{0}, uint32(len(m)))
		frames[i] = append(frames[i], m...)
	}

	calls := int(rate*d.Seconds()) + 1
	if rate == 0 {
		calls = 1 << 20 // closed loop: enough slots for any run here; it stops at d
		c.slots = make(chan struct{}, inflight)
		for range inflight {
			c.slots <- struct{}{}
		}
	}
	c.sent = make([]atomic.Int64, calls)
	c.lat = make([]time.Duration, 0, calls)

	c.mu.Lock()
	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		c.mu.Unlock()
		return Stats{}, err
	}
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	c.fr.WriteWindowUpdate(0, 1<<30-65535)
	err = c.bw.Flush()
	c.mu.Unlock()
	if err != nil {
		return Stats{}, err
	}
	readErr := make(chan error, 1)
	go func() { readErr <- c.read(l.Check) }()

	start := time.Now()
	interval := time.Duration(0)
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	n := 0
	stop := time.NewTimer(d)
	defer stop.Stop()
send:
	for n < calls && time.Since(start) < d && c.failed.Load() == nil {
		if rate > 0 {
			// Send every call due by now, then sleep until the next is due.
			now := time.Since(start)
			c.mu.Lock()
			for n < calls && time.Duration(n)*interval <= now {
				c.write(n, frames[n%len(frames)])
				n++
			}
			c.flush()
			c.mu.Unlock()
			if wait := time.Duration(n)*interval - time.Since(start); wait > 0 {
				time.Sleep(wait)
			}
			continue
		}
		select {
		case <-c.slots:
		case <-stop.C:
			break send
		case <-c.dead:
			break send
		}
		c.mu.Lock()
		c.write(n, frames[n%len(frames)])
		n++
		if len(c.slots) == 0 {
			c.flush() // everything allowed is on its way
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.flush()
	c.mu.Unlock()
	// Wait for the answers to what was sent (bounded).
	c.want.Store(int64(n))
	deadline := time.After(5 * time.Second)
	for c.done.Load() < int64(n) && c.failed.Load() == nil {
		select {
		case <-deadline:
			return Stats{}, fmt.Errorf("%d of %d calls unanswered", int64(n)-c.done.Load(), n)
		case err := <-readErr:
			return Stats{}, err
		case <-time.After(time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	if p := c.failed.Load(); p != nil {
		return Stats{}, *p
	}
	nc.Close()
	<-readErr
	return Summarize(c.lat, elapsed), nil
}

// Summarize is the Stats of calls that took lat (sorted in place) over elapsed.
func Summarize(lat []time.Duration, elapsed time.Duration) Stats {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return Stats{Calls: len(lat), Rate: float64(len(lat)) / elapsed.Seconds(),
		P50: lat[len(lat)/2], P99: lat[len(lat)*99/100], Max: lat[len(lat)-1]}
}

// write queues call n's frames (the writer lock held), waiting for connection window.
func (c *conn) write(n int, frame []byte) {
	for c.window < int64(len(frame)) && c.failed.Load() == nil {
		c.flush()
		c.more.Wait()
	}
	c.window -= int64(len(frame))
	id := uint32(2*n + 1)
	c.sent[n].Store(time.Now().UnixNano())
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.block, EndHeaders: true})
	c.fr.WriteData(id, true, frame)
}

func (c *conn) flush() {
	if err := c.bw.Flush(); err != nil {
		c.fail(err)
	}
}

func (c *conn) fail(err error) {
	c.failed.CompareAndSwap(nil, &err)
	c.once.Do(func() { close(c.dead) })
	c.more.Broadcast()
}

// read handles the server's frames until the connection ends: settings, pings and window
// updates are answered; an answer's message is checked and its trailers end the call.
func (c *conn) read(check func([]byte) error) error {
	var consumed int64
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			if w := c.want.Load(); w > 0 && c.done.Load() >= w {
				return nil
			}
			c.fail(err)
			return err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.mu.Lock()
				c.fr.WriteSettingsAck()
				c.flush()
				c.mu.Unlock()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.mu.Lock()
				c.fr.WritePing(true, f.Data)
				c.flush()
				c.mu.Unlock()
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.mu.Lock()
				c.window += int64(f.Increment)
				c.more.Broadcast()
				c.mu.Unlock()
			}
		case *http2.DataFrame:
			consumed += int64(len(f.Data()))
			if consumed > 1<<29 {
				c.mu.Lock()
				c.fr.WriteWindowUpdate(0, uint32(consumed))
				c.flush()
				c.mu.Unlock()
				consumed = 0
			}
			if b := f.Data(); check != nil && len(b) > 0 {
				if len(b) < 5 || int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5 {
					return c.stop(fmt.Errorf("stream %d: an answer split over DATA frames (not handled here)", f.StreamID))
				}
				if err := check(b[5:]); err != nil {
					return c.stop(fmt.Errorf("stream %d: %w", f.StreamID, err))
				}
			}
		case *http2.MetaHeadersFrame:
			if !f.StreamEnded() {
				continue // the answer's headers; its trailers follow the message
			}
			if s := f.PseudoValue("status"); s != "" && s != "200" {
				return c.stop(fmt.Errorf("stream %d: HTTP %s", f.StreamID, s))
			}
			if st := field(f, "grpc-status"); st != "0" {
				code, _ := strconv.Atoi(st)
				return c.stop(fmt.Errorf("stream %d: grpc-status %d %s", f.StreamID, code, field(f, "grpc-message")))
			}
			n := int(f.StreamID-1) / 2
			c.lat = append(c.lat, time.Duration(time.Now().UnixNano()-c.sent[n].Load()))
			if c.slots != nil {
				c.slots <- struct{}{}
			}
			c.done.Add(1)
		case *http2.RSTStreamFrame:
			return c.stop(fmt.Errorf("stream %d reset: %v", f.StreamID, f.ErrCode))
		case *http2.GoAwayFrame:
			return c.stop(fmt.Errorf("server went away: %v", f.ErrCode))
		}
	}
}

func field(f *http2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

func (c *conn) stop(err error) error {
	c.fail(err)
	return err
}

// ErrDenied is what a Check function returns for an answer it did not expect.
var ErrDenied = errors.New("unexpected answer")

// Allowed checks an envoy.service.auth.v3.CheckResponse message for an ok_response
// (field 3) without decoding the rest.
func Allowed(msg []byte) error {
	if _, _, ok, err := Field(msg, 3); err != nil || ok {
		return err
	}
	return ErrDenied
}

// Field finds top-level field num of a serialized message without decoding the rest: its
// wire type and encoded value.
func Field(msg []byte, num protowire.Number) (typ protowire.Type, value []byte, found bool, err error) {
	for len(msg) > 0 {
		n, t, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return 0, nil, false, protowire.ParseError(l)
		}
		msg = msg[l:]
		if l = protowire.ConsumeFieldValue(n, t, msg); l < 0 {
			return 0, nil, false, protowire.ParseError(l)
		}
		if n == num {
			return t, msg[:l], true, nil
		}
		msg = msg[l:]
	}
	return 0, nil, false, nil
}
