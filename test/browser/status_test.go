// Package browser tests the admin port's status page in a real browser: Debian's headless
// Chromium, driven over the DevTools protocol by chromedp, against the built binary run as
// the README runs it. It is a module of its own so that chromedp stays out of the
// product's module.
package browser

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-gw/tollgate/internal/testutil"
)

// chromium is Debian's browser (make deps installs it); the test fails without it.
const chromium = "/usr/bin/chromium"

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tollgate-browser")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "tollgate")
	build := exec.Command("go", "build", "-o", binary, "./cmd/tollgate")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building tollgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tollgate runs a command of the binary to its end.
func tollgate(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tollgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// serve starts `tollgate run --config cfg` and waits until /readyz says ready.
func serve(t *testing.T, cfg, admin string) {
	t.Helper()
	cmd := exec.Command(binary, "run", "--config", cfg)
	log, err := os.Create(filepath.Join(t.TempDir(), "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	eventually(t, "tollgate run is ready", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// answer opens an ADS stream as node id, takes the first listener response and refuses
// it with msg, or ACKs it when msg is "".
func answer(t *testing.T, ctx context.Context, addr, id, msg string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: id, Cluster: "default", UserAgentName: "envoy"}
	st.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType})
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	next := &discoveryv3.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: resp.Nonce, VersionInfo: resp.VersionInfo}
	if msg != "" {
		next.VersionInfo, next.ErrorDetail = "", &rpcstatus.Status{Code: 3, Message: msg}
	}
	st.Send(next)
}

// browser is a headless Chromium tab that records what its console reports as errors:
// console.error calls, uncaught exceptions, and error entries of the browser log (failed
// loads, Content-Security-Policy violations).
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s: %v (make deps installs Debian's chromium)", chromium, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errors = append(b.errors, m.String()+" "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	// The recorder hears errors: a page that logs one is seen to.
	b.run(t, chromedp.Navigate(`data:text/html,<script>console.error("probe")</script>`))
	eventually(t, "the console probe", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.errors) == 1 && strings.Contains(b.errors[0], "probe")
	})
	b.mu.Lock()
	b.errors = nil
	b.mu.Unlock()
	return b
}

// run runs one action, for at most 30 s.
func run[T any](t *testing.T, b *browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (b *browser) run(t *testing.T, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	run(t, b, a)
}

// open loads url and returns the page's text.
func (b *browser) open(t *testing.T, url string) string {
	t.Helper()
	b.run(t, chromedp.Steps(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("apis"))))
	return run(t, b, chromedp.Text(chromedp.CSS("body")))
}

func (b *browser) noErrors(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(b.errors, "\n"))
	}
}

// eventually retries cond every 300 ms for 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The status page as an operator opens it: a just-applied API with its operations, a
// discovery key's live addresses following an endpoint move, and an Envoy's NACK with its
// error — in headless Chromium, with no console error. With TOLLGATE_SCREENSHOT set, the
// page is saved there as a PNG (make screenshot: the README's picture).
func TestStatusPageInABrowser(t *testing.T) {
	dir := t.TempDir()
	admin, xds := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cfg := filepath.Join(dir, "tollgate.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`dataDir: %s
etcd: {embeddedClientAddr: %s, embeddedPeerAddr: %s}
authz: {listen: %s}
xds: {listen: %s}
admin: {listen: %s}
`, filepath.Join(dir, "data"), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), xds, admin)), 0o600); err != nil {
		t.Fatal(err)
	}
	serve(t, cfg, admin)
	store, _ := filepath.Abs("../../examples/online-store/online-store.yaml")
	coffee, _ := filepath.Abs("../../examples/coffeebar/coffeebar.yaml")
	tollgate(t, "apply", "--config", cfg, "-f", store, "-f", coffee)
	tollgate(t, "endpoints", "set", "--config", cfg, "searchItem_etcd_key", "http://127.0.0.1:9186/search")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	answer(t, ctx, xds, "envoy-edge-3", "")
	answer(t, ctx, xds, "envoy-edge-7", "Error adding/updating listener(s) http: unknown filter")

	b := newBrowser(t)
	url := "http://" + admin + "/status"
	var text string
	eventually(t, "the page shows the API, the key and the NACK", func() bool {
		text = b.open(t, url)
		return strings.Contains(text, "online-store/v1") && strings.Contains(text, "127.0.0.1:9186") && strings.Contains(text, "NACK")
	})
	for _, want := range []string{"GET /searchItem", "coffeebar/v1", "oauth2[read:menu]", "searchItem_etcd_key",
		"envoy-edge-3", "ACK", "envoy-edge-7", "unknown filter", "ready", "revocations in force"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if shot := os.Getenv("TOLLGATE_SCREENSHOT"); shot != "" {
		png := run(t, b, chromedp.FullScreenshot(100))
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The endpoint moves: the page follows.
	tollgate(t, "endpoints", "set", "--config", cfg, "searchItem_etcd_key", "http://127.0.0.1:9187/search")
	eventually(t, "the page shows the moved endpoint", func() bool {
		text = b.open(t, url)
		return strings.Contains(text, "127.0.0.1:9187") && !strings.Contains(text, "127.0.0.1:9186")
	})
	// The page says what its JSON says.
	b.run(t, chromedp.Navigate(url+".json"))
	raw := run(t, b, chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(raw, `"node": "envoy-edge-7"`) || !strings.Contains(raw, `"127.0.0.1:9187"`) {
		t.Errorf("/status.json: %.400s", raw)
	}
	b.noErrors(t)
}
