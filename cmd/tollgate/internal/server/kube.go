package server

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/kube"
)

// Kube follows, for the control plane, the Kubernetes Services that the catalogue's
// k8s:// endpoints name, and hands their addresses to the xDS server.
type Kube struct {
	w      *kube.Watcher
	log    *zap.Logger
	warned atomic.Bool
}

// NewKube connects to the Kubernetes API: with a kubeconfig file, else as the pod's
// service account (in a cluster).
func NewKube(kubeconfig, cacheDir string, apis *Catalog, x *XDS, log *zap.Logger) (*Kube, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, errors.New("kubernetes.discovery: " + err.Error())
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, errors.New("kubernetes.discovery: " + err.Error())
	}
	k := &Kube{log: log.Named("kubernetes")}
	k.w = kube.NewWatcher(client, func(key, value string) {
		k.log.Info("service addresses", zap.String("endpoint", key), zap.String("addresses", value))
		x.cp.KubeEndpoint(key, value)
	})
	if cacheDir != "" {
		k.w.KeepCopy(filepath.Join(cacheDir, "kubernetes.json"))
	}
	apis.reg.OnChange(func(c *apimodel.Catalog) { k.w.SetKeys(kubeKeys(c)) })
	return k, nil
}

// kubeKeys are the k8s:// endpoints of every API, operation and endpoint set.
func kubeKeys(c *apimodel.Catalog) []kube.Key {
	seen := map[string]bool{}
	var out []kube.Key
	add := func(e apimodel.Endpoints) {
		for _, ep := range e.URLs {
			if !strings.HasPrefix(ep.Discovery, apimodel.KubeScheme) || seen[ep.Discovery] {
				continue
			}
			if k, err := kube.ParseKey(ep.Discovery); err == nil {
				seen[ep.Discovery] = true
				out = append(out, k)
			}
		}
	}
	for _, a := range c.APIs() {
		add(a.Production)
		add(a.Sandbox)
		for i := range a.Operations {
			add(a.Operations[i].Production)
			add(a.Operations[i].Sandbox)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (k *Kube) Name() string { return "kubernetes" }

// Ready: the Services named so far have been listed once, or their last addresses came
// from the local copy (the API server away since the start; logged once).
func (k *Kube) Ready() error {
	if k.w.Synced() {
		return nil
	}
	if k.w.FromCopy() {
		if k.warned.CompareAndSwap(false, true) {
			k.log.Warn("the Kubernetes API is not reachable: serving the Services' last addresses from the local copy")
		}
		return nil
	}
	return errors.New("the Kubernetes Services of k8s:// endpoints are not listed yet")
}

func (k *Kube) Run(ctx context.Context) error { return k.w.Run(ctx) }
