package kube

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/tollgate-gw/tollgate/internal/atomicfile"
)

// Watcher follows the Services and EndpointSlices of the keys it is given, one informer
// pair per namespace, and reports a key's value each time it changes — never when it does
// not. Informers list, then watch; when the API server is away they retry, and what they
// hold (and so every key's value) stays as it was until it is back.
type Watcher struct {
	client   kubernetes.Interface
	onChange func(key, value string)

	mu     sync.Mutex
	keys   map[Key]bool
	last   map[Key]string
	spaces map[string]*namespace
	ctx    context.Context

	// copyFile, when set, keeps every key's last value, so that a control plane started
	// while the API server is away serves the addresses it last knew.
	copyFile string
	fromCopy bool
	stopped  bool // Run has returned: nothing is reported or written any more
}

// KeepCopy keeps the keys' last values in file (call it before Run). A copy read at start
// is reported to onChange at once; FromCopy then says so until the informers have synced.
func (w *Watcher) KeepCopy(file string) { w.copyFile = file }

// FromCopy reports whether the values served came from the local copy (the API server not
// listed yet since the start).
func (w *Watcher) FromCopy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fromCopy && !w.syncedLocked()
}

// loadCopy reports the copy's values; w.mu is held.
func (w *Watcher) loadCopy() {
	b, err := os.ReadFile(w.copyFile)
	if err != nil {
		return
	}
	var saved map[string]string
	if json.Unmarshal(b, &saved) != nil {
		return
	}
	for key, v := range saved {
		k, err := ParseKey(key)
		if err != nil {
			continue
		}
		w.last[k] = v
		w.fromCopy = true
		w.onChange(key, v)
	}
}

// saveCopy writes every key's last value; w.mu is held.
func (w *Watcher) saveCopy() {
	if w.copyFile == "" {
		return
	}
	saved := make(map[string]string, len(w.last))
	for k, v := range w.last {
		saved[k.String()] = v
	}
	b, _ := json.Marshal(saved)
	_ = atomicfile.Write(w.copyFile, b) // a copy that cannot be written is only a copy less
}

type namespace struct {
	services informers.SharedInformerFactory
	cancel   context.CancelFunc
	synced   bool
}

// NewWatcher makes a watcher; onChange gets each key (as written) and its new value.
func NewWatcher(client kubernetes.Interface, onChange func(key, value string)) *Watcher {
	return &Watcher{client: client, onChange: onChange, keys: map[Key]bool{}, last: map[Key]string{}, spaces: map[string]*namespace{}}
}

// Run starts following; it returns when ctx ends. Keys set before or after start are followed.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	w.ctx = ctx
	if w.copyFile != "" {
		w.loadCopy()
	}
	for k := range w.keys {
		w.watchNamespace(k.Namespace)
	}
	w.mu.Unlock()
	<-ctx.Done()
	w.mu.Lock()
	w.stopped = true
	for _, ns := range w.spaces {
		ns.cancel()
	}
	w.mu.Unlock()
	return nil
}

// SetKeys replaces the keys followed (the catalogue's k8s:// endpoints).
func (w *Watcher) SetKeys(keys []Key) {
	w.mu.Lock()
	defer w.mu.Unlock()
	next := map[Key]bool{}
	for _, k := range keys {
		next[k] = true
	}
	for k := range w.last {
		if !next[k] {
			delete(w.last, k)
		}
	}
	w.keys = next
	if w.ctx == nil {
		return
	}
	for k := range next {
		w.watchNamespace(k.Namespace)
		w.refreshLocked(k.Namespace, k.Service)
	}
}

// watchNamespace starts the informers of a namespace once; w.mu is held.
func (w *Watcher) watchNamespace(name string) {
	if _, ok := w.spaces[name]; ok {
		return
	}
	ctx, cancel := context.WithCancel(w.ctx)
	f := informers.NewSharedInformerFactoryWithOptions(w.client, 10*time.Minute, informers.WithNamespace(name))
	ns := &namespace{services: f, cancel: cancel}
	w.spaces[name] = ns
	onService := func(obj any) {
		if s, ok := obj.(*corev1.Service); ok {
			w.refresh(name, s.Name)
		} else if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			if s, ok := t.Obj.(*corev1.Service); ok {
				w.refresh(name, s.Name)
			}
		}
	}
	onSlice := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
			w.refresh(name, s.Labels[discoveryv1.LabelServiceName])
		}
	}
	handlers := func(f func(any)) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, o any) { f(o) }, DeleteFunc: f}
	}
	f.Core().V1().Services().Informer().AddEventHandler(handlers(onService))
	f.Discovery().V1().EndpointSlices().Informer().AddEventHandler(handlers(onSlice))
	f.Start(ctx.Done())
	go func() {
		f.WaitForCacheSync(ctx.Done())
		w.mu.Lock()
		ns.synced = true
		for k := range w.keys {
			if k.Namespace == name {
				w.refreshLocked(k.Namespace, k.Service)
			}
		}
		w.mu.Unlock()
	}()
}

// Synced reports whether every namespace of the keys has been listed once.
func (w *Watcher) Synced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syncedLocked()
}

func (w *Watcher) syncedLocked() bool {
	for k := range w.keys {
		if ns := w.spaces[k.Namespace]; ns == nil || !ns.synced {
			return false
		}
	}
	return true
}

func (w *Watcher) refresh(ns, svc string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refreshLocked(ns, svc)
}

// refreshLocked computes the values of the keys of one Service and reports those that
// changed; w.mu is held. Before the namespace's informers have synced nothing is reported:
// an empty cache is not an empty Service.
func (w *Watcher) refreshLocked(ns, svc string) {
	space := w.spaces[ns]
	if space == nil || !space.synced || w.stopped {
		return
	}
	f := space.services
	service, _ := f.Core().V1().Services().Lister().Services(ns).Get(svc)
	slices, _ := f.Discovery().V1().EndpointSlices().Lister().EndpointSlices(ns).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc}))
	for k := range w.keys {
		if k.Namespace != ns || k.Service != svc {
			continue
		}
		v := Value(k, service, slices)
		if prev, ok := w.last[k]; ok && prev == v {
			continue
		}
		w.last[k] = v
		w.saveCopy()
		w.onChange(k.String(), v)
	}
}
