package chartcheck

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Paths from this module's directory.
const (
	chartDir   = "../helm/voicequeue"
	repoRoot   = "../.."
	rulesFile  = "../prometheus/voicequeue-rules.yml"
	dashboard  = "../grafana/voicequeue.json"
	crdRelease = "vq"
)

// scenario is one way of installing the chart.
type scenario struct {
	name        string
	valuesFiles []string
	set         map[string]any // merged over the files
	apis        []string
	kube        string
	// want lists the objects expected, as "Kind/name" with the release prefix dropped.
	want []string
}

var allCRDs = []string{MonitoringAPI, KEDAAPI}

// base objects every install has.
var base = []string{
	"ServiceAccount/voicequeue", "ConfigMap/voicequeue",
	"Service/voicequeue-gateway", "Service/voicequeue-worker-metrics",
	"Deployment/voicequeue-gateway", "Deployment/voicequeue-worker",
	"PodDisruptionBudget/voicequeue-gateway", "PodDisruptionBudget/voicequeue-worker",
}

func with(extra ...string) []string { return append(slices.Clone(base), extra...) }

var allOn = with("Secret/voicequeue", "HorizontalPodAutoscaler/voicequeue-gateway",
	"Deployment/voicequeue-simulator", "Service/voicequeue-simulator", "PodDisruptionBudget/voicequeue-simulator",
	"Ingress/voicequeue-gateway", "ConfigMap/voicequeue-dashboard")

var scenarios = []scenario{
	{name: "defaults", want: with("Secret/voicequeue", "HorizontalPodAutoscaler/voicequeue-gateway")},
	{name: "defaults on a cluster with the CRDs", apis: allCRDs,
		want: with("Secret/voicequeue", "HorizontalPodAutoscaler/voicequeue-gateway")},
	{name: "every optional part on", valuesFiles: []string{"testdata/values-all.yaml"}, apis: allCRDs,
		want: append(slices.Clone(allOn), "ServiceMonitor/voicequeue", "PrometheusRule/voicequeue", "ScaledObject/voicequeue-worker")},
	{name: "every optional part on, CRDs absent", valuesFiles: []string{"testdata/values-all.yaml"}, want: allOn},
	{name: "every optional part on, Kubernetes 1.29", valuesFiles: []string{"testdata/values-all.yaml"}, apis: allCRDs, kube: "v1.29.4",
		want: append(slices.Clone(allOn), "ServiceMonitor/voicequeue", "PrometheusRule/voicequeue", "ScaledObject/voicequeue-worker")},
	{name: "existing secrets, no autoscaling", valuesFiles: []string{"testdata/values-existing-secret.yaml"}, want: base},
}

func (s scenario) values(t *testing.T) map[string]any {
	t.Helper()
	vals := map[string]any{}
	for _, f := range s.valuesFiles {
		vals = merge(vals, readValues(t, f))
	}
	return merge(vals, s.set)
}

func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(raw, &vals); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return vals
}

// merge returns a deep merge of over onto dst (maps merge, everything else is replaced).
func merge(dst, over map[string]any) map[string]any {
	out := maps.Clone(dst)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range over {
		if vm, ok := v.(map[string]any); ok {
			if dm, ok := out[k].(map[string]any); ok {
				out[k] = merge(dm, vm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func (s scenario) render(t *testing.T) *Release {
	t.Helper()
	rel, err := Render(chartDir, Options{Values: s.values(t), APIVersions: s.apis, KubeVersion: s.kube, ReleaseName: crdRelease})
	if err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
	return rel
}

// short drops the release prefix of an object name.
func short(name string) string { return strings.TrimPrefix(name, crdRelease+"-") }

// configMapData returns the data of the named ConfigMap in rel.
func configMapData(t *testing.T, rel *Release, name string) map[string]string {
	t.Helper()
	cm, _ := rel.Get("ConfigMap", name).(*corev1.ConfigMap)
	if cm == nil {
		t.Fatalf("ConfigMap %s is referenced but not rendered", name)
	}
	return cm.Data
}

// containerEnv resolves a container's environment as the kubelet would, as far as the release
// tells: ConfigMap values, plain values, and Secret references (value "secret:NAME/KEY").
func containerEnv(t *testing.T, rel *Release, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			maps.Copy(env, configMapData(t, rel, from.ConfigMapRef.Name))
		default:
			t.Errorf("container %s: envFrom other than a ConfigMap: %+v", c.Name, from)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = fmt.Sprintf("secret:%s/%s", e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		default:
			t.Errorf("container %s: env %s from something other than a Secret", c.Name, e.Name)
		}
	}
	return env
}

// podOf returns the pod template of a Deployment by short name.
func podOf(t *testing.T, rel *Release, shortName string) *appsv1.Deployment {
	t.Helper()
	for name, d := range rel.Deployments() {
		if short(name) == shortName {
			return d
		}
	}
	t.Fatalf("no Deployment %s", shortName)
	return nil
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
