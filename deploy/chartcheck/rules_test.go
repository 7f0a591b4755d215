package chartcheck

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// TestRuleFilesValidate runs Prometheus' own rule-file validation (promtool's): YAML shape,
// PromQL, durations, label names and the annotation templates.
func TestRuleFilesValidate(t *testing.T) {
	files, _ := filepath.Glob("../prometheus/*.yml")
	files = append(files, chartDir+"/files/voicequeue-rules.yml")
	if len(files) < 2 {
		t.Fatalf("rule files: %v", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			groups, errs := rulefmt.ParseFile(f, false, model.LegacyValidation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
			for _, err := range errs {
				t.Error(err)
			}
			if groups != nil && len(groups.Groups) == 0 {
				t.Error("no rule groups")
			}
		})
	}
}

// grafanaIntervalRE finds Grafana's interval variables, which PromQL does not know.
var grafanaIntervalRE = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)

// TestDashboardValid: the dashboard is JSON Grafana imports (unique panel ids, panels inside the
// 24-column grid, every query on the templated Prometheus data source) and every query parses as
// PromQL once Grafana's interval variables are filled in.
func TestDashboardValid(t *testing.T) {
	var dash struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
				Type string `json:"type"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				Type string `json:"type"`
				UID  string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(readFile(t, dashboard), &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("dashboard needs a uid and a title")
	}
	hasDS := false
	for _, v := range dash.Templating.List {
		hasDS = hasDS || (v.Name == "datasource" && v.Type == "datasource")
	}
	if !hasDS {
		t.Error("no datasource variable: the dashboard would be tied to one Prometheus")
	}
	p := parser.NewParser(parser.Options{})
	ids := map[int]bool{}
	queries := 0
	for _, panel := range dash.Panels {
		if ids[panel.ID] {
			t.Errorf("panel id %d repeated", panel.ID)
		}
		ids[panel.ID] = true
		if g := panel.GridPos; g.X < 0 || g.W <= 0 || g.X+g.W > 24 || g.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", panel.Title, g)
		}
		if panel.Type == "row" {
			continue
		}
		if panel.Datasource == nil || panel.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %+v, want ${datasource}", panel.Title, panel.Datasource)
		}
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for _, tg := range panel.Targets {
			queries++
			if _, err := p.ParseExpr(grafanaIntervalRE.ReplaceAllString(tg.Expr, "5m")); err != nil {
				t.Errorf("panel %q: %q: %v", panel.Title, tg.Expr, err)
			}
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries found", queries)
	}
}
