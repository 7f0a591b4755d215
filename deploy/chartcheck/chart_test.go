package chartcheck

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

func TestRenderObjects(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			rel := s.render(t)
			var got []string
			for _, o := range rel.Objects {
				got = append(got, o.Kind+"/"+short(o.Name))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(s.want))
			if !slices.Equal(got, want) {
				t.Errorf("objects:\n got %v\nwant %v", got, want)
			}
			for _, o := range rel.Objects {
				if len(o.Name) > 63 {
					t.Errorf("%s: name longer than 63 characters", o)
				}
				for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
					if o.Labels[l] == "" {
						t.Errorf("%s: label %s missing", o, l)
					}
				}
			}
		})
	}
}

func TestDecodeIsStrict(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  portz: []\n", "unknown field"},
		{"misplaced field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          livenessProbe: {path: /healthz}\n", "unknown field"},
		{"wrong type", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  A: [1]\n", "cannot unmarshal"},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: a}\ndata: {B: b}\n", "already set"},
		{"unexpected kind", "apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\n", "unexpected kind"},
		{"CRD unknown field", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec:\n  endpoints: [{port: admin, path: /metrics, honorLabelz: true}]\n", "unknown field"},
		{"KEDA unknown trigger field", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: prometheus, metadatas: {threshold: \"5\"}}]\n", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("---\n" + tt.doc)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPodDefaults(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			rel := s.render(t)
			cfg := configMapData(t, rel, crdRelease+"-voicequeue")
			shutdown := parseDuration(t, cfg["VOICEQUEUE_SHUTDOWN_TIMEOUT"])
			provider := parseDuration(t, cfg["VOICEQUEUE_PROVIDER_TIMEOUT"])
			wantSleep := s.kube == "" || s.kube >= "v1.30"
			if gw, ok := s.values(t)["gateway"].(map[string]any); ok && gw["preStopSleepSeconds"] == float64(0) {
				wantSleep = false
			}
			for name, d := range rel.Deployments() {
				checkPod(t, short(name), d, shutdown, provider, wantSleep)
			}
		})
	}
}

func parseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

func checkPod(t *testing.T, name string, d *appsv1.Deployment, shutdown, provider time.Duration, wantSleep bool) {
	t.Helper()
	pod := d.Spec.Template
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("%s: selector %v does not match the pod labels %v", name, d.Spec.Selector, pod.Labels)
	}
	if pod.Annotations["checksum/config"] == "" {
		t.Errorf("%s: no checksum/config annotation: config changes would not roll the pods", name)
	}
	ps := pod.Spec.SecurityContext
	switch {
	case ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot:
		t.Errorf("%s: pod may run as root", name)
	case ps.RunAsUser == nil || *ps.RunAsUser != 65532:
		t.Errorf("%s: pod runAsUser %v, want 65532 (the image's USER)", name, ps.RunAsUser)
	case ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s: pod seccomp profile is not RuntimeDefault", name)
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("%s: the service account token is mounted; the binaries never use it", name)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: no container securityContext", name)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: privilege escalation allowed", name)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s: root filesystem writable", name)
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s: capabilities %+v, want all dropped", name, sc.Capabilities)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %+v: want cpu and memory requests and a memory limit", name, c.Resources)
	}
	// Probes: liveness on /healthz, readiness on /readyz, on the port the binary serves them on
	// (TestBinariesServeTheirProbes starts the binaries and asks).
	probePort := "admin"
	if name == "voicequeue-simulator" {
		probePort = "http"
	}
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", name, p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != probePort {
			t.Errorf("%s: %s probe GET %s on port %s, want %s on %s", name, p.kind, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path, probePort)
		}
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == probePort }) {
			t.Errorf("%s: %s probe port %s is not a container port", name, p.kind, probePort)
		}
	}
	if c.LivenessProbe != nil && c.ReadinessProbe != nil && reflect.DeepEqual(c.LivenessProbe, c.ReadinessProbe) {
		t.Errorf("%s: liveness and readiness probes are the same", name)
	}
	// The grace period must cover the shutdown the binary does on SIGTERM.
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	var need time.Duration
	switch name {
	case "voicequeue-worker":
		need = shutdown + provider
	case "voicequeue-gateway":
		need = shutdown
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			if c.Lifecycle.PreStop.Sleep == nil {
				t.Errorf("%s: preStop is not a sleep action (the image has no shell)", name)
			} else {
				need += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			}
		}
		if hasSleep := c.Lifecycle != nil && c.Lifecycle.PreStop != nil; hasSleep != wantSleep {
			t.Errorf("%s: preStop sleep rendered = %v, want %v (the sleep action needs Kubernetes 1.30)", name, hasSleep, wantSleep)
		}
	}
	if grace <= need {
		t.Errorf("%s: terminationGracePeriodSeconds %v does not exceed the %v the process may take to stop", name, grace, need)
	}
}

