package app_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/config"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// deployDir holds the dashboards and rule files that operators install.
const deployDir = "../../deploy"

// promQL parses the expressions of the dashboards and rules as Prometheus would.
var promQL = parser.NewParser(parser.Options{})

// prometheusNames are series that Prometheus makes itself rather than scraping them.
var prometheusNames = map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true}

// binaryRegistries builds the gateway's and the worker's registries as cmd/gateway and cmd/worker
// do: NewRegistry, NewMetrics and the component's constructor (which registers the rest, such as
// the gateway's queue collector), all on one Redis client.
func binaryRegistries(t *testing.T) map[string]*prometheus.Registry {
	t.Helper()
	_, rdb := testredis.Mini(t)
	env := map[string]string{
		"REDIS_URL":                 "redis://127.0.0.1:6379/0", // not dialled: the test passes its own client
		"VOICEQUEUE_PROVIDER_URL":   "https://provider.invalid:443",
		"VOICEQUEUE_APP_KEY":        "metrics-test-app-key",
		"VOICEQUEUE_APP_SECRET":     "metrics-test-app-secret",
		"VOICEQUEUE_DISPLAY_NUMBER": "+8675500000001",
		"VOICEQUEUE_PUSH_BASE_URL":  "https://push.invalid",
		"VOICEQUEUE_PUSH_SECRET":    "metricsTestPushSecret0123",
		"VOICEQUEUE_API_TOKEN":      "metrics-test-producer-token",
		"VOICEQUEUE_SPOOL_DIR":      "off", // the spool's metrics are registered all the same
	}
	regs := map[string]*prometheus.Registry{}
	for _, role := range []string{"gateway", "worker"} {
		set := config.NewSet(flag.NewFlagSet(role, flag.ContinueOnError), func(k string) string { return env[k] })
		cfg := app.Bind(set, role)
		if err := set.Parse(nil); err != nil {
			t.Fatalf("%s config: %v", role, err)
		}
		reg := app.NewRegistry()
		deps := app.Deps{Redis: rdb, Registry: reg}
		var err error
		if role == "gateway" {
			_, err = app.NewGateway(cfg, deps, app.NewMetrics(reg), false)
		} else {
			_, err = app.NewWorker(cfg, deps, app.NewMetrics(reg), app.WorkerOptions{})
		}
		if err != nil {
			t.Fatalf("build the %s: %v", role, err)
		}
		regs[role] = reg
	}
	return regs
}

func TestBinaryMetricsLint(t *testing.T) {
	for role, reg := range binaryRegistries(t) {
		t.Run(role, func(t *testing.T) {
			problems, err := testutil.GatherAndLint(reg)
			if err != nil {
				t.Fatalf("gather: %v", err)
			}
			for _, p := range problems {
				t.Errorf("lint: %s: %s", p.Metric, p.Text)
			}
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range families {
				if name := f.GetName(); !strings.HasPrefix(name, "voicequeue_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
					t.Errorf("metric %s lacks the voicequeue_ namespace", name)
				}
			}
		})
	}
}

// exportedNames returns every series name the registries export: histograms and summaries as
// their _bucket, _sum and _count series (and the bare name for a summary's quantiles).
func exportedNames(t *testing.T, regs map[string]*prometheus.Registry) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, reg := range regs {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			n := f.GetName()
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
			case dto.MetricType_SUMMARY:
				names[n], names[n+"_sum"], names[n+"_count"] = true, true, true
			default:
				names[n] = true
			}
		}
	}
	return names
}

func TestDashboardsAndRulesUseExportedMetrics(t *testing.T) {
	exported := exportedNames(t, binaryRegistries(t))
	uses := map[string][]string{} // metric name → where it is used
	recorded := map[string]bool{}

	rules, _ := filepath.Glob(filepath.Join(deployDir, "prometheus", "*.yml"))
	dashboards, _ := filepath.Glob(filepath.Join(deployDir, "grafana", "*.json"))
	if len(rules) == 0 || len(dashboards) == 0 {
		t.Fatalf("found %d rule files and %d dashboards under %s, want both", len(rules), len(dashboards), deployDir)
	}
	for _, path := range rules {
		f := readRuleFile(t, path)
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recorded[r.Record] = true
				}
				where := path + ": " + r.Alert + r.Record
				for _, n := range metricNames(t, where, r.Expr) {
					uses[n] = append(uses[n], where)
				}
			}
		}
	}
	for _, path := range dashboards {
		for _, q := range dashboardQueries(t, path) {
			for _, n := range metricNames(t, path+": "+q.where, q.expr) {
				uses[n] = append(uses[n], path+": "+q.where)
			}
		}
	}
	if len(uses) < 10 {
		t.Fatalf("only %d metric names found in the dashboards and rules: the extraction is broken", len(uses))
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range uses {
			if !yield(n) {
				return
			}
		}
	}) {
		if !exported[name] && !recorded[name] && !prometheusNames[name] {
			t.Errorf("%s is used but no binary exports it; used in:\n\t%s", name, strings.Join(uses[name], "\n\t"))
		}
	}
}

