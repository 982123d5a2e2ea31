package helm

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-gw/tollgate/internal/config"
)

var update = flag.Bool("update", false, "rewrite examples/kubernetes/ from the chart's default values")

const chartDir = "../../examples/helm/tollgate"

// rendered is one release's objects, decoded strictly into their API types.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	jobs        []*batchv1.Job
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	pdbs        []*policyv1.PodDisruptionBudget
	policies    []*securityv1.AuthorizationPolicy
	roles       []*rbacv1.ClusterRole
	bindings    []*rbacv1.ClusterRoleBinding
	manifest    string // every object, in template order, as `helm template` prints them
}

// render renders the chart with values (YAML over the chart's defaults) with Helm's SDK
// and decodes every object strictly: a field the Kubernetes or Istio API types do not
// have is an error.
func render(t *testing.T, values string) (*rendered, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(chrt, vals, common.ReleaseOptions{Name: "gw", Namespace: "gateway", Revision: 1, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(chrt, top)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		if strings.HasSuffix(n, ".yaml") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	r := &rendered{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}}
	var manifest strings.Builder
	for _, n := range names {
		for _, doc := range strings.Split(files[n], "\n---") {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			fmt.Fprintf(&manifest, "---\n# Source: %s\n%s\n", strings.TrimPrefix(n, "tollgate/"), strings.TrimSpace(doc))
			if err := r.decode(n, []byte(doc)); err != nil {
				return nil, err
			}
		}
	}
	r.manifest = manifest.String()
	return r, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (r *rendered) decode(file string, doc []byte) error {
	var head struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	strict := func(into any) error {
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			return fmt.Errorf("%s: %s %s: %w", file, head.APIVersion, head.Kind, err)
		}
		return nil
	}
	switch head.APIVersion + " " + head.Kind {
	case "apps/v1 Deployment":
		var o appsv1.Deployment
		r.deployments[o.Name] = &o
		if err := strict(&o); err != nil {
			return err
		}
		delete(r.deployments, "")
		r.deployments[o.Name] = &o
	case "v1 Service":
		var o corev1.Service
		if err := strict(&o); err != nil {
			return err
		}
		r.services[o.Name] = &o
	case "v1 ConfigMap":
		var o corev1.ConfigMap
		if err := strict(&o); err != nil {
			return err
		}
		r.configMaps[o.Name] = &o
	case "v1 ServiceAccount":
		var o corev1.ServiceAccount
		return strict(&o)
	case "batch/v1 Job":
		var o batchv1.Job
		if err := strict(&o); err != nil {
			return err
		}
		r.jobs = append(r.jobs, &o)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		var o autoscalingv2.HorizontalPodAutoscaler
		if err := strict(&o); err != nil {
			return err
		}
		r.hpas = append(r.hpas, &o)
	case "policy/v1 PodDisruptionBudget":
		var o policyv1.PodDisruptionBudget
		if err := strict(&o); err != nil {
			return err
		}
		r.pdbs = append(r.pdbs, &o)
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		var o rbacv1.ClusterRole
		if err := strict(&o); err != nil {
			return err
		}
		r.roles = append(r.roles, &o)
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		var o rbacv1.ClusterRoleBinding
		if err := strict(&o); err != nil {
			return err
		}
		r.bindings = append(r.bindings, &o)
	case "security.istio.io/v1 AuthorizationPolicy":
		var o securityv1.AuthorizationPolicy
		if err := strict(&o); err != nil {
			return err
		}
		r.policies = append(r.policies, &o)
	default:
		return fmt.Errorf("%s: %s %s: a kind this test does not know", file, head.APIVersion, head.Kind)
	}
	return nil
}

// tollgateConfig is the rendered tollgate.yaml, read by Tollgate's own configuration loader.
func (r *rendered) tollgateConfig(t *testing.T) config.Config {
	t.Helper()
	cm := r.configMaps["gw-tollgate"]
	if cm == nil {
		t.Fatal("no ConfigMap gw-tollgate")
	}
	p := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(p, []byte(cm.Data["tollgate.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatalf("the chart's tollgate.yaml: %v\n%s", err, cm.Data["tollgate.yaml"])
	}
	return c
}

func container(d *appsv1.Deployment, name string) *corev1.Container {
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == name {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	for i := range d.Spec.Template.Spec.InitContainers {
		if d.Spec.Template.Spec.InitContainers[i].Name == name {
			return &d.Spec.Template.Spec.InitContainers[i]
		}
	}
	return nil
}

// Every container is hardened, and Tollgate's containers' probes are its /healthz and /readyz.
func checkHardened(t *testing.T, r *rendered) {
	t.Helper()
	for name, d := range r.deployments {
		spec := d.Spec.Template.Spec
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			sc := c.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s/%s is not hardened: %+v", name, c.Name, sc)
			}
			if c.Name == "envoy" || c.Name == "bootstrap" {
				continue
			}
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("%s/%s probes: %+v %+v", name, c.Name, c.LivenessProbe, c.ReadinessProbe)
			}
		}
	}
}

func TestDefaultRelease(t *testing.T) {
	r, err := render(t, "")
	if err != nil {
		t.Fatal(err)
	}
	checkHardened(t, r)
	xds := r.deployments["gw-tollgate-xds"]
	if xds == nil || *xds.Spec.Replicas != 2 || container(xds, "xds").Args[0] != "xds" {
		t.Fatalf("control plane %+v", xds)
	}
	gw := r.deployments["gw-tollgate-gateway"]
	if gw == nil || container(gw, "envoy") == nil || container(gw, "enforcer") == nil {
		t.Fatal("the gateway has no Envoy with the enforcer beside it")
	}
	boot := strings.Join(container(gw, "bootstrap").Args, " ")
	if !strings.Contains(boot, "--xds=gw-tollgate-xds:18000") || !strings.Contains(boot, "--output=/etc/envoy/envoy.yaml") || !strings.Contains(boot, "--node-id=$(POD_NAME)") {
		t.Errorf("bootstrap %s", boot)
	}
	if r.deployments["gw-tollgate-enforcer"] != nil {
		t.Error("an enforcer pool in sidecar mode")
	}
	c := r.tollgateConfig(t)
	if c.Authz.Listen != "127.0.0.1:9191" || c.XDS.AuthzAddress != "127.0.0.1:9191" || c.XDS.Listen != "0.0.0.0:18000" || c.CacheDir() != "/var/cache/tollgate" {
		t.Errorf("sidecar configuration: authz %s, authzAddress %s, xds %s, cache %s", c.Authz.Listen, c.XDS.AuthzAddress, c.XDS.Listen, c.CacheDir())
	}
	if len(r.pdbs) != 2 || len(r.jobs) != 0 || len(r.hpas) != 0 || len(r.policies) != 0 {
		t.Errorf("%d PDBs, %d Jobs, %d HPAs, %d policies", len(r.pdbs), len(r.jobs), len(r.hpas), len(r.policies))
	}
	// examples/kubernetes is this release, as `helm template` would print it.
	golden := filepath.Join("..", "..", "examples", "kubernetes", "tollgate.yaml")
	head := "# Rendered from examples/helm/tollgate with its default values (release gw, namespace\n# gateway): go test ./test/helm -update rewrites it. kubectl apply -n gateway -f it.\n"
	if *update {
		if err := os.WriteFile(golden, []byte(head+r.manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil || !bytes.Equal(want, []byte(head+r.manifest)) {
		t.Errorf("%s is not the chart's default release (go test ./test/helm -update): %v", golden, err)
	}
}

func TestPoolWithAutoscaling(t *testing.T) {
	r, err := render(t, `
gateway: {enforcer: pool, hpa: {enabled: true, maxReplicas: 6}}
enforcer: {hpa: {enabled: true}}
`)
	if err != nil {
		t.Fatal(err)
	}
	checkHardened(t, r)
	gw, pool := r.deployments["gw-tollgate-gateway"], r.deployments["gw-tollgate-enforcer"]
	if gw == nil || pool == nil || container(gw, "enforcer") != nil || gw.Spec.Replicas != nil {
		t.Fatalf("pool mode: gateway %v, pool %v", gw != nil, pool != nil)
	}
	if s := r.services["gw-tollgate-enforcer"]; s == nil || s.Spec.Ports[0].Port != 9191 {
		t.Error("no Service for the pool")
	}
	c := r.tollgateConfig(t)
	if c.Authz.Listen != "0.0.0.0:9191" || c.XDS.AuthzAddress != "gw-tollgate-enforcer:9191" {
		t.Errorf("pool configuration: authz %s, authzAddress %s", c.Authz.Listen, c.XDS.AuthzAddress)
	}
	if len(r.hpas) != 2 || r.hpas[0].Spec.MaxReplicas != 20 && r.hpas[1].Spec.MaxReplicas != 6 {
		t.Errorf("HPAs %d", len(r.hpas))
	}
}

func TestTLSEtcdRedisAndDefinitions(t *testing.T) {
	r, err := render(t, `
etcd: {endpoints: [etcd-0.etcd:2379, etcd-1.etcd:2379], tls: {secretName: etcd-client}, auth: {username: tollgate, passwordSecret: etcd-password}}
redis: {enabled: true}
tls: {secretName: tollgate-tls}
definitions: {configMap: shop-apis}
extraSecrets: [{name: idp-keys, mountPath: /etc/tollgate-secrets/idp}]
config:
  validation: {request: true}
  log: {level: debug}
  issuers: [{name: corp, issuer: "https://idp.example.com", audiences: [shop], jwksFile: /etc/tollgate-secrets/idp/jwks.json}]
`)
	if err != nil {
		t.Fatal(err)
	}
	checkHardened(t, r)
	c := r.tollgateConfig(t)
	if len(c.Etcd.Endpoints) != 2 || c.Etcd.CAFile != "/etc/tollgate-etcd/ca.crt" || c.Etcd.Username != "tollgate" || c.Etcd.PasswordFile == "" {
		t.Errorf("etcd %+v", c.Etcd)
	}
	if c.Throttling.Backend != config.BackendRedis || c.Authz.ServerTLS.CertFile == "" || c.XDS.ServerTLS.ClientCAFile == "" || c.XDS.AuthzTLS.ServerName != "gw-tollgate-enforcer" {
		t.Errorf("redis %v, TLS %+v %+v", c.Throttling.Backend, c.Authz.ServerTLS, c.XDS.AuthzTLS)
	}
	if !c.Validation.Request || c.Log.Level != "debug" || c.Log.Format != "json" {
		t.Error("config: the values' tollgate.yaml is not merged over the chart's")
	}
	if len(c.Issuers) != 1 || c.Issuers[0].JWKSFile != "/etc/tollgate-secrets/idp/jwks.json" {
		t.Errorf("issuers %+v", c.Issuers)
	}
	// The issuer's key file is where every Tollgate container finds it.
	for name, d := range r.deployments {
		for _, ct := range append(append([]corev1.Container{}, d.Spec.Template.Spec.InitContainers...), d.Spec.Template.Spec.Containers...) {
			if ct.Name == "envoy" {
				continue
			}
			found := false
			for _, m := range ct.VolumeMounts {
				found = found || m.Name == "secret-idp-keys" && m.MountPath == "/etc/tollgate-secrets/idp" && m.ReadOnly
			}
			if !found {
				t.Errorf("%s/%s does not mount the extra Secret", name, ct.Name)
			}
		}
	}
	boot := strings.Join(container(r.deployments["gw-tollgate-gateway"], "bootstrap").Args, " ")
	if !strings.Contains(boot, "--tls-ca=/etc/tollgate-tls/ca.crt") || !strings.Contains(boot, "--tls-server-name=gw-tollgate-xds") {
		t.Errorf("bootstrap without TLS: %s", boot)
	}
	if len(r.jobs) != 1 || r.jobs[0].Annotations["helm.sh/hook"] != "post-install,post-upgrade" ||
		!strings.Contains(strings.Join(r.jobs[0].Spec.Template.Spec.Containers[0].Args, " "), "apply --config /etc/tollgate/tollgate.yaml -f /definitions/") {
		t.Errorf("apply Job %+v", r.jobs)
	}
}

func TestIstio(t *testing.T) {
	r, err := render(t, `
gateway: {enabled: false}
istio: {enabled: true, selector: {app: shop}}
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.policies) != 1 || r.policies[0].Spec.GetAction().String() != "CUSTOM" || r.policies[0].Spec.GetProvider().GetName() != "tollgate-ext-authz" ||
		r.policies[0].Spec.GetSelector().GetMatchLabels()["app"] != "shop" {
		t.Fatalf("AuthorizationPolicy %+v", r.policies)
	}
	if r.deployments["gw-tollgate-enforcer"] == nil || r.deployments["gw-tollgate-gateway"] != nil {
		t.Error("Istio needs the enforcer pool, and no gateway of ours")
	}
}

func TestBadValuesAreRefused(t *testing.T) {
	if _, err := render(t, `gateway: {enforcer: beside}`); err == nil || !strings.Contains(err.Error(), "gateway.enforcer must be sidecar or pool") {
		t.Errorf("a bad mode: %v", err)
	}
}

// Kubernetes discovery: the control plane reads Services and EndpointSlices, and nothing
// else, with its service account's token mounted; without it, no RBAC at all.
func TestKubernetesDiscovery(t *testing.T) {
	r, err := render(t, `discovery: {kubernetes: true}`)
	if err != nil {
		t.Fatal(err)
	}
	if !r.tollgateConfig(t).Kubernetes.Discovery {
		t.Error("tollgate.yaml does not turn discovery on")
	}
	if len(r.roles) != 1 || len(r.bindings) != 1 || r.bindings[0].Subjects[0].Name != "gw-tollgate" || r.bindings[0].Subjects[0].Namespace != "gateway" {
		t.Fatalf("RBAC %+v %+v", r.roles, r.bindings)
	}
	for _, rule := range r.roles[0].Rules {
		for _, v := range rule.Verbs {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("the control plane may %s %v", v, rule.Resources)
			}
		}
	}
	if m := r.deployments["gw-tollgate-xds"].Spec.Template.Spec.AutomountServiceAccountToken; m == nil || !*m {
		t.Error("the control plane has no token to read the API with")
	}
	plain, err := render(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(plain.roles)+len(plain.bindings) != 0 || plain.tollgateConfig(t).Kubernetes.Discovery {
		t.Error("RBAC or discovery without discovery.kubernetes")
	}
}
