// Command fleet measures the control plane at fleet scale: `tollgate run` (its own process,
// on its embedded etcd) with many APIs, each with its own discovered backend, and N
// simulated Envoys (one gRPC connection and one ADS stream each, Envoy's order of requests,
// every response ACKed). It prints the time until every Envoy holds the whole
// configuration, the server's RSS then and at its peak and its CPU, and for endpoint
// changes and API changes the time from the etcd write until each Envoy has the change.
// It is a measurement, not a test.
//
//	go run ./test/bench/fleet                          # 100 Envoys (what make bench runs)
//	go run ./test/bench/fleet -envoys 1000 [-delta]    # a fleet
//	go run ./test/bench/fleet -envoys 2000 -profile /tmp/fleet   # + heap and CPU profiles
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
)

func main() {
	nEnvoys := flag.Int("envoys", 100, "simulated Envoys, one connection each")
	nAPIs := flag.Int("apis", 1000, "APIs of 4 operations, each with its own discovered backend (one EDS cluster each)")
	perKey := flag.Int("endpoints", 10, "endpoints per cluster")
	delta := flag.Bool("delta", false, "incremental (delta) xDS instead of state-of-the-world")
	epChanges := flag.Int("endpoint-changes", 20, "endpoint changes to time")
	apiChanges := flag.Int("api-changes", 5, "API changes (one path added to one API) to time")
	profile := flag.String("profile", "", "write the server's heap profile after convergence and CPU profiles of the changes into this directory")
	profileSeconds = flag.Int("profile-seconds", 8, "length of each CPU profile (from the start of its phase)")
	keep := flag.Bool("keep", false, "keep the working directory (logs, configuration)")
	withFloor := flag.Bool("floor", true, "then run the same fleet against a do-nothing ADS server (its own process) holding the same configuration, for the floor under the figures")
	floorAddr := flag.String("serve-floor", "", "(internal) serve the floor on this address")
	floorAdmin := flag.String("floor-admin", "", "(internal) the floor's trigger address")
	floorState := flag.String("floor-state", "", "(internal) the configuration the floor serves")
	flag.Parse()
	if *floorAddr != "" {
		serveFloor(*floorAddr, *floorAdmin, *floorState)
		return
	}
	// The simulated fleet collects garbage when its heap reaches 1 GB and 1.5 MB per Envoy,
	// not at every doubling: it shares the CPUs with the server it measures, and returning
	// memory to the system only to fault it in again for the next responses was a third
	// of its CPU.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(1<<30 + int64(*nEnvoys)*3<<19)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dir, cleanup := benchutil.WorkDir("fleet", *keep)
	defer cleanup()
	bin := benchutil.Binary(dir)

	cfg := filepath.Join(dir, "tollgate.yaml")
	var srv benchutil.Server
	benchutil.WriteConfig(cfg, filepath.Join(dir, "data"), "", &srv, "log: {level: warn}\n")
	etcdAddr, xdsAddr, adminAddr := srv.Etcd, srv.XDS, srv.Admin
	out, err := os.Create(filepath.Join(dir, "run.out"))
	benchutil.Check(err)
	server := exec.Command(bin, "run", "--config", cfg)
	server.Stdout, server.Stderr = out, out
	benchutil.Check(server.Start())
	defer benchutil.Stop(server)
	pid := server.Process.Pid
	benchutil.WaitTCP(xdsAddr)

	// The definitions and their endpoints, written to etcd as an operator would.
	st, err := store.Connect(store.Config{Endpoints: []string{"http://" + etcdAddr}}, zap.NewNop())
	benchutil.Check(err)
	load(ctx, st, *nAPIs, *perKey)
	probe, want := runProbe(ctx, *nAPIs, *delta, xdsAddr)
	probe.conn.Close()
	runtime.GC()
	base := procStatus(pid)

	// The fleet connects at once.
	cpu0, self0 := benchutil.CPUOf(pid), benchutil.CPUOf(os.Getpid())
	if *profile != "" { // the simulated fleet's own CPU while it converges
		benchutil.Check(os.MkdirAll(*profile, 0o755))
		f, err := os.Create(filepath.Join(*profile, "fleet.converge.cpu.pprof"))
		benchutil.Check(err)
		benchutil.Check(pprof.StartCPUProfile(f))
	}
	var stopServerProfile func()
	if *profile != "" {
		stopServerProfile = cpuProfile(adminAddr, filepath.Join(*profile, "converge.cpu.pprof"))
	}
	envoys, connected, converged := connectFleet(ctx, *nEnvoys, *delta, want, xdsAddr)
	if *profile != "" {
		pprof.StopCPUProfile()
		stopServerProfile()
	}
	convergeCPU, fleetCPU := benchutil.CPUOf(pid)-cpu0, benchutil.CPUOf(os.Getpid())-self0
	time.Sleep(time.Second) // what the server holds once the connection burst is over
	after := procStatus(pid)
	var received int64
	for _, e := range envoys {
		received += e.received
	}
	if *profile != "" {
		benchutil.Check(os.MkdirAll(*profile, 0o755))
		benchutil.Fetch("http://"+adminAddr+"/debug/pprof/heap?gc=1", filepath.Join(*profile, "heap.pprof"))
	}

	// Endpoint changes: one cluster's addresses, at every Envoy.
	timed := func(name string, n int, change func(i int) (func(string, *anypb.Any) bool, func())) (lat, puts, afterPut []time.Duration, cpu time.Duration) {
		var stopProfile func()
		if *profile != "" {
			stopProfile = cpuProfile(adminAddr, filepath.Join(*profile, name+".cpu.pprof"))
		}
		c0 := benchutil.CPUOf(pid)
		for i := range n {
			match, write := change(i)
			for _, e := range envoys {
				e.expect(match)
			}
			start := time.Now()
			write()
			put := time.Since(start)
			puts = append(puts, put)
			for _, e := range envoys {
				d, err := e.wait(start, time.Minute)
				benchutil.Check(err)
				lat = append(lat, d)
				afterPut = append(afterPut, max(d-put, 0))
			}
			if os.Getenv("FLEET_DEBUG") != "" {
				one := lat[len(lat)-len(envoys):]
				fmt.Fprintf(os.Stderr, "%s change %d: write %v, p50 %v, max %v\n", name, i, put, pct(one, 50), pct(one, 100))
			}
		}
		cpu = benchutil.CPUOf(pid) - c0
		if stopProfile != nil {
			stopProfile()
		}
		return lat, puts, afterPut, cpu
	}
	epLat, epPuts, epAfterPut, epCPU := timed("endpoints", *epChanges, func(i int) (func(string, *anypb.Any) bool, func()) {
		k := (i * 37) % *nAPIs
		value := endpointList(k, i+1, *perKey)
		return assignmentAt(clusterOf(k), address(k, i+1)), func() {
			_, err := st.Put(ctx, store.Endpoints+key(k), value)
			benchutil.Check(err)
		}
	})
	apiLat, _, _, apiCPU := timed("apis", *apiChanges, func(i int) (func(string, *anypb.Any) bool, func()) {
		k := (i * 53) % *nAPIs
		doc := store.Doc{Name: fmt.Sprintf("svc%d", k), Version: "v1", Data: definition(k, i)}
		return routeWith(marker(i)), func() {
			_, err := st.PutAPIs(ctx, []store.Doc{doc})
			benchutil.Check(err)
		}
	})
	final := procStatus(pid)

	mode := "state-of-the-world"
	if *delta {
		mode = "delta"
	}
	fmt.Printf("xDS at fleet scale (%s), %d CPUs shared with the simulated fleet: %d Envoys; %d APIs (%d operations), %d EDS clusters, %d endpoints\n",
		mode, runtime.NumCPU(), *nEnvoys, *nAPIs, 4**nAPIs, want.edsClusters, want.edsClusters**perKey)
	fmt.Printf("  every Envoy converged in %v (p50 Envoy %v), server CPU %v (the simulated fleet's %v), %.1f MB of resources sent per Envoy\n",
		converged.Round(10*time.Millisecond), pct(connected, 50).Round(10*time.Millisecond), convergeCPU.Round(10*time.Millisecond), fleetCPU.Round(10*time.Millisecond), float64(received)/float64(*nEnvoys)/1e6)
	fmt.Printf("  server RSS: %d MB with nothing connected → %d MB after convergence → peak %d MB (%.2f MB per Envoy)\n",
		base.rss>>20, after.rss>>20, final.hwm>>20, float64(after.rss-base.rss)/float64(*nEnvoys)/(1<<20))
	fmt.Printf("  endpoint change → each Envoy (%d changes): p50 %v  p99 %v  max %v  (etcd write p50 %v max %v; from the write's return p50 %v p99 %v; server CPU %v per change)\n",
		*epChanges, pct(epLat, 50).Round(100*time.Microsecond), pct(epLat, 99).Round(100*time.Microsecond), pct(epLat, 100).Round(100*time.Microsecond),
		pct(epPuts, 50).Round(100*time.Microsecond), pct(epPuts, 100).Round(100*time.Microsecond),
		pct(epAfterPut, 50).Round(100*time.Microsecond), pct(epAfterPut, 99).Round(100*time.Microsecond),
		(epCPU / time.Duration(max(*epChanges, 1))).Round(100*time.Microsecond))
	fmt.Printf("  API change → each Envoy (%d changes):      p50 %v  p99 %v  max %v  (server CPU %v per change)\n",
		*apiChanges, pct(apiLat, 50).Round(time.Millisecond), pct(apiLat, 99).Round(time.Millisecond), pct(apiLat, 100).Round(time.Millisecond),
		(apiCPU / time.Duration(max(*apiChanges, 1))).Round(time.Millisecond))
	fmt.Printf("  streams ended by an error (a reset, a GOAWAY) during the whole run: %d of %d\n", ended(envoys), *nEnvoys)
	fmt.Printf("  | %d | %s | %v | %d → %d MB | %v | %v |\n", *nEnvoys, mode, converged.Round(100*time.Millisecond), after.rss>>20, final.hwm>>20,
		pct(epLat, 99).Round(time.Millisecond), pct(apiLat, 99).Round(10*time.Millisecond))
	if !*withFloor {
		return
	}

	// The floor: the same fleet against a do-nothing ADS server holding what tollgate
	// served, with tollgate and its fleet gone.
	for _, e := range envoys {
		e.conn.Close()
	}
	benchutil.Stop(server)
	probe.mu.Lock()
	state := probe.capture
	probe.mu.Unlock()
	stateFile := filepath.Join(dir, "floor.state")
	writeState(stateFile, state)
	self, err := os.Executable()
	benchutil.Check(err)
	fAddr, fAdmin := benchutil.Addr(), benchutil.Addr()
	fl := exec.Command(self, "-serve-floor", fAddr, "-floor-admin", fAdmin, "-floor-state", stateFile)
	fl.Stdout, fl.Stderr = out, out
	benchutil.Check(fl.Start())
	defer benchutil.Stop(fl)
	benchutil.WaitTCP(fAddr)
	benchutil.WaitTCP(fAdmin)
	fpid := fl.Process.Pid
	runtime.GC()
	fBase := procStatus(fpid)
	fc0 := benchutil.CPUOf(fpid)
	fleet, _, fConverged := connectFleet(ctx, *nEnvoys, *delta, want, fAddr)
	fConvergeCPU := benchutil.CPUOf(fpid) - fc0
	time.Sleep(time.Second)
	fAfter := procStatus(fpid)
	var fLat []time.Duration
	fc1 := benchutil.CPUOf(fpid)
	for i := range *epChanges {
		k, g := (i*37)%*nAPIs, 100+i
		b, err := proto.Marshal(assignment(clusterOf(k), k, g, *perKey))
		benchutil.Check(err)
		for _, e := range fleet {
			e.expect(assignmentAt(clusterOf(k), address(k, g)))
		}
		start := time.Now()
		resp, err := http.Post("http://"+fAdmin+"/eds", "application/octet-stream", bytes.NewReader(b))
		benchutil.Check(err)
		resp.Body.Close()
		for _, e := range fleet {
			d, err := e.wait(start, time.Minute)
			benchutil.Check(err)
			fLat = append(fLat, d)
		}
	}
	fCPU := benchutil.CPUOf(fpid) - fc1
	fmt.Printf("  the floor, a do-nothing ADS server (its own process, the same configuration, the same fleet): converged in %v (server CPU %v); RSS %d → %d MB (%.2f MB per Envoy); endpoint change → each Envoy p50 %v p99 %v (server CPU %v per change)\n",
		fConverged.Round(10*time.Millisecond), fConvergeCPU.Round(10*time.Millisecond), fBase.rss>>20, fAfter.rss>>20,
		float64(fAfter.rss-fBase.rss)/float64(*nEnvoys)/(1<<20), pct(fLat, 50).Round(100*time.Microsecond), pct(fLat, 99).Round(100*time.Microsecond),
		(fCPU / time.Duration(max(*epChanges, 1))).Round(100*time.Microsecond))
	fmt.Printf("  tollgate ÷ floor: convergence %.2f×, server CPU to converge %.2f×, RSS after convergence %.2f× (per Envoy %.2f×), endpoint change p50 %.2f× p99 %.2f× (tollgate's from the etcd write, the floor's from its trigger), server CPU per endpoint change %.2f×\n",
		converged.Seconds()/fConverged.Seconds(), convergeCPU.Seconds()/fConvergeCPU.Seconds(), float64(after.rss)/float64(fAfter.rss),
		float64(after.rss-base.rss)/float64(max(fAfter.rss-fBase.rss, 1)),
		pct(epLat, 50).Seconds()/pct(fLat, 50).Seconds(), pct(epLat, 99).Seconds()/pct(fLat, 99).Seconds(), epCPU.Seconds()/fCPU.Seconds())
}

