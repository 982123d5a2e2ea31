package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tu "github.com/tollgate-gw/tollgate/internal/testutil"
)

// fakeAPI is a Kubernetes API server for one namespace's Services and EndpointSlices, over
// real HTTP: lists, and watches that stream the changes Set makes (the Kubernetes API is
// what we do not control, so it is the one thing faked).
type fakeAPI struct {
	mu       sync.Mutex
	rv       int
	services []corev1.Service
	slices   []discoveryv1.EndpointSlice
	watchers map[string][]chan []byte // resource → open watches
	history  []event                  // every change, for a watch that resumes from a version
	srv      *http.Server
	addr     string
}

type event struct {
	rv       int
	resource string
	data     []byte
}

func newFakeAPI(t *testing.T, addr string) *fakeAPI {
	f := &fakeAPI{watchers: map[string][]chan []byte{}, addr: addr}
	f.start(t)
	return f
}

func (f *fakeAPI) start(t *testing.T) {
	var lis net.Listener
	var err error
	for range 50 { // the port may still be closing after a stop
		if lis, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve)}
	go f.srv.Serve(lis)
}

// stop takes the API server away: connections and watches close.
func (f *fakeAPI) stop() {
	f.srv.Close()
	f.mu.Lock()
	for r, ws := range f.watchers {
		for _, w := range ws {
			close(w)
		}
		delete(f.watchers, r)
	}
	f.mu.Unlock()
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	resource := "services"
	if strings.Contains(r.URL.Path, "endpointslices") {
		resource = "endpointslices"
	}
	if r.URL.Query().Get("watch") == "true" {
		if r.URL.Query().Get("sendInitialEvents") == "true" {
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"BadRequest","code":400}`, http.StatusBadRequest)
			return
		}
		f.watch(w, r, resource)
		return
	}
	f.mu.Lock()
	var body []byte
	if resource == "services" {
		body, _ = json.Marshal(corev1.ServiceList{TypeMeta: metav1.TypeMeta{Kind: "ServiceList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: fmt.Sprint(f.rv)}, Items: f.services})
	} else {
		body, _ = json.Marshal(discoveryv1.EndpointSliceList{TypeMeta: metav1.TypeMeta{Kind: "EndpointSliceList", APIVersion: "discovery.k8s.io/v1"}, ListMeta: metav1.ListMeta{ResourceVersion: fmt.Sprint(f.rv)}, Items: f.slices})
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (f *fakeAPI) watch(w http.ResponseWriter, r *http.Request, resource string) {
	ch := make(chan []byte, 64)
	since, _ := strconv.Atoi(r.URL.Query().Get("resourceVersion"))
	f.mu.Lock()
	for _, ev := range f.history { // what happened since the version the watch resumes from
		if ev.resource == resource && ev.rv > since {
			ch <- ev.data
		}
	}
	f.watchers[resource] = append(f.watchers[resource], ch)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			w.Write(append(ev, '\n'))
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// setSlice replaces (or adds) an EndpointSlice and tells the watches.
func (f *fakeAPI) setSlice(s discoveryv1.EndpointSlice) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rv++
	s.ResourceVersion = fmt.Sprint(f.rv)
	s.TypeMeta = metav1.TypeMeta{Kind: "EndpointSlice", APIVersion: "discovery.k8s.io/v1"}
	kind := "ADDED"
	for i := range f.slices {
		if f.slices[i].Name == s.Name {
			f.slices[i], kind = s, "MODIFIED"
		}
	}
	if kind == "ADDED" {
		f.slices = append(f.slices, s)
	}
	ev, _ := json.Marshal(map[string]any{"type": kind, "object": s})
	f.history = append(f.history, event{f.rv, "endpointslices", ev})
	for _, w := range f.watchers["endpointslices"] {
		w <- ev
	}
}

func (f *fakeAPI) addService(s corev1.Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rv++
	s.ResourceVersion = fmt.Sprint(f.rv)
	s.TypeMeta = metav1.TypeMeta{Kind: "Service", APIVersion: "v1"}
	f.services = append(f.services, s)
}

func webSlice(addrs ...string) discoveryv1.EndpointSlice {
	port, name := int32(8080), "http"
	s := discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "web-a", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
	}
	for _, a := range addrs {
		ready := true
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return s
}

// `tollgate run` with kubernetes.discovery: an API whose backend is k8s://shop/web:80 gets
// the Service's ready addresses over EDS, follows a scale-up, and keeps the addresses while
// the API server is away, following it again when it is back.
func TestKubernetesServicesOverTheBinary(t *testing.T) {
	dir := t.TempDir()
	p := newPorts(t)
	api := newFakeAPI(t, tu.FreeAddr(t))
	api.addService(corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	api.setSlice(webSlice("10.1.0.1"))
	kubeconfig := write(t, dir, "kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://%s"}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
users: [{name: fake, user: {}}]
`, api.addr))
	cfg := serverConfig(t, dir, "run.yaml", p, "")
	appendTo(t, cfg, fmt.Sprintf("kubernetes: {discovery: true, kubeconfig: %s}\n", kubeconfig))
	def := write(t, dir, "shop.yaml", `openapi: 3.0.3
info: {title: Shop, version: v1}
security: [{}]
x-tollgate-production-endpoints: {urls: ["k8s://shop/web:80"]}
paths:
  /items: {get: {responses: {"200": {description: ok}}}}
`)
	if o := tollgate(t, "validate", "-f", def); o.code != 0 {
		t.Fatalf("validate: %s", o.stderr)
	}
	srv := startTollgate(t, "run", "--config", cfg, "-f", def)
	srv.waitUp()
	waitReady(t, "http://"+p.admin+"/readyz")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := connectEnvoy(t, ctx, p.xds, "kube")
	has := func(addrs ...string) func(config) bool {
		return func(c config) bool {
			var got []string
			for _, a := range c.Addresses {
				if strings.Contains(a, "k8s___shop_web_80") {
					got = append(got, strings.Fields(a)[1])
				}
			}
			return strings.Join(got, " ") == strings.Join(addrs, " ")
		}
	}
	e.waitFor("the Service's address", 20*time.Second, has("10.1.0.1:8080"))
	api.setSlice(webSlice("10.1.0.1", "10.1.0.2"))
	e.waitFor("the scale-up", 5*time.Second, has("10.1.0.1:8080", "10.1.0.2:8080"))

	// The API server goes away: the addresses stay; it comes back with a change.
	api.stop()
	api.setSlice(webSlice("10.1.0.3")) // a change while nobody can watch
	time.Sleep(time.Second)
	if !has("10.1.0.1:8080", "10.1.0.2:8080")(e.config()) {
		t.Fatalf("the addresses changed while the API server was away: %v", e.config().Addresses)
	}
	api.start(t)
	e.waitFor("the addresses after the API server is back", 30*time.Second, has("10.1.0.3:8080"))
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
