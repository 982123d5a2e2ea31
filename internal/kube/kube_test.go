package kube

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
)

func ptr[T any](v T) *T { return &v }

func service(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
}

type ep struct {
	addr               string
	ready, terminating bool
}

func slice(ns, svc, name string, family discoveryv1.AddressType, portName string, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: family,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(portName), Port: ptr(port)}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(e.ready), Terminating: ptr(e.terminating)}})
	}
	return s
}

func TestParseKey(t *testing.T) {
	for s, ok := range map[string]bool{
		"k8s://shop/web:80": true, "k8s://shop/web:http": true, "k8s://shop-1/web-api:8443": true,
		"k8s://shop/web": false, "k8s://Shop/web:80": false, "k8s://shop/web:0": false, "k8s://shop/web:99999": false,
		"k8s:///web:80": false, "etcd://shop/web:80": false, "k8s://shop/web:a_b": false,
	} {
		k, err := ParseKey(s)
		if (err == nil) != ok || ok && k.String() != s {
			t.Errorf("%s: %v %v", s, k, err)
		}
	}
}

func TestValue(t *testing.T) {
	svc := service("shop", "web", corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "admin", Port: 9000})
	slices := []*discoveryv1.EndpointSlice{
		slice("shop", "web", "web-a", discoveryv1.AddressTypeIPv4, "http", 8080,
			ep{"10.0.0.2", true, false}, ep{"10.0.0.1", true, false}, ep{"10.0.0.3", false, false}, ep{"10.0.0.4", true, true}),
		slice("shop", "web", "web-b", discoveryv1.AddressTypeIPv6, "http", 8080, ep{"fd00::1", true, false}),
		slice("shop", "web", "web-c", discoveryv1.AddressTypeFQDN, "http", 8080, ep{"web.example.com", true, false}),
		slice("shop", "web", "web-d", discoveryv1.AddressTypeIPv4, "admin", 9001, ep{"10.0.0.9", true, false}),
	}
	want := `["http://10.0.0.1:8080","http://10.0.0.2:8080","http://[fd00::1]:8080"]`
	for _, key := range []string{"k8s://shop/web:80", "k8s://shop/web:http"} {
		k, _ := ParseKey(key)
		if got := Value(k, svc, slices); got != want {
			t.Errorf("%s: %s, want %s (ready only, terminating drained, both families, no FQDN)", key, got, want)
		}
	}
	admin, _ := ParseKey("k8s://shop/web:9000")
	if got := Value(admin, svc, slices); got != `["http://10.0.0.9:9001"]` {
		t.Errorf("by the Service's port number, the target port: %s", got)
	}
	none, _ := ParseKey("k8s://shop/web:81")
	if got := Value(none, svc, slices); got != "[]" {
		t.Errorf("a port the Service does not have: %s", got)
	}
	if got := Value(admin, nil, slices); got != "[]" {
		t.Errorf("no Service: %s", got)
	}
}

