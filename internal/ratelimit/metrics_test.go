package ratelimit

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	NewMetrics(reg)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	names := []string{
		"voicequeue_ratelimit_tokens_total", "voicequeue_ratelimit_wait_seconds",
		"voicequeue_ratelimit_effective_rate_calls_per_second", "voicequeue_ratelimit_configured_rate_calls_per_second",
		"voicequeue_calls_in_flight", "voicequeue_jobs_throttled_total", "voicequeue_jobs_deferred_total",
		"voicequeue_ratelimit_errors_total",
	}
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n == 0 {
		t.Errorf("GatherAndCount = %d, %v", n, err)
	}
}

func TestMetricsPresetAndBoundedLabels(t *testing.T) {
	m := NewMetrics(prometheus.NewPedanticRegistry())
	presets := []struct {
		name string
		c    prometheus.Collector
		want int
	}{
		{"tokens: 3 priorities × granted/denied", m.tokens, 6},
		{"deferred: window, rate, slots, other", m.deferred, 4},
		{"errors: limiter, slots, capacity, callee, adaptive", m.errors, 5},
		{"throttled: the default caps' 4 reasons and other", m.throttled, 5},
	}
	for _, p := range presets {
		if got := testutil.CollectAndCount(p.c); got != p.want {
			t.Errorf("%s: %d series, want %d", p.name, got, p.want)
		}
	}

	m.JobThrottled("callee_cap_3_per_24h")
	m.JobThrottled("+8613800000001") // never a label value
	m.KnowCalleeCaps(map[string][]CalleeCap{"notify": {{Max: 2, Window: 12 * time.Hour}}})
	m.JobThrottled("callee_cap_2_per_12h")
	m.JobDeferred(DeferWindow)
	m.JobDeferred("job-42")
	counts := []struct {
		name string
		c    prometheus.Counter
		want float64
	}{
		{"default cap reason", m.throttled.WithLabelValues("callee_cap_3_per_24h"), 1},
		{"configured cap reason", m.throttled.WithLabelValues("callee_cap_2_per_12h"), 1},
		{"unknown throttle reason", m.throttled.WithLabelValues("other"), 1},
		{"window", m.deferred.WithLabelValues(DeferWindow), 1},
		{"unknown deferral reason", m.deferred.WithLabelValues("other"), 1},
	}
	for _, c := range counts {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if got := testutil.CollectAndCount(m.throttled); got != 6 {
		t.Errorf("throttled series = %d, want 6 (no series for unknown reasons)", got)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.JobThrottled("x")
	m.JobDeferred(DeferRate)
	m.KnowCalleeCaps(DefaultCalleeCaps())
	m.token(PriorityHigh, true)
	m.waited(PriorityHigh, time.Second)
	m.setInFlight(3)
	m.limiterError("limiter")
}
