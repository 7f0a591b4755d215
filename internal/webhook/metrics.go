package webhook

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Delivery results, the values of the result label.
const (
	ResultDelivered = "delivered" // a 2xx answer
	ResultRetry     = "retry"     // a transient failure; asynq tries again
	ResultFailed    = "failed"    // a permanent failure, or the last attempt failed
	ResultRefused   = "refused"   // the URL or an address it led to is refused by the Guard
)

// Metrics are the webhook delivery metrics. A nil *Metrics records nothing.
type Metrics struct {
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered), with every result label pre-set to 0:
//
//	voicequeue_webhook_deliveries_total{result="delivered|retry|failed|refused"}
//	voicequeue_webhook_delivery_duration_seconds  (one HTTP attempt, redirects included)
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "voicequeue",
			Subsystem: "webhook",
			Name:      "deliveries_total",
			Help:      "Webhook delivery attempts by result: delivered, retry, failed (permanent or out of attempts), refused (address not allowed).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "voicequeue",
			Subsystem: "webhook",
			Name:      "delivery_duration_seconds",
			Help:      "Time of one webhook delivery attempt over HTTP, until the response status (or error).",
			Buckets:   []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, r := range []string{ResultDelivered, ResultRetry, ResultFailed, ResultRefused} {
		m.deliveries.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.duration)
	}
	return m
}

func (m *Metrics) result(r string) {
	if m != nil {
		m.deliveries.WithLabelValues(r).Inc()
	}
}

func (m *Metrics) observe(d time.Duration) {
	if m != nil {
		m.duration.Observe(d.Seconds())
	}
}