// ruleFile is the Prometheus rule file format; unknown fields fail the decoding.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Limit    int    `yaml:"limit"`
		Rules    []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRuleFile(t *testing.T, path string) ruleFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

func TestRuleFilesParse(t *testing.T) {
	rules, _ := filepath.Glob(filepath.Join(deployDir, "prometheus", "*.yml"))
	if len(rules) == 0 {
		t.Fatalf("no rule files under %s/prometheus", deployDir)
	}
	for _, path := range rules {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f := readRuleFile(t, path)
			if len(f.Groups) == 0 {
				t.Fatal("no rule groups")
			}
			groups, alerts := map[string]bool{}, map[string]bool{}
			for _, g := range f.Groups {
				if g.Name == "" || groups[g.Name] {
					t.Errorf("group name %q is empty or repeated", g.Name)
				}
				groups[g.Name] = true
				for _, r := range g.Rules {
					name := r.Alert + r.Record
					if (r.Alert == "") == (r.Record == "") {
						t.Errorf("group %s: a rule needs exactly one of alert and record (%q)", g.Name, name)
					}
					if _, err := promQL.ParseExpr(r.Expr); err != nil {
						t.Errorf("%s: expr does not parse: %v", name, err)
					}
					for _, d := range []string{r.For, r.KeepFiringFor, g.Interval} {
						if _, err := model.ParseDuration(d); d != "" && err != nil {
							t.Errorf("%s: duration %q: %v", name, d, err)
						}
					}
					if r.Alert == "" {
						continue
					}
					if alerts[r.Alert] {
						t.Errorf("alert %s is defined twice", r.Alert)
					}
					alerts[r.Alert] = true
					if s := r.Labels["severity"]; s != "critical" && s != "warning" {
						t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
					}
					if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
						t.Errorf("%s: needs a summary and a description", r.Alert)
					}
				}
			}
		})
	}
}

type dashboardQuery struct{ where, expr string }

// grafanaVarRE finds Grafana's interval variables, which are not PromQL; other variables only
// appear inside label-matcher strings, where they parse as they are.
var grafanaVarRE = regexp.MustCompile(`\$(__rate_interval|__interval|__range|\{__rate_interval\}|\{__interval\}|\{__range\})`)

// labelValuesRE reads the metric of a label_values(metric, label) variable query.
var labelValuesRE = regexp.MustCompile(`^label_values\(\s*([^,]+?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$`)

// dashboardQueries returns every PromQL expression of a dashboard: panel targets and variable
// queries (label_values(…) is reduced to its series selector).
func dashboardQueries(t *testing.T, path string) []dashboardQuery {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []dashboardQuery
	var walk func(raw json.RawMessage)
	walk = func(raw json.RawMessage) {
		var p struct {
			Title   string            `json:"title"`
			Panels  []json.RawMessage `json:"panels"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("%s: panel: %v", path, err)
		}
		for _, tg := range p.Targets {
			out = append(out, dashboardQuery{"panel " + p.Title + " " + tg.RefID, grafanaVarRE.ReplaceAllString(tg.Expr, "5m")})
		}
		for _, c := range p.Panels {
			walk(c)
		}
	}
	for _, p := range dash.Panels {
		walk(p)
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("%s: variable %s: %v", path, v.Name, err)
			}
		}
		m := labelValuesRE.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(metric, label)", path, v.Name, q.Query)
			continue
		}
		out = append(out, dashboardQuery{"variable " + v.Name, m[1]})
	}
	if len(out) == 0 {
		t.Fatalf("%s: no queries found", path)
	}
	return out
}

// metricNames parses expr and returns the metric names its selectors use.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := promQL.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && name == "" {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%s: a selector without a metric name: %s", where, vs)
			return nil
		}
		names = append(names, name)
		return nil
	})
	return names
}
