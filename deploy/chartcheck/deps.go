package chartcheck

import (
	_ "helm.sh/helm/v3/pkg/chart/loader"
	_ "helm.sh/helm/v3/pkg/chartutil"
	_ "helm.sh/helm/v3/pkg/engine"
	_ "helm.sh/helm/v3/pkg/action"
	_ "k8s.io/api/apps/v1"
	_ "k8s.io/apimachinery/pkg/runtime/serializer/json"
	_ "github.com/prometheus/prometheus/model/rulefmt"
	_ "github.com/prometheus/prometheus/promql/parser"
	_ "sigs.k8s.io/yaml"
)
