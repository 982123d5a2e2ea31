// Package h2bench runs an independent HTTP/2 load generator, h2load (Debian's
// nghttp2-client), with pre-encoded gRPC requests against servers started as processes,
// and reads its per-request log: what the benches that compare Tollgate with a do-nothing
// server in the same run share.
package h2bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
)

// CheckMethod is the ext_authz Check's gRPC path.
const CheckMethod = "/envoy.service.auth.v3.Authorization/Check"

type Result struct {
	RPS            float64
	P50, P99, P999 time.Duration
	CPU            time.Duration // per Check
}

// Load runs h2load against addr's gRPC method with the framed request in the file body
// (conns connections × streams streams, 1 s warm-up, then d), and reads its per-request
// log; pid is the server's process, whose CPU time is shared out over the requests.
// headers ("name: value") go with each request, as gRPC metadata.
func Load(dir, name, addr, method string, pid int, body string, conns, streams int, d time.Duration, headers ...string) Result {
	logPath := filepath.Join(dir, name+".log")
	args := []string{"-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), "-t", "1",
		"--warm-up-time", "1s", "-D", strconv.Itoa(int(d.Seconds())),
		"-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers",
		"--log-file", logPath}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, "http://"+addr+method)
	cmd := exec.Command("h2load", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	benchutil.Check(cmd.Start())
	time.Sleep(time.Second) // the warm-up; CPU is counted over the timed part only
	cpu0 := benchutil.CPUOf(pid)
	if err := cmd.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, out.String())
		benchutil.Check(err)
	}
	cpu := benchutil.CPUOf(pid) - cpu0
	m := regexp.MustCompile(`requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed`).FindStringSubmatch(out.String())
	if m == nil || m[3] != "0" {
		fmt.Fprintln(os.Stderr, out.String())
		benchutil.Check(fmt.Errorf("%s: h2load reported failures", name))
	}
	lat := readLog(logPath)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return Result{
		RPS: float64(len(lat)) / d.Seconds(),
		P50: q(0.50), P99: q(0.99), P999: q(0.999),
		CPU: cpu / time.Duration(max(1, len(lat))),
	}
}

// readLog reads h2load's per-request log (start µs, status, duration µs), keeping only the
// timed part: h2load logs the warm-up's requests too, first.
func readLog(path string) []time.Duration {
	f, err := os.Open(path)
	benchutil.Check(err)
	defer f.Close()
	type rec struct{ start, dur int64 }
	var recs []rec
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			continue
		}
		st, _ := strconv.ParseInt(fs[0], 10, 64)
		status, _ := strconv.Atoi(fs[1])
		du, _ := strconv.ParseInt(fs[2], 10, 64)
		if status == 0 {
			// A stream still open when the timed run ended (h2load counted no failure,
			// which Load checks): not a response.
			continue
		}
		if status != 200 {
			benchutil.Check(fmt.Errorf("%s: a response with HTTP status %d", path, status))
		}
		recs = append(recs, rec{st, du})
	}
	benchutil.Check(sc.Err())
	if len(recs) == 0 {
		benchutil.Check(fmt.Errorf("%s: no requests logged", path))
	}
	first := recs[0].start
	for _, r := range recs {
		first = min(first, r.start)
	}
	var out []time.Duration
	for _, r := range recs {
		if r.start >= first+1e6 { // after the 1 s warm-up
			out = append(out, time.Duration(r.dur)*time.Microsecond)
		}
	}
	return out
}

// Median is each figure's median over the runs.
func Median(rs []Result) Result {
	pick := func(f func(Result) float64) Result {
		s := append([]Result(nil), rs...)
		sort.Slice(s, func(i, j int) bool { return f(s[i]) < f(s[j]) })
		return s[len(s)/2]
	}
	return Result{
		RPS:  pick(func(r Result) float64 { return r.RPS }).RPS,
		P50:  pick(func(r Result) float64 { return float64(r.P50) }).P50,
		P99:  pick(func(r Result) float64 { return float64(r.P99) }).P99,
		P999: pick(func(r Result) float64 { return float64(r.P999) }).P999,
		CPU:  pick(func(r Result) float64 { return float64(r.CPU) }).CPU,
	}
}

// US writes a duration in whole microseconds.
func US(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }

// Frames are messages as one stream sends them, each a gRPC frame.
func Frames[M proto.Message](ms []M) []byte {
	var out []byte
	for _, m := range ms {
		out = append(out, Frame(m)...)
	}
	return out
}

