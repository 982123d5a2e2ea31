// Command definitions measures what large API descriptions cost, over the built binary:
// `tollgate validate` of generated 1 MB and 5 MB YAML descriptions (1,000 operations at
// 5 MB; wall time and peak RSS, median of runs), and a running gateway (`tollgate run`,
// embedded etcd) taking one by `tollgate apply`: the time until the enforcer holds it, and
// what the process holds for it afterwards (RSS, and the Go heap in use after a GC), per MB
// of description. It prints its numbers; it is a measurement, not a test.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate-gw/tollgate/internal/testutil"
	"github.com/tollgate-gw/tollgate/test/bench/internal/benchutil"
)

func main() {
	runs := flag.Int("runs", 3, "validations of each document (the median is printed)")
	keep := flag.Bool("keep", false, "keep the working directory")
	flag.Parse()
	dir, cleanup := benchutil.WorkDir("definitions", *keep)
	defer cleanup()
	bin := benchutil.Binary(dir)

	fmt.Println("definitions: generated OpenAPI 3.0 YAML, schemas and prose as in large real descriptions")
	fmt.Printf("%-10s %10s %6s %14s %12s %14s %16s %18s\n", "document", "bytes", "ops", "validate", "validate RSS", "apply→enforcer", "gateway RSS/MB", "gateway heap/MB")
	for _, c := range []struct {
		name string
		mb   float64
		ops  int
	}{{"1 MB", 1, 200}, {"5 MB", 5, 1000}} {
		file := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "")+".yaml")
		data := yamlOfSize(c.name, c.ops, int(c.mb*1e6))
		benchutil.Check(os.WriteFile(file, data, 0o644))
		var walls []time.Duration
		var rss int64
		for i := 0; i < *runs; i++ {
			cmd := exec.Command(bin, "validate", "-f", file)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				benchutil.Check(fmt.Errorf("validate %s: %v\n%s", c.name, err, out))
			}
			walls = append(walls, time.Since(start))
			rss = max(rss, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss<<10)
		}
		sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
		load, rssPerMB, heapPerMB := gateway(bin, dir, file, float64(len(data))/1e6)
		fmt.Printf("%-10s %10d %6d %14v %10.0f MB %14v %13.1f MB %15.1f MB\n", c.name, len(data), c.ops,
			walls[len(walls)/2].Round(time.Millisecond), float64(rss)/1e6, load.Round(time.Millisecond), rssPerMB, heapPerMB)
	}
	fmt.Println("targets: 5 MB YAML validated in < 1.5 s; a running gateway holds < 10 MB per MB of description")
}

// yamlOfSize is a generated description of about size bytes of YAML.
func yamlOfSize(name string, ops, size int) []byte {
	guess := size * 8 / 10 // YAML is about a quarter longer than the JSON the generator sizes
	y := testutil.BigAPIYAML(strings.ReplaceAll(name, " ", ""), ops, guess, "http://127.0.0.1:9")
	return testutil.BigAPIYAML(strings.ReplaceAll(name, " ", ""), ops, guess*size/len(y), "http://127.0.0.1:9")
}

// gateway starts `tollgate run` with no APIs, applies file, and returns the time from the
// apply to the enforcer holding the API, and the RSS and heap (after a GC) the process
// holds for it, per MB of description.
func gateway(bin, dir, file string, mb float64) (time.Duration, float64, float64) {
	cfg := filepath.Join(dir, "tollgate.yaml")
	var srv benchutil.Server
	benchutil.WriteConfig(cfg, filepath.Join(dir, "data-"+filepath.Base(file)), "", &srv, "")
	admin := srv.Admin
	run := exec.Command(bin, "run", "--config", cfg)
	stdout, err := run.StdoutPipe()
	benchutil.Check(err)
	benchutil.Check(run.Start())
	defer benchutil.Stop(run)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "Tollgate is up") {
	}
	go io.Copy(io.Discard, stdout)
	time.Sleep(2 * time.Second)
	rss0, heap0 := held(run.Process.Pid, admin)

	start := time.Now()
	if out, err := exec.Command(bin, "apply", "--config", cfg, "-f", file).CombinedOutput(); err != nil {
		benchutil.Check(fmt.Errorf("apply: %v\n%s", err, out))
	}
	for metric(admin, "tollgate_apis") != 1 {
		if time.Since(start) > time.Minute {
			benchutil.Check(fmt.Errorf("the gateway did not take %s in a minute", file))
		}
		time.Sleep(5 * time.Millisecond)
	}
	load := time.Since(start)
	time.Sleep(5 * time.Second) // the control plane builds and publishes after the catalogue
	rss1, heap1 := held(run.Process.Pid, admin)
	return load, float64(rss1-rss0) / 1e6 / mb, float64(heap1-heap0) / 1e6 / mb
}

// held is a process's RSS and its Go heap in use after a collection (asked of pprof).
func held(pid int, admin string) (int64, int64) {
	resp, err := http.Get("http://" + admin + "/debug/pprof/heap?gc=1")
	benchutil.Check(err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	heap := int64(metric(admin, "go_memstats_heap_inuse_bytes"))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	benchutil.Check(err)
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10, heap
}

// metric reads one unlabelled metric from the admin port (-1 when it is not there).
func metric(admin, name string) float64 {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}