// TestGatewaySpool: the push spool lives on its own volume, large enough for its bound (the
// read-only root filesystem would refuse it, and a full emptyDir gets the pod evicted).
func TestGatewaySpool(t *testing.T) {
	tests := append(slices.Clone(scenarios), scenario{name: "spool off", set: map[string]any{"gateway": map[string]any{"spool": map[string]any{"enabled": false}}}})
	for _, s := range tests {
		t.Run(s.name, func(t *testing.T) {
			rel := s.render(t)
			d := podOf(t, rel, "voicequeue-gateway")
			c := d.Spec.Template.Spec.Containers[0]
			env := containerEnv(t, rel, c)
			dir := env["VOICEQUEUE_SPOOL_DIR"]
			if s.name == "spool off" {
				if dir != "off" {
					t.Errorf("VOICEQUEUE_SPOOL_DIR = %q, want off", dir)
				}
				return
			}
			i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
			if dir == "" || i < 0 || c.VolumeMounts[i].ReadOnly {
				t.Fatalf("VOICEQUEUE_SPOOL_DIR = %q is not a writable mount (mounts %v)", dir, c.VolumeMounts)
			}
			vol := d.Spec.Template.Spec.Volumes[slices.IndexFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[i].Name })]
			max, err := strconv.ParseInt(env["VOICEQUEUE_SPOOL_MAX_BYTES"], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if vol.EmptyDir == nil || vol.EmptyDir.SizeLimit == nil || vol.EmptyDir.SizeLimit.Value() <= max {
				t.Errorf("spool volume %+v: want an emptyDir whose sizeLimit exceeds VOICEQUEUE_SPOOL_MAX_BYTES=%d", vol.VolumeSource, max)
			}
		})
	}
}

func TestReferences(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			rel := s.render(t)
			pods := map[string]*appsv1.Deployment{}
			for name, d := range rel.Deployments() {
				pods[name] = d
			}
			// matching returns the Deployments whose pods a selector picks.
			matching := func(sel labels.Selector) []*appsv1.Deployment {
				var out []*appsv1.Deployment
				for _, d := range pods {
					if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
						out = append(out, d)
					}
				}
				return out
			}
			servicePorts := map[string][]corev1.ServicePort{}
			for _, o := range rel.Find("Service") {
				svc := o.Value.(*corev1.Service)
				servicePorts[o.Name] = svc.Spec.Ports
				targets := matching(labels.SelectorFromSet(svc.Spec.Selector))
				if len(targets) != 1 {
					t.Errorf("%s selects %d Deployments, want 1", o, len(targets))
					continue
				}
				c := targets[0].Spec.Template.Spec.Containers[0]
				for _, p := range svc.Spec.Ports {
					if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
						return cp.Name == p.TargetPort.String() || cp.ContainerPort == p.TargetPort.IntVal
					}) {
						t.Errorf("%s: port %s targets %s, which container %s does not expose", o, p.Name, p.TargetPort.String(), c.Name)
					}
				}
			}
			for _, o := range rel.Find("PodDisruptionBudget") {
				pdb := o.Value.(*policyv1.PodDisruptionBudget)
				sel, _ := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				if n := len(matching(sel)); n != 1 {
					t.Errorf("%s covers %d Deployments, want 1", o, n)
				}
				if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
					t.Errorf("%s sets neither maxUnavailable nor minAvailable", o)
				}
			}
			for _, o := range rel.Find("HorizontalPodAutoscaler") {
				hpa := o.Value.(*autoscalingv2.HorizontalPodAutoscaler)
				d := pods[hpa.Spec.ScaleTargetRef.Name]
				if d == nil || hpa.Spec.ScaleTargetRef.Kind != "Deployment" {
					t.Errorf("%s scales %+v, which is not a rendered Deployment", o, hpa.Spec.ScaleTargetRef)
				} else if d.Spec.Replicas != nil {
					t.Errorf("%s: its Deployment also sets replicas, which would fight the autoscaler on upgrades", o)
				}
			}
			for _, o := range rel.Find("ScaledObject") {
				so := o.Value.(*ScaledObject)
				d := pods[so.Spec.ScaleTargetRef.Name]
				if d == nil {
					t.Errorf("%s scales %q, which is not a rendered Deployment", o, so.Spec.ScaleTargetRef.Name)
				} else if d.Spec.Replicas != nil {
					t.Errorf("%s: its Deployment also sets replicas", o)
				}
				if so.Spec.MaxReplicaCount == nil || so.Spec.MinReplicaCount == nil || *so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount {
					t.Errorf("%s: replica bounds %v..%v", o, so.Spec.MinReplicaCount, so.Spec.MaxReplicaCount)
				}
				for _, tr := range so.Spec.Triggers {
					if tr.Type == "prometheus" && (!strings.Contains(tr.Metadata["query"], "voicequeue_queue_tasks") || tr.Metadata["serverAddress"] == "" || tr.Metadata["threshold"] == "") {
						t.Errorf("%s: prometheus trigger %v", o, tr.Metadata)
					}
				}
			}
			for _, o := range rel.Find("Ingress") {
				ing := o.Value.(*networkingv1.Ingress)
				for _, r := range ing.Spec.Rules {
					for _, p := range r.HTTP.Paths {
						ports, ok := servicePorts[p.Backend.Service.Name]
						if !ok || !slices.ContainsFunc(ports, func(sp corev1.ServicePort) bool { return sp.Name == p.Backend.Service.Port.Name }) {
							t.Errorf("%s: path %s goes to %s:%s, which is not a rendered Service port", o, p.Path, p.Backend.Service.Name, p.Backend.Service.Port.Name)
						}
						if p.Backend.Service.Port.Name != "http" {
							t.Errorf("%s: path %s goes to port %s; only the gateway's http port serves the API and pushes", o, p.Path, p.Backend.Service.Port.Name)
						}
					}
				}
			}
			checkSecretRefs(t, rel, s)
		})
	}
}