// ended is how many of the envoys' streams ended by an error.
func ended(envoys []*envoy) int {
	n := 0
	for _, e := range envoys {
		e.mu.Lock()
		if e.err != nil {
			n++
		}
		e.mu.Unlock()
	}
	return n
}

// load writes n APIs and their endpoints to etcd.
func load(ctx context.Context, st *store.Store, n, perKey int) {
	docs := make([]store.Doc, n)
	for i := range docs {
		docs[i] = store.Doc{Name: fmt.Sprintf("svc%d", i), Version: "v1", Data: definition(i, -1)}
	}
	for i := 0; i < len(docs); i += 100 {
		_, err := st.PutAPIs(ctx, docs[i:min(i+100, len(docs))])
		benchutil.Check(err)
	}
	for i := range n {
		_, err := st.Put(ctx, store.Endpoints+key(i), endpointList(i, 0, perKey))
		benchutil.Check(err)
	}
}

// runProbe connects one Envoy first, to learn what a converged Envoy holds once the server
// has built it all (and, from the addresses, which cluster serves which API).
func runProbe(ctx context.Context, nAPIs int, delta bool, xdsAddr string) (*envoy, counts) {
	probe := newEnvoy(-1, delta, counts{edsClusters: nAPIs, listeners: 1, routes: 1})
	probe.firstAddress = map[string]string{}
	probe.capture = captured{}
	benchutil.Check(probe.start(ctx, xdsAddr))
	select {
	case <-probe.ready:
	case <-time.After(time.Duration(envInt("FLEET_PROBE_WAIT", 120)) * time.Second):
		p2 := newEnvoy(-2, delta, counts{edsClusters: nAPIs, listeners: 1, routes: 1})
		benchutil.Check(p2.start(ctx, xdsAddr))
		time.Sleep(3 * time.Second)
		fmt.Fprintln(os.Stderr, "second probe", p2.counts())
		benchutil.Check(fmt.Errorf("the control plane did not serve %d clusters in 2 minutes (probe: %+v, error %v)", nAPIs, probe.counts(), probe.err))
	}
	// The endpoint writes may still be arriving: wait until the probe holds every API's
	// first addresses.
	for deadline := time.Now().Add(2 * time.Minute); probe.firstAddresses() < nAPIs; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			benchutil.Check(fmt.Errorf("the probe holds %d of %d assignments", probe.firstAddresses(), nAPIs))
		}
	}
	for name, addr := range probe.firstAddress {
		var g, a, b int
		if _, err := fmt.Sscanf(addr, "10.%d.%d.%d", &g, &a, &b); err == nil {
			clusterNames[a*250+b] = name
		}
	}
	return probe, probe.counts()
}