// The watcher against client-go's fake clientset: each change reaches onChange at once,
// and nothing is reported when nothing a key depends on changed.
func TestWatcher(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(
		service("shop", "web", corev1.ServicePort{Name: "http", Port: 80}),
		slice("shop", "web", "web-a", discoveryv1.AddressTypeIPv4, "http", 8080, ep{"10.0.0.1", true, false}),
	)
	changes := make(chan [2]string, 16)
	w := NewWatcher(client, func(k, v string) { changes <- [2]string{k, v} })
	k, _ := ParseKey("k8s://shop/web:80")
	w.SetKeys([]Key{k})
	go w.Run(ctx)
	expect := func(what, want string) {
		t.Helper()
		select {
		case c := <-changes:
			if c[0] != "k8s://shop/web:80" || c[1] != want {
				t.Fatalf("%s: %v, want %s", what, c, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: nothing reported", what)
		}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case c := <-changes:
			t.Fatalf("%s: %v reported, though the key's value did not change", what, c)
		case <-time.After(200 * time.Millisecond):
		}
	}
	expect("the first sync", `["http://10.0.0.1:8080"]`)
	slices := client.DiscoveryV1().EndpointSlices("shop")
	start := time.Now()
	if _, err := slices.Update(ctx, slice("shop", "web", "web-a", discoveryv1.AddressTypeIPv4, "http", 8080, ep{"10.0.0.1", true, false}, ep{"10.0.0.2", true, false}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("scaled up", `["http://10.0.0.1:8080","http://10.0.0.2:8080"]`)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("the change took %v to arrive", d)
	}
	if _, err := slices.Update(ctx, slice("shop", "web", "web-a", discoveryv1.AddressTypeIPv4, "http", 8080, ep{"10.0.0.1", true, false}, ep{"10.0.0.2", false, false}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("readiness flipped", `["http://10.0.0.1:8080"]`)
	// Another Service's slice, and a change that leaves the addresses as they were.
	if _, err := slices.Create(ctx, slice("shop", "db", "db-a", discoveryv1.AddressTypeIPv4, "", 5432, ep{"10.0.1.1", true, false}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	same := slice("shop", "web", "web-a", discoveryv1.AddressTypeIPv4, "http", 8080, ep{"10.0.0.1", true, false}, ep{"10.0.0.2", false, false})
	same.Labels["team"] = "shop"
	if _, err := slices.Update(ctx, same, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	quiet("unrelated changes")
	if _, err := slices.Create(ctx, slice("shop", "web", "web-b", discoveryv1.AddressTypeIPv6, "http", 8080, ep{"fd00::7", true, false}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("a slice added", `["http://10.0.0.1:8080","http://[fd00::7]:8080"]`)
	if err := slices.Delete(ctx, "web-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("a slice removed", `["http://10.0.0.1:8080"]`)
	if err := client.CoreV1().Services("shop").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("the Service deleted", `[]`)
	// A key added later, in another namespace.
	other, _ := ParseKey("k8s://pay/api:http")
	if _, err := client.CoreV1().Services("pay").Create(ctx, service("pay", "api", corev1.ServicePort{Name: "http", Port: 80}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DiscoveryV1().EndpointSlices("pay").Create(ctx, slice("pay", "api", "api-a", discoveryv1.AddressTypeIPv4, "http", 8443, ep{"10.0.2.1", true, false}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.SetKeys([]Key{k, other})
	select {
	case c := <-changes:
		if c[0] != "k8s://pay/api:http" || !strings.Contains(c[1], "10.0.2.1:8443") {
			t.Fatalf("the new key: %v", c)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the key added later is not followed")
	}
}

// A control plane started while the API server is away serves the addresses it last knew,
// from its local copy, and says so.
func TestLocalCopy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kubernetes.json")
	ctx, cancel := context.WithCancel(context.Background())
	client := fake.NewClientset(
		service("shop", "web", corev1.ServicePort{Name: "http", Port: 80}),
		slice("shop", "web", "web-a", discoveryv1.AddressTypeIPv4, "http", 8080, ep{"10.0.0.1", true, false}),
	)
	changes := make(chan string, 4)
	w := NewWatcher(client, func(_, v string) { changes <- v })
	w.KeepCopy(file)
	k, _ := ParseKey("k8s://shop/web:80")
	w.SetKeys([]Key{k})
	stopped := make(chan struct{})
	go func() { w.Run(ctx); close(stopped) }()
	if v := <-changes; v != `["http://10.0.0.1:8080"]` {
		t.Fatalf("first value %s", v)
	}
	cancel()
	<-stopped

	// Restarted with the API server unreachable.
	away, err := kubernetes.NewForConfig(&rest.Config{Host: "http://127.0.0.1:1", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	got := make(chan [2]string, 4)
	w2 := NewWatcher(away, func(k, v string) { got <- [2]string{k, v} })
	w2.KeepCopy(file)
	w2.SetKeys([]Key{k})
	go w2.Run(ctx2)
	select {
	case c := <-got:
		if c[0] != "k8s://shop/web:80" || c[1] != `["http://10.0.0.1:8080"]` {
			t.Fatalf("from the copy: %v", c)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("nothing served from the local copy")
	}
	time.Sleep(300 * time.Millisecond)
	if w2.Synced() || !w2.FromCopy() {
		t.Errorf("synced %v, from the copy %v: want not synced, from the copy", w2.Synced(), w2.FromCopy())
	}
}