// Frame is a gRPC message frame: no compression, length, the message.
func Frame(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	benchutil.Check(err)
	out := make([]byte, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	copy(out[5:], b)
	return out
}

// ServeFloor serves a do-nothing Check server (it allows everything) on a.
func ServeFloor(a string) {
	l, err := net.Listen("tcp", a)
	benchutil.Check(err)
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, benchutil.Nothing{})
	benchutil.Check(s.Serve(l))
}

// Start starts bin with args, its output in dir/name.out.
func Start(dir, name, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	f, err := os.Create(filepath.Join(dir, name+".out"))
	benchutil.Check(err)
	cmd.Stdout, cmd.Stderr = f, f
	benchutil.Check(cmd.Start())
	return cmd
}

// WaitAllowed waits until the server allows the bench's request (the definition loaded and
// the issuer's keys fetched), so every timed request is the cached-token path.
func WaitAllowed(name, a string, req *authv3.CheckRequest) {
	var why string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, why = Allowed(a, req); ok {
			return
		}
	}
	benchutil.Check(fmt.Errorf("%s never allowed the bench's request: %s", name, why))
}

// Allowed sends one Check and says whether it was allowed, and if not why.
func Allowed(a string, req *authv3.CheckRequest) (bool, string) {
	conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
	benchutil.Check(err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, req, grpc.WaitForReady(true))
	if err != nil {
		return false, err.Error()
	}
	return resp.GetOkResponse() != nil, fmt.Sprint(resp.GetDeniedResponse().GetStatus(), resp.GetDeniedResponse().GetBody())
}

// Setup is a bench's working directory (kept when keep is set; cleanup removes it
// otherwise), the tollgate binary built in it, and this program (which serves the floors
// when started with its internal flag).
func Setup(name string, keep bool) (dir, bin, self string, cleanup func()) {
	dir, cleanup = benchutil.WorkDir(name, keep)
	bin = benchutil.Binary(dir)
	self, err := os.Executable()
	benchutil.Check(err)
	return dir, bin, self, cleanup
}

// StartRun starts `tollgate run` as name, with a tollgate.yaml of its own in dir (free
// loopback ports, its data in dir, then extra) and the definitions defs; it returns where
// it listens and its process, once its enforcer's port takes connections.
func StartRun(dir, bin, name, extra string, defs ...string) (*benchutil.Server, *exec.Cmd) {
	srv := &benchutil.Server{}
	cfg := filepath.Join(dir, name+".yaml")
	benchutil.WriteConfig(cfg, filepath.Join(dir, "data-"+name), "", srv, extra)
	args := []string{"run", "--config", cfg}
	for _, d := range defs {
		args = append(args, "-f", d)
	}
	cmd := Start(dir, name, bin, args...)
	benchutil.WaitTCP(srv.Authz)
	return srv, cmd
}

// Run is how a bench's loads run: each for Duration after a 1 s warm-up, Rounds times
// interleaved with the others, over h2load's Conns connections × Streams streams; Keep
// keeps the working directory.
type Run struct {
	Duration               time.Duration
	Rounds, Conns, Streams int
	Keep                   bool
}

// RunFlags registers the flags that set a Run (before flag.Parse).
func RunFlags() *Run {
	r := &Run{}
	flag.DurationVar(&r.Duration, "duration", 3*time.Second, "length of each timed run (after a 1 s warm-up)")
	flag.IntVar(&r.Rounds, "rounds", 3, "runs of each load, interleaved (medians are printed)")
	flag.IntVar(&r.Conns, "c", 2, "h2load connections")
	flag.IntVar(&r.Streams, "m", 8, "h2load concurrent streams per connection")
	flag.BoolVar(&r.Keep, "keep", false, "keep the working directory")
	return r
}

// Load is Load with the run's length and h2load's connections and streams.
func (r *Run) Load(dir, name, addr, method string, pid int, body string, headers ...string) Result {
	return Load(dir, name, addr, method, pid, body, r.Conns, r.Streams, r.Duration, headers...)
}

// ProfileDuring fetches, in the background, a 2 s CPU profile from the admin port admin
// (profiling on) into file, starting after the warm-up of the load about to run.
func ProfileDuring(admin, file string) {
	go func() {
		time.Sleep(1500 * time.Millisecond)
		benchutil.Fetch("http://"+admin+"/debug/pprof/profile?seconds=2", file)
	}()
}