// firstAddresses is how many assignments of the first generation the probe holds.
func (e *envoy) firstAddresses() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, addr := range e.firstAddress {
		if strings.HasPrefix(addr, "10.0.") {
			n++
		}
	}
	return n
}

// assignment is cluster's assignment with key i's endpoints of generation g.
func assignment(cluster string, i, g, n int) *endpointv3.ClusterLoadAssignment {
	var lbs []*endpointv3.LbEndpoint
	for j := range n {
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: address(i, g), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(8000 + j)}}}}}}})
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: cluster, Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}}
}

var profileSeconds *int

// connectFleet connects n Envoys at once and waits until each holds want.
func connectFleet(ctx context.Context, n int, delta bool, want counts, addr string) (envoys []*envoy, connected []time.Duration, converged time.Duration) {
	envoys = make([]*envoy, n)
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range envoys {
		envoys[i] = newEnvoy(i, delta, want)
		wg.Go(func() { benchutil.Check(envoys[i].start(ctx, addr)) })
	}
	wg.Wait()
	for _, e := range envoys {
		select {
		case <-e.ready:
			connected = append(connected, time.Since(t0))
		case <-time.After(5 * time.Minute):
			benchutil.Check(fmt.Errorf("envoy %d did not converge (holds %+v of %+v; error %v)", e.id, e.counts(), want, e.err))
		}
	}
	return envoys, connected, time.Since(t0)
}

