package breaker

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the breaker's metrics, as seen by this process. A nil *Metrics records nothing.
type Metrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	rejections  prometheus.Counter
}

// NewMetrics registers the breaker metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "voicequeue", Subsystem: "breaker", Name: "state",
			Help: "Provider circuit breaker state as this process sees it: 1 for the current state (closed, open, half_open).",
		}, []string{"state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "voicequeue", Subsystem: "breaker", Name: "transitions_total",
			Help: "Provider circuit breaker state changes seen by this process, by the state entered.",
		}, []string{"to"}),
		rejections: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "voicequeue", Subsystem: "breaker", Name: "rejections_total",
			Help: "Dials held back because the provider circuit breaker was open (or its probe taken).",
		}),
	}
	reg.MustRegister(m.state, m.transitions, m.rejections)
	for _, s := range states {
		m.state.WithLabelValues(string(s))
		m.transitions.WithLabelValues(string(s))
	}
	m.state.WithLabelValues(string(StateClosed)).Set(1)
	return m
}

func (m *Metrics) transition(to State) {
	if m == nil {
		return
	}
	for _, s := range states {
		v := 0.0
		if s == to {
			v = 1
		}
		m.state.WithLabelValues(string(s)).Set(v)
	}
	m.transitions.WithLabelValues(string(to)).Inc()
}

func (m *Metrics) rejected() {
	if m != nil {
		m.rejections.Inc()
	}
}
