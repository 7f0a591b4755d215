// Package chartcheck renders voicequeue's Helm chart (deploy/helm/voicequeue) with Helm's own
// library, client-side only (no cluster, no network), and decodes every manifest strictly into
// the Kubernetes API types, or into small local types for the CRDs it may render
// (ServiceMonitor, PrometheusRule, ScaledObject): an unknown or misspelt field is an error, as it
// would be for `kubectl apply --validate=strict`.
//
// It is a module of its own so that Helm's and Kubernetes' dependencies stay out of the
// application's module. Its tests (run by `make lint`) render the chart with default values and
// with every optional part on, and check the result against the binaries it runs.
package chartcheck

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// DefaultKubeVersion is the cluster version a render assumes unless told otherwise.
const DefaultKubeVersion = "v1.31.0"

// CRD API versions the chart checks for before rendering optional objects.
const (
	MonitoringAPI = "monitoring.coreos.com/v1"
	KEDAAPI       = "keda.sh/v1alpha1"
)

// Options of one render.
type Options struct {
	// Values override the chart's values.yaml, as `helm install -f` would.
	Values map[string]any
	// APIVersions the cluster serves beyond the built-in ones, e.g. MonitoringAPI, KEDAAPI.
	APIVersions []string
	// KubeVersion of the cluster (default DefaultKubeVersion).
	KubeVersion string
	// ReleaseName and Namespace (default "vq" and "voicequeue").
	ReleaseName, Namespace string
}

// Release is a rendered chart.
type Release struct {
	Manifest string
	Notes    string
	Objects  []Object
}

// Object is one decoded manifest.
type Object struct {
	APIVersion, Kind, Name string
	// Source is the template it came from, e.g. "voicequeue/templates/worker-deployment.yaml".
	Source string
	Labels map[string]string
	// Value is a pointer to the typed object: *appsv1.Deployment, *ServiceMonitor, …
	Value any
}

// Render renders the chart in chartDir as `helm install --dry-run=client` would, and decodes every
// manifest strictly.
func Render(chartDir string, o Options) (*Release, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	if o.KubeVersion == "" {
		o.KubeVersion = DefaultKubeVersion
	}
	if o.ReleaseName == "" {
		o.ReleaseName = "vq"
	}
	if o.Namespace == "" {
		o.Namespace = "voicequeue"
	}
	kv, err := chartutil.ParseKubeVersion(o.KubeVersion)
	if err != nil {
		return nil, fmt.Errorf("kube version: %w", err)
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.DryRunOption = "client"
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = o.ReleaseName
	install.Namespace = o.Namespace
	install.KubeVersion = kv
	install.APIVersions = chartutil.VersionSet(o.APIVersions)
	vals := o.Values
	if vals == nil {
		vals = map[string]any{}
	}
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return nil, fmt.Errorf("render chart: %w", err)
	}
	objs, err := Decode(rel.Manifest)
	if err != nil {
		return nil, err
	}
	notes := ""
	if rel.Info != nil {
		notes = rel.Info.Notes
	}
	return &Release{Manifest: rel.Manifest, Notes: notes, Objects: objs}, nil
}

// kinds maps apiVersion/kind to the type a manifest decodes into.
var kinds = map[string]func() any{
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/Ingress":           func() any { return &networkingv1.Ingress{} },
	MonitoringAPI + "/ServiceMonitor":        func() any { return &ServiceMonitor{} },
	MonitoringAPI + "/PrometheusRule":        func() any { return &PrometheusRule{} },
	KEDAAPI + "/ScaledObject":                func() any { return &ScaledObject{} },
}

var (
	docSep    = regexp.MustCompile(`(?m)^---[ \t]*$`)
	sourceRE  = regexp.MustCompile(`(?m)^# Source: (\S+)`)
	commentRE = regexp.MustCompile(`(?m)^\s*(#.*)?$`)
)

// Decode splits a multi-document manifest and decodes each document strictly into its type. A
// kind the chart is not expected to render is an error too.
func Decode(manifest string) ([]Object, error) {
	var objs []Object
	var errs []error
	for _, doc := range docSep.Split(manifest, -1) {
		if commentRE.ReplaceAllString(doc, "") == "" {
			continue
		}
		source := ""
		if m := sourceRE.FindStringSubmatch(doc); m != nil {
			source = m[1]
		}
		var head struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			errs = append(errs, fmt.Errorf("%s: not YAML: %w", source, err))
			continue
		}
		newObj, ok := kinds[head.APIVersion+"/"+head.Kind]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unexpected kind %s/%s", source, head.APIVersion, head.Kind))
			continue
		}
		v := newObj()
		if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s %s does not decode strictly: %w", source, head.Kind, head.Metadata.Name, err))
			continue
		}
		objs = append(objs, Object{
			APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name,
			Source: source, Labels: head.Metadata.Labels, Value: v,
		})
	}
	if len(objs) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("the manifest holds no objects"))
	}
	return objs, errors.Join(errs...)
}

// Find returns the objects of a kind.
func (r *Release) Find(kind string) []Object {
	var out []Object
	for _, o := range r.Objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// Get returns the object of a kind and name, or nil.
func (r *Release) Get(kind, name string) any {
	for _, o := range r.Objects {
		if o.Kind == kind && o.Name == name {
			return o.Value
		}
	}
	return nil
}

// Deployments returns the Deployments by name.
func (r *Release) Deployments() map[string]*appsv1.Deployment {
	out := map[string]*appsv1.Deployment{}
	for _, o := range r.Find("Deployment") {
		out[o.Name] = o.Value.(*appsv1.Deployment)
	}
	return out
}

// String names an object for messages.
func (o Object) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s (%s)", o.Kind, o.Name, o.Source))
}

// ServiceMonitor is the part of prometheus-operator's ServiceMonitor the chart uses; decoding
// rejects any other field.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string `json:"jobLabel,omitempty"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// PrometheusRule is prometheus-operator's PrometheusRule: the rule file format under spec.
type PrometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              RuleGroups `json:"spec"`
}

// RuleGroups is the Prometheus rule file format.
type RuleGroups struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert         string            `json:"alert,omitempty"`
			Record        string            `json:"record,omitempty"`
			Expr          string            `json:"expr"`
			For           string            `json:"for,omitempty"`
			KeepFiringFor string            `json:"keep_firing_for,omitempty"`
			Labels        map[string]string `json:"labels,omitempty"`
			Annotations   map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

// ScaledObject is the part of KEDA's ScaledObject the chart uses.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		Triggers        []struct {
			Type              string            `json:"type"`
			Name              string            `json:"name,omitempty"`
			MetricType        string            `json:"metricType,omitempty"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Name string `json:"name"`
				Kind string `json:"kind,omitempty"`
			} `json:"authenticationRef,omitempty"`
		} `json:"triggers"`
	} `json:"spec"`
}
