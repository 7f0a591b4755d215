package callback

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// Metrics count pushes and the call durations their CDRs report. A nil *Metrics records nothing.
type Metrics struct {
	pushes   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the push metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "voicequeue", Name: "pushes_received_total",
			Help: "Provider pushes received, by type (status, fee; one per CDR record) and outcome.",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "voicequeue", Name: "call_duration_seconds",
			Help:    "Talk time reported by CDRs, by call outcome (zero for unanswered calls).",
			Buckets: []float64{1, 5, 10, 20, 30, 60, 120, 300, 600, 1800},
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.pushes, m.duration)
	for _, typ := range []string{"status", "fee"} {
		for _, o := range []string{resultAccepted, resultDuplicate, resultForged, resultUnknownJob, resultStale, "malformed", "error", "spooled"} {
			m.pushes.WithLabelValues(typ, o)
		}
	}
	for _, o := range []voice.Outcome{voice.OutcomeCompleted, voice.OutcomeBusy, voice.OutcomeNoAnswer,
		voice.OutcomeRejected, voice.OutcomeInvalidNumber, voice.OutcomeUnreachable, voice.OutcomeNetworkFailure,
		voice.OutcomeBarred, voice.OutcomePlatformPolicy, voice.OutcomePlaybackFailure} {
		m.duration.WithLabelValues(string(o))
	}
	return m
}

func (m *Metrics) push(typ, outcome string) {
	if m != nil {
		m.pushes.WithLabelValues(typ, outcome).Inc()
	}
}

func (m *Metrics) callDuration(d time.Duration, o voice.Outcome) {
	if m != nil {
		m.duration.WithLabelValues(string(o)).Observe(d.Seconds())
	}
}
