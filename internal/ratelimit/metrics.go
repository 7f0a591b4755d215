package ratelimit

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons for voicequeue_jobs_deferred_total: a job put off without using an attempt.
const (
	DeferWindow = "window" // outside the callee's calling window
	DeferRate   = "rate"   // no rate token within the short wait
	DeferSlots  = "slots"  // no free concurrent-call slot
)

// reasonOther stands in for any label value not known in advance, so labels stay bounded.
const reasonOther = "other"

// Metrics are the call-policy metrics. The policies in this package update the token, wait,
// rate, in-flight and error metrics themselves; the worker, which alone knows a job's fate,
// reports deferred and throttled jobs with JobDeferred and JobThrottled. A nil *Metrics is
// valid and records nothing.
type Metrics struct {
	tokens     *prometheus.CounterVec
	wait       *prometheus.HistogramVec
	effective  prometheus.Gauge
	configured prometheus.Gauge
	inFlight   prometheus.Gauge
	maxCalls   prometheus.Gauge
	throttled  *prometheus.CounterVec
	deferred   *prometheus.CounterVec
	errors     *prometheus.CounterVec

	mu           sync.Mutex
	throttleSeen map[string]bool // reasons that may be used as label values
}

// NewMetrics creates the metrics and registers them on reg (nil: not registered). Known label
// values start at 0, including the throttle reasons of DefaultCalleeCaps; call KnowCalleeCaps
// for configured caps.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "voicequeue"
	m := &Metrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: "ratelimit", Name: "tokens_total",
			Help: "Global call-rate tokens asked for, by job priority and result (granted or denied).",
		}, []string{"priority", "result"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: "ratelimit", Name: "wait_seconds",
			Help:    "Time a worker spent in Limiter.Wait, whether it got a token or gave up.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5},
		}, []string{"priority"}),
		effective: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: "ratelimit", Name: "effective_rate_calls_per_second",
			Help: "Call rate currently enforced (the configured cap, lowered after provider rate replies).",
		}),
		configured: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: "ratelimit", Name: "configured_rate_calls_per_second",
			Help: "Configured call-rate cap of the account.",
		}),
		maxCalls: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: "ratelimit", Name: "max_concurrent_calls",
			Help: "The configured concurrent-call cap of the account (0 = none).",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "calls_in_flight",
			Help: "Concurrent-call slots held across all workers, as last seen by this process (aggregate with max, not sum).",
		}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "jobs_throttled_total",
			Help: "Jobs stopped by a per-callee frequency cap, by cap.",
		}, []string{"reason"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "jobs_deferred_total",
			Help: "Jobs put off without using an attempt, by reason (window, rate, slots).",
		}, []string{"reason"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: "ratelimit", Name: "errors_total",
			Help: "Call-policy checks that failed closed because Redis was unavailable, by policy.",
		}, []string{"op"}),
		throttleSeen: map[string]bool{reasonOther: true},
	}
	for _, p := range []Priority{PriorityLow, PriorityNormal, PriorityHigh} {
		m.tokens.WithLabelValues(p.String(), "granted")
		m.tokens.WithLabelValues(p.String(), "denied")
		m.wait.WithLabelValues(p.String())
	}
	for _, r := range []string{DeferWindow, DeferRate, DeferSlots, reasonOther} {
		m.deferred.WithLabelValues(r)
	}
	for _, op := range []string{"limiter", "slots", "capacity", "callee", "adaptive"} {
		m.errors.WithLabelValues(op)
	}
	m.throttled.WithLabelValues(reasonOther)
	m.KnowCalleeCaps(DefaultCalleeCaps())
	if reg != nil {
		reg.MustRegister(m.tokens, m.wait, m.effective, m.configured, m.inFlight, m.maxCalls, m.throttled, m.deferred, m.errors)
	}
	return m
}

// SetMaxConcurrent exports the configured concurrent-call cap, so dashboards can draw calls in
// flight against it.
func (m *Metrics) SetMaxConcurrent(n int) {
	if m != nil {
		m.maxCalls.Set(float64(n))
	}
}

// KnowCalleeCaps declares the throttle reasons of configured caps (see Decision.Reason) and
// starts them at 0. JobThrottled reports any reason not declared as "other".
func (m *Metrics) KnowCalleeCaps(caps map[string][]CalleeCap) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cs := range caps {
		for _, c := range cs {
			r := c.Reason()
			m.throttleSeen[r] = true
			m.throttled.WithLabelValues(r)
		}
	}
}

// JobThrottled counts a job ended by a per-callee cap; reason is Decision.Reason.
func (m *Metrics) JobThrottled(reason string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if !m.throttleSeen[reason] {
		reason = reasonOther
	}
	m.mu.Unlock()
	m.throttled.WithLabelValues(reason).Inc()
}

// JobDeferred counts a job put off without using an attempt: DeferWindow, DeferRate or
// DeferSlots (anything else counts as "other").
func (m *Metrics) JobDeferred(reason string) {
	if m == nil {
		return
	}
	switch reason {
	case DeferWindow, DeferRate, DeferSlots:
	default:
		reason = reasonOther
	}
	m.deferred.WithLabelValues(reason).Inc()
}

func (m *Metrics) token(p Priority, granted bool) {
	if m == nil {
		return
	}
	result := "denied"
	if granted {
		result = "granted"
	}
	m.tokens.WithLabelValues(p.String(), result).Inc()
}

func (m *Metrics) waited(p Priority, d time.Duration) {
	if m == nil {
		return
	}
	m.wait.WithLabelValues(p.String()).Observe(d.Seconds())
}

func (m *Metrics) setEffectiveRate(r float64) {
	if m != nil {
		m.effective.Set(r)
	}
}

func (m *Metrics) setConfiguredRate(r float64) {
	if m != nil {
		m.configured.Set(r)
	}
}

func (m *Metrics) setInFlight(n int64) {
	if m != nil {
		m.inFlight.Set(float64(n))
	}
}

func (m *Metrics) limiterError(op string) {
	if m != nil {
		m.errors.WithLabelValues(op).Inc()
	}
}
