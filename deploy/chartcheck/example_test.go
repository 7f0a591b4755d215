package chartcheck_test

import (
	"fmt"

	"github.com/voicequeue/voicequeue/deploy/chartcheck"
)

// Render the chart as `helm install --dry-run=client` would, on a cluster with
// prometheus-operator, and list what it makes.
func ExampleRender() {
	rel, err := chartcheck.Render("../helm/voicequeue", chartcheck.Options{
		Values: map[string]any{
			"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
		},
		APIVersions: []string{chartcheck.MonitoringAPI},
	})
	if err != nil {
		panic(err)
	}
	for _, o := range rel.Objects {
		fmt.Println(o.Kind, o.Name)
	}
	// Output:
	// PodDisruptionBudget vq-voicequeue-gateway
	// PodDisruptionBudget vq-voicequeue-worker
	// ServiceAccount vq-voicequeue
	// Secret vq-voicequeue
	// ConfigMap vq-voicequeue
	// Service vq-voicequeue-gateway
	// Service vq-voicequeue-worker-metrics
	// Deployment vq-voicequeue-gateway
	// Deployment vq-voicequeue-worker
	// HorizontalPodAutoscaler vq-voicequeue-gateway
	// ServiceMonitor vq-voicequeue
}