// definition is API i's document; change ≥ 0 adds a path that carries marker(change).
func definition(i, change int) []byte {
	extra := ""
	if change >= 0 {
		extra = fmt.Sprintf("  /%s: {get: {responses: {\"200\": {description: ok}}}}\n", marker(change))
	}
	return []byte(fmt.Sprintf(`openapi: 3.0.3
info: {title: svc%d, version: v1}
x-tollgate-production-endpoints: ["etcd(%s, http://127.0.0.1:%d)"]
paths:
  /items/{id}: {get: {responses: {"200": {description: ok}}}, put: {responses: {"200": {description: ok}}}}
  /items: {get: {responses: {"200": {description: ok}}}, post: {responses: {"201": {description: ok}}}}
%s`, i, key(i), 10000+i, extra))
}

func marker(change int) string { return fmt.Sprintf("fleetchange%d", change) }

func key(i int) string { return fmt.Sprintf("svc%d", i) }

// clusterNames are the EDS clusters of each API's discovered backend, learnt by the probe
// from the addresses it was sent.
var clusterNames = map[int]string{}

func clusterOf(i int) string { return clusterNames[i] }

// address is the first address of key i's endpoints in generation g.
func address(i, g int) string { return fmt.Sprintf("10.%d.%d.%d", g%250, i/250, i%250) }

// endpointList is the value of endpoints/svc<i>: n addresses, generation g.
func endpointList(i, g, n int) string {
	parts := make([]string, n)
	for j := range n {
		parts[j] = fmt.Sprintf(`"http://%s:%d"`, address(i, g), 8000+j)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

type status struct{ rss, hwm int64 }

// procStatus reads a process's resident and peak resident memory from /proc.
func procStatus(pid int) status {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	benchutil.Check(err)
	var s status
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			s.rss = kb << 10
		case "VmHWM:":
			s.hwm = kb << 10
		}
	}
	return s
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, len(s)*p/100)]
}

// cpuProfile profiles the server for the first profileSeconds of a phase; the returned
// func waits for the profile.
func cpuProfile(admin, file string) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		benchutil.Fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, *profileSeconds), file)
	}()
	return func() { <-done }
}

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return d
}