// checkSecretRefs checks that every Secret reference names the chart's Secret (or a Secret the
// values declare as existing) and, for the chart's Secret, a key it holds unless optional.
func checkSecretRefs(t *testing.T, rel *Release, s scenario) {
	t.Helper()
	vals := s.values(t)
	existing := map[string]bool{}
	for _, path := range [][]string{{"secrets", "existingSecret"}, {"redis", "existingSecret"}} {
		if m, ok := vals[path[0]].(map[string]any); ok {
			if name, _ := m[path[1]].(string); name != "" {
				existing[name] = true
			}
		}
	}
	secrets := map[string]*corev1.Secret{}
	for _, o := range rel.Find("Secret") {
		secrets[o.Name] = o.Value.(*corev1.Secret)
	}
	full := len(s.valuesFiles) > 0 // the values files fill every secret
	for name, d := range rel.Deployments() {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				sec, ours := secrets[ref.Name]
				switch {
				case existing[ref.Name]:
				case !ours:
					t.Errorf("%s: %s reads Secret %s, which is neither rendered nor declared existing", short(name), e.Name, ref.Name)
				case full && (ref.Optional == nil || !*ref.Optional) && len(sec.Data[ref.Key]) == 0:
					t.Errorf("%s: %s reads key %s, which the chart's Secret lacks", short(name), e.Name, ref.Key)
				}
			}
		}
	}
}

func TestMonitoringObjects(t *testing.T) {
	s := scenarios[2] // every optional part on, with the CRDs
	rel := s.render(t)

	t.Run("ServiceMonitor scrapes the gateway and the worker as the jobs the rules expect", func(t *testing.T) {
		sm := rel.Get("ServiceMonitor", crdRelease+"-voicequeue").(*ServiceMonitor)
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		rules := string(readFile(t, rulesFile))
		jobs := map[string]bool{}
		for _, o := range rel.Find("Service") {
			svc := o.Value.(*corev1.Service)
			if !sel.Matches(labels.Set(svc.Labels)) {
				continue
			}
			job := svc.Labels[sm.Spec.JobLabel]
			jobs[job] = true
			for _, ep := range sm.Spec.Endpoints {
				if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					t.Errorf("%s has no port %q to scrape", o, ep.Port)
				}
				if ep.Path != "/metrics" {
					t.Errorf("endpoint path %q, want /metrics", ep.Path)
				}
			}
			if !strings.Contains(rules, `job="`+job+`"`) {
				t.Errorf("%s is scraped as job %q, which the alert rules never name", o, job)
			}
		}
		if !jobs["voicequeue-gateway"] || !jobs["voicequeue-worker"] || len(jobs) != 2 {
			t.Errorf("scraped jobs %v, want voicequeue-gateway and voicequeue-worker", jobs)
		}
	})

	t.Run("PrometheusRule holds the rule file", func(t *testing.T) {
		pr := rel.Get("PrometheusRule", crdRelease+"-voicequeue").(*PrometheusRule)
		var file RuleGroups
		if err := yaml.UnmarshalStrict(readFile(t, rulesFile), &file); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(pr.Spec, file) {
			t.Error("the PrometheusRule's groups differ from deploy/prometheus/voicequeue-rules.yml")
		}
		if pr.Labels["release"] != "kube-prometheus-stack" {
			t.Errorf("labels %v lack metrics.prometheusRule.labels", pr.Labels)
		}
	})

	t.Run("dashboard ConfigMap for the Grafana sidecar", func(t *testing.T) {
		cm := rel.Get("ConfigMap", crdRelease+"-voicequeue-dashboard").(*corev1.ConfigMap)
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("labels %v lack grafana_dashboard", cm.Labels)
		}
		var got, want any
		if err := json.Unmarshal([]byte(cm.Data["voicequeue.json"]), &got); err != nil {
			t.Fatalf("dashboard in the ConfigMap is not JSON: %v", err)
		}
		if err := json.Unmarshal(readFile(t, dashboard), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Error("the dashboard in the ConfigMap differs from deploy/grafana/voicequeue.json")
		}
	})
}

