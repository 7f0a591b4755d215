package queue

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/voice"
)

// Metrics are the job and dial metrics. A nil *Metrics records nothing, so components can run
// without metrics in tests.
type Metrics struct {
	submittedVec   *prometheus.CounterVec
	endedVec       *prometheus.CounterVec
	timeToDialVec  *prometheus.HistogramVec
	providerDurVec *prometheus.HistogramVec
	lateness       prometheus.Histogram
	providerResVec *prometheus.CounterVec
	retriesVec     *prometheus.CounterVec
	pausedVec      *prometheus.CounterVec
}

var (
	allKinds  = []Kind{KindNotify, KindVerify, KindClick2Call}
	allQueues = []string{QueueVerify, QueueNotify, QueueBulk}
	// finalStates are the label values of voicequeue_jobs_ended_total.
	finalStates = []jobstatus.State{
		jobstatus.StateCompleted, jobstatus.StateNoAnswer, jobstatus.StateBusy, jobstatus.StateRejected,
		jobstatus.StateFailed, jobstatus.StateExpired, jobstatus.StateCanceled, jobstatus.StateThrottled,
		jobstatus.StateUnknown,
	}
	// RetryReasons are the bounded reasons of voicequeue_job_retries_total.
	RetryReasons = []string{"transient", "rate", "rate_limit", "slots", "window", "callee_cap", "breaker", "dial_guard", "redial", "late_token"}
)

// NewMetrics registers the job metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		submittedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "voicequeue", Name: "jobs_submitted_total",
			Help: "Jobs accepted from producers, by kind and queue.",
		}, []string{"kind", "queue"}),
		endedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "voicequeue", Name: "jobs_ended_total",
			Help: "Jobs that reached a final state, by kind and state.",
		}, []string{"kind", "state"}),
		timeToDialVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "voicequeue", Name: "job_time_to_dial_seconds",
			Help:    "Time from submission (or schedule time) to the provider accepting the call, by kind.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800},
		}, []string{"kind"}),
		providerDurVec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "voicequeue", Name: "provider_request_duration_seconds",
			Help:    "Duration of provider API requests, by API.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"api"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "voicequeue", Name: "dial_token_lateness_seconds",
			Help: "How late a provider request leaves after its rate token's instant (measured from " +
				"when the token was asked for, so an upper bound). Past half the rate margin the job is put back (late_token).",
			Buckets: []float64{.001, .002, .005, .01, .015, .02, .03, .05, .1, .25, 1},
		}),
		providerResVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "voicequeue", Name: "provider_requests_total",
			Help: "Provider API replies, by API, class and result code (codes outside the known table are \"other\").",
		}, []string{"api", "class", "code"}),
		retriesVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "voicequeue", Name: "job_retries_total",
			Help: "Jobs sent back to the queue for a later try, by reason.",
		}, []string{"reason"}),
		pausedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "voicequeue", Name: "queue_pauses_total",
			Help: "Queues paused after an account-class provider reply, by queue.",
		}, []string{"queue"}),
	}
	reg.MustRegister(m.submittedVec, m.endedVec, m.timeToDialVec, m.providerDurVec, m.lateness, m.providerResVec, m.retriesVec, m.pausedVec)
	for _, k := range allKinds {
		for _, q := range allQueues {
			m.submittedVec.WithLabelValues(string(k), q)
		}
		for _, s := range finalStates {
			m.endedVec.WithLabelValues(string(k), string(s))
		}
		m.timeToDialVec.WithLabelValues(string(k))
	}
	for _, api := range []string{"notify", "verify", "click2call"} {
		m.providerDurVec.WithLabelValues(api)
		m.providerResVec.WithLabelValues(api, string(voice.ClassAccepted), voice.CodeSuccess)
	}
	for _, r := range RetryReasons {
		m.retriesVec.WithLabelValues(r)
	}
	for _, q := range allQueues {
		m.pausedVec.WithLabelValues(q)
	}
	return m
}

func (m *Metrics) submitted(k Kind, queue string) {
	if m != nil {
		m.submittedVec.WithLabelValues(string(k), queue).Inc()
	}
}

// Ended counts a job reaching a final state. The callback handlers call it too.
func (m *Metrics) Ended(kind string, state jobstatus.State) { m.ended(Kind(kind), string(state)) }

func (m *Metrics) ended(k Kind, state string) {
	if m != nil {
		m.endedVec.WithLabelValues(string(k), state).Inc()
	}
}

func (m *Metrics) dialled(k Kind, since time.Time, now time.Time) {
	if m != nil && !since.IsZero() {
		m.timeToDialVec.WithLabelValues(string(k)).Observe(now.Sub(since).Seconds())
	}
}

func (m *Metrics) provider(api string, class voice.Class, code string, d time.Duration) {
	if m == nil {
		return
	}
	if _, known := voice.LookupCode(code); !known {
		code = "other"
	}
	m.providerDurVec.WithLabelValues(api).Observe(d.Seconds())
	m.providerResVec.WithLabelValues(api, string(class), code).Inc()
}

func (m *Metrics) tokenLateness(d time.Duration) {
	if m != nil {
		m.lateness.Observe(max(d, 0).Seconds())
	}
}

func (m *Metrics) retry(reason string) {
	if m != nil {
		m.retriesVec.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) pause(queue string) {
	if m != nil {
		m.pausedVec.WithLabelValues(queue).Inc()
	}
}
