// Command backend is the examples' backend: one small HTTP server on every port the example
// definitions name (127.0.0.1:8081-8087), answering any path with JSON that echoes the
// request — method, path, query, the headers it received, the port — so a user sees what
// the gateway sent: the claim headers, what was removed, the rewritten path.
//
//	go run ./examples/backend                     # the examples' ports
//	go run ./examples/backend -listen :9000,:9001 # others
//
// A request may ask for trouble, to try timeouts, retries and outlier detection:
// ?status=503 answers that status, ?delay=2s waits first (at most 60 s). GET /healthz answers
// 200 on every port (the health path of a definition's healthCheck).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ports are where the example definitions send requests: coffeebar (8081 production, 8082
// sandbox), the starter API of `tollgate init` (8083), petstore (8084, 8085) and the online
// store (8086, and 8087 for its search service until etcd names another address), and the
// bookshelf (8088).
const Ports = "127.0.0.1:8081,127.0.0.1:8082,127.0.0.1:8083,127.0.0.1:8084,127.0.0.1:8085,127.0.0.1:8086,127.0.0.1:8087,127.0.0.1:8088"

// Echo is the answer's body.
type Echo struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   map[string][]string `json:"query,omitempty"`
	Headers map[string]string   `json:"headers"`
	Host    string              `json:"host"`
	Port    string              `json:"port"`
	Body    int64               `json:"bodyBytes"`
}

const maxDelay = time.Minute

func handler(port string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok\n"))
			return
		}
		q := r.URL.Query()
		status := http.StatusOK
		if s := q.Get("status"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 200 || n > 599 {
				http.Error(w, "status must be 200-599", http.StatusBadRequest)
				return
			}
			status = n
		}
		if d := q.Get("delay"); d != "" {
			wait, err := time.ParseDuration(d)
			if err != nil || wait < 0 || wait > maxDelay {
				http.Error(w, "delay must be a duration up to 60s, like 250ms", http.StatusBadRequest)
				return
			}
			select {
			case <-time.After(wait):
			case <-r.Context().Done():
				return
			}
		}
		n, _ := discard(r)
		e := Echo{Method: r.Method, Path: r.URL.EscapedPath(), Headers: map[string]string{}, Host: r.Host, Port: port, Body: n}
		if len(q) > 0 {
			e.Query = q
		}
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			e.Headers[strings.ToLower(k)] = strings.Join(r.Header[k], ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(e)
	})
}

func discard(r *http.Request) (int64, error) {
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, err := r.Body.Read(buf)
		n += int64(m)
		if err != nil {
			return n, nil
		}
		if n > 64<<20 {
			return n, fmt.Errorf("body too large")
		}
	}
}

func main() {
	listen := flag.String("listen", Ports, "comma-separated addresses to serve on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	var servers []*http.Server
	for _, addr := range strings.Split(*listen, ",") {
		lis, err := net.Listen("tcp", strings.TrimSpace(addr))
		if err != nil {
			// Another program has the port: serve the others.
			log.Printf("backend: %v (skipped)", err)
			continue
		}
		_, port, _ := net.SplitHostPort(lis.Addr().String())
		srv := &http.Server{Handler: handler(port), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		wg.Go(func() { srv.Serve(lis) })
		fmt.Printf("backend: listening on %s\n", lis.Addr())
	}
	if len(servers) == 0 {
		log.Fatal("backend: no address to serve on")
	}
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(shut)
	}
	wg.Wait()
}