// TestChartCopiesInSync: the chart can only ship files inside its directory, so it carries copies
// of the rule file and the dashboard.
func TestChartCopiesInSync(t *testing.T) {
	for _, pair := range [][2]string{
		{rulesFile, chartDir + "/files/voicequeue-rules.yml"},
		{dashboard, chartDir + "/files/voicequeue-dashboard.json"},
	} {
		if !bytes.Equal(readFile(t, pair[0]), readFile(t, pair[1])) {
			t.Errorf("%s differs from %s: cp deploy/%s deploy/%s", pair[1], pair[0],
				strings.TrimPrefix(pair[0], "../"), strings.TrimPrefix(pair[1], "../"))
		}
	}
}

func TestValuesRejected(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]any
		want string
	}{
		{"misspelt value", map[string]any{"gateway": map[string]any{"replicaz": 3}}, "replicaz"},
		{"push secret with symbols", map[string]any{"secrets": map[string]any{"pushSecret": "not/a/path/element!"}}, "pushSecret"},
		{"display number not E.164", map[string]any{"config": map[string]any{"displayNumber": "075500000001"}}, "displayNumber"},
		{"redis URL scheme", map[string]any{"redis": map[string]any{"url": "tcp://redis:6379"}}, "url"},
		{"worker grace shorter than its shutdown", map[string]any{"worker": map[string]any{"terminationGracePeriodSeconds": 30}}, "worker.terminationGracePeriodSeconds (30) must be at least"},
		{"gateway grace shorter than its drain", map[string]any{"config": map[string]any{"shutdownTimeoutSeconds": 40}, "worker": map[string]any{"terminationGracePeriodSeconds": 60}}, "gateway.terminationGracePeriodSeconds (35) must be at least"},
		{"secret values beside an existing Secret", map[string]any{"secrets": map[string]any{"existingSecret": "mine", "appSecret": "x"}}, "leave the secrets.* values empty"},
		{"redis.url beside an existing Secret", map[string]any{"secrets": map[string]any{"existingSecret": "mine"}, "redis": map[string]any{"url": "redis://r:6379/0"}}, "redis.url is ignored"},
		{"one port for API and admin", map[string]any{"gateway": map[string]any{"adminPort": 8080}}, "must differ"},
		{"KEDA without a Prometheus", map[string]any{"worker": map[string]any{"keda": map[string]any{"enabled": true}}}, "serverAddress is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(chartDir, Options{Values: tt.set, APIVersions: allCRDs})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Render = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestNotes(t *testing.T) {
	tests := []struct {
		scenario scenario
		want     []string
		wantNot  []string
	}{
		{scenarios[0], []string{"WARNINGS", "config.providerURL is empty", "redis.url is empty", "secrets.appKey, appSecret, pushSecret and apiTokens are required", "1 worker pod(s) can dial at the full cap"}, nil},
		{scenarios[2], []string{"Simulator:", "KEDA scales the workers", "https://voicequeue.staging.example.com/callbacks/<push-secret>/status", "The Ingress sends voicequeue.staging.example.com/callbacks, voicequeue.staging.example.com/v1 to the gateway"}, []string{"WARNINGS"}},
		{scenarios[3], []string{"does not serve keda.sh/v1alpha1", "no ServiceMonitor was made", "no PrometheusRule was made"}, nil},
		{scenario{name: "KEDA far past the ceiling", valuesFiles: []string{"testdata/values-all.yaml"}, apis: allCRDs,
			set: map[string]any{"worker": map[string]any{"keda": map[string]any{"maxReplicas": 40}}}},
			[]string{"WARNING: worker.keda.maxReplicas=40 is far above that"}, nil},
		{scenario{name: "a high call rate needs more workers", valuesFiles: []string{"testdata/values-all.yaml"}, apis: allCRDs,
			set: map[string]any{"config": map[string]any{"callRate": 200}, "worker": map[string]any{"keda": map[string]any{"maxReplicas": 12}}}},
			[]string{"At 200 calls/s", "10 worker pod(s) can dial at the full cap"}, []string{"far above"}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario.name, func(t *testing.T) {
			notes := tt.scenario.render(t).Notes
			for _, w := range tt.want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES lack %q:\n%s", w, notes)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(notes, w) {
					t.Errorf("NOTES contain %q:\n%s", w, notes)
				}
			}
		})
	}
}
