package spool

import "github.com/prometheus/client_golang/prometheus"

// Results, the values of the result label of voicequeue_spool_pushes_total.
const (
	ResultSpooled        = "spooled"         // appended and synced
	ResultReplayed       = "replayed"        // applied by Replay
	ResultDroppedCorrupt = "dropped_corrupt" // torn or corrupt data found on disk and dropped
	ResultRefusedFull    = "refused_full"    // Append refused: over MaxBytes or disk full
	ResultSkipped        = "skipped"         // apply returned ErrSkip: dropped without effect
)

// kindUnknown labels dropped data whose kind can't be read.
const kindUnknown = "unknown"

// Metrics are the spool's metrics. A nil *Metrics records nothing.
type Metrics struct {
	pushes  *prometheus.CounterVec
	bytes   prometheus.Gauge
	records prometheus.Gauge
}

// NewMetrics registers the spool metrics on reg, with the gateway's kinds ("status", "fee")
// pre-set.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "voicequeue", Subsystem: "spool", Name: "pushes_total",
			Help: "Pushes through the local spool, by kind and result (spooled, replayed, dropped_corrupt, refused_full, skipped).",
		}, []string{"kind", "result"}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "voicequeue", Subsystem: "spool", Name: "bytes",
			Help: "Bytes of spool segment files on disk.",
		}),
		records: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "voicequeue", Subsystem: "spool", Name: "records",
			Help: "Records in the spool waiting to be replayed.",
		}),
	}
	reg.MustRegister(m.pushes, m.bytes, m.records)
	for _, kind := range []string{"status", "fee"} {
		for _, r := range []string{ResultSpooled, ResultReplayed, ResultRefusedFull, ResultSkipped} {
			m.pushes.WithLabelValues(kind, r)
		}
	}
	m.pushes.WithLabelValues(kindUnknown, ResultDroppedCorrupt)
	return m
}

func (m *Metrics) push(kind, result string) {
	if m != nil {
		m.pushes.WithLabelValues(kind, result).Inc()
	}
}

func (m *Metrics) size(bytes int64, records int) {
	if m != nil {
		m.bytes.Set(float64(bytes))
		m.records.Set(float64(records))
	}
}
