package voicesim

import (
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// CallRecord is one accepted call as the simulator saw it, with every push it sent. Numbers are
// in full: the simulator is a test double, and its records are for tests and operators.
type CallRecord struct {
	SessionID     string         `json:"session_id"`
	API           string         `json:"api"` // APINotify, APIVerify or APIClick2Call
	AcceptedAt    time.Time      `json:"accepted_at"`
	DisplayNbr    string         `json:"display_nbr"`
	CallerNbr     string         `json:"caller_nbr,omitempty"` // click-to-call leg A
	CalleeNbr     string         `json:"callee_nbr"`
	UserData      string         `json:"user_data,omitempty"`
	StatusURL     string         `json:"status_url,omitempty"`
	FeeURL        string         `json:"fee_url,omitempty"`
	Scenario      Scenario       `json:"scenario"`
	ReplyHeld     bool           `json:"reply_held,omitempty"` // a "0408" call: no reply was sent
	Ended         bool           `json:"ended"`
	Result        string         `json:"result,omitempty"` // ResultCompleted, a failed Scenario, ResultStopped…
	StateCode     *int           `json:"state_code,omitempty"`
	EndedAt       time.Time      `json:"ended_at,omitzero"` // simulated callEndTime
	RecordingFile string         `json:"recording_file,omitempty"`
	Events        []PushRecord   `json:"events"`        // status events, in the order sent
	CDR           *voice.FeeInfo `json:"cdr,omitempty"` // the call's CDR
	CDRPushes     []PushRecord   `json:"cdr_pushes"`    // every push that carried the CDR
}

// PushRecord is one status event or one CDR push attempt.
type PushRecord struct {
	Event     voice.EventType `json:"event"`
	EventTime time.Time       `json:"event_time,omitzero"` // simulated time of a status event
	StateCode *int            `json:"state_code,omitempty"`
	DigitInfo *string         `json:"digit_info,omitempty"`
	Attempt   int             `json:"attempt,omitempty"` // CDR: 0 the first push, 1… re-pushes
	Records   int             `json:"records,omitempty"` // CDR: records in the push
	Pushed    bool            `json:"pushed"`            // false when the request had no URL
	SentAt    time.Time       `json:"sent_at,omitzero"`
	Status    int             `json:"status,omitempty"` // the receiver's HTTP status
	Delivered bool            `json:"delivered"`
	Duplicate bool            `json:"duplicate,omitempty"` // an injected duplicate
	Error     string          `json:"error,omitempty"`
}

// Stats are the simulator's counters since New or the last Reset.
type Stats struct {
	Accepted      int            `json:"accepted"`
	Active        int            `json:"active"` // ports in use now
	AcceptedByAPI map[string]int `json:"accepted_by_api"`
	// CallsPerCallee counts accepted calls per calleeNbr.
	CallsPerCallee map[string]int `json:"calls_per_callee"`
	// CallsPerSecond counts accepted calls per calendar second (Config.Now), oldest first.
	CallsPerSecond []SecondCount `json:"calls_per_second"`
	// MaxPerSecond is the largest CallsPerSecond count; MaxInAnySecond the most calls accepted
	// within any sliding one-second window, which is what a rate cap must bound.
	MaxPerSecond   int `json:"max_per_second"`
	MaxInAnySecond int `json:"max_in_any_second"`
	// Refusals counts every request answered with a code other than "0", by code (and
	// "outage_503" / "outage_refuse" for outage replies).
	Refusals map[string]int `json:"refusals"`
	// OverCapRefusals are the refusals for the rate (1013001), the ports (1020165) and injected
	// flow control (1010010).
	OverCapRefusals map[string]int `json:"over_cap_refusals"`
	// DuplicateUserData counts the accepted calls per userData sent more than once; DuplicateCalls
	// is the number of calls beyond the first for such userData (calls placed twice for one job).
	DuplicateUserData map[string]int `json:"duplicate_user_data"`
	DuplicateCalls    int            `json:"duplicate_calls"`
	// Results counts ended calls by CallRecord.Result.
	Results     map[string]int `json:"results"`
	HeldReplies int            `json:"held_replies"`
	Stops       int            `json:"stops"`
	Pushes      PushStats      `json:"pushes"`
}

// SecondCount is the number of calls accepted in one calendar second.
type SecondCount struct {
	Second time.Time `json:"second"`
	Calls  int       `json:"calls"`
}

// PushStats count push requests (duplicates included).
type PushStats struct {
	StatusSent   int `json:"status_sent"`
	StatusFailed int `json:"status_failed"`
	CDRSent      int `json:"cdr_sent"`
	CDRFailed    int `json:"cdr_failed"`
	CDRRetries   int `json:"cdr_retries"`
	CDRGivenUp   int `json:"cdr_given_up"`
	Duplicates   int `json:"duplicates"`
}

// overCapCodes are the refusals that Stats.OverCapRefusals singles out.
var overCapCodes = map[string]bool{
	voice.CodeSPCallLimit: true, voice.CodePortsExhausted: true, voice.CodeFlowControl: true,
}

// statsState is what Stats and Calls report; guarded by Simulator.mu.
type statsState struct {
	maxRecords int
	records    []*CallRecord
	index      map[string]*CallRecord

	accepted   int
	byAPI      map[string]int
	perCallee  map[string]int
	perSecond  map[int64]int
	lastSecond []time.Time // accept times within the last second, oldest first
	maxSliding int
	refusals   map[string]int
	userData   map[string]int
	results    map[string]int
	held       int
	stops      int
	pushes     PushStats
}

func newStatsState(maxRecords int) statsState {
	return statsState{
		maxRecords: maxRecords,
		index:      make(map[string]*CallRecord),
		byAPI:      make(map[string]int),
		perCallee:  make(map[string]int),
		perSecond:  make(map[int64]int),
		refusals:   make(map[string]int),
		userData:   make(map[string]int),
		results:    make(map[string]int),
	}
}

// acceptLocked records an accepted call.
func (st *statsState) acceptLocked(c *call, now time.Time, held bool) {
	st.accepted++
	st.byAPI[c.api]++
	st.perCallee[c.callee]++
	st.perSecond[now.Unix()]++
	cut := 0
	for cut < len(st.lastSecond) && now.Sub(st.lastSecond[cut]) >= time.Second {
		cut++
	}
	st.lastSecond = append(st.lastSecond[cut:], now)
	st.maxSliding = max(st.maxSliding, len(st.lastSecond))
	if c.userData != "" {
		st.userData[c.userData]++
	}
	if held {
		st.held++
	}
	rec := &CallRecord{
		SessionID: c.id, API: c.api, AcceptedAt: now, DisplayNbr: c.display, CalleeNbr: c.callee,
		UserData: c.userData, StatusURL: c.statusURL, FeeURL: c.feeURL, Scenario: c.scenario,
		ReplyHeld: held, Events: []PushRecord{}, CDRPushes: []PushRecord{},
	}
	if c.api == APIClick2Call {
		rec.CallerNbr = c.legs[legA].called
	}
	if st.maxRecords > 0 && len(st.records) >= st.maxRecords {
		drop := max(st.maxRecords/10, 1)
		for _, old := range st.records[:drop] {
			delete(st.index, old.SessionID)
		}
		st.records = slices.Delete(st.records, 0, drop)
	}
	if st.maxRecords > 0 {
		st.records = append(st.records, rec)
		st.index[c.id] = rec
	}
}

// endCallLocked records how a call ended.
func (st *statsState) endCallLocked(c *call, e ending, at time.Time, recording string) {
	st.results[e.result]++
	rec := st.index[c.id]
	if rec == nil {
		return
	}
	rec.Ended = true
	rec.Result = e.result
	rec.RecordingFile = recording
	if e.result != ResultAborted {
		rec.StateCode = ptr(e.stateCode)
		rec.EndedAt = at
	}
}

// setCDRLocked keeps a call's CDR.
func (st *statsState) setCDRLocked(id string, fee voice.FeeInfo) {
	if rec := st.index[id]; rec != nil {
		rec.CDR = &fee
	}
}

// statusPushLocked records a status event.
func (st *statsState) statusPushLocked(id string, p PushRecord) {
	if p.Pushed {
		st.pushes.StatusSent++
		if !p.Delivered {
			st.pushes.StatusFailed++
		}
		if p.Duplicate {
			st.pushes.Duplicates++
		}
	}
	if rec := st.index[id]; rec != nil {
		rec.Events = append(rec.Events, p)
	}
}

// cdrPushLocked records one CDR push attempt for every call in it.
func (st *statsState) cdrPushLocked(ids []string, p PushRecord) {
	st.pushes.CDRSent++
	if !p.Delivered {
		st.pushes.CDRFailed++
	}
	if p.Duplicate {
		st.pushes.Duplicates++
	} else if p.Attempt > 0 {
		st.pushes.CDRRetries++
	}
	for _, id := range ids {
		if rec := st.index[id]; rec != nil {
			rec.CDRPushes = append(rec.CDRPushes, p)
		}
	}
}

func (st *statsState) cdrGivenUpLocked() { st.pushes.CDRGivenUp++ }

// recordPush records a status event of a call.
func (s *Simulator) recordPush(id string, p PushRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.statusPushLocked(id, p)
}

// countRefusal counts a refused request by code.
func (s *Simulator) countRefusal(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.refusals[code]++
}

// Calls returns a copy of the records of the accepted calls, oldest first (at most MaxRecords).
func (s *Simulator) Calls() []CallRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]CallRecord, len(s.stats.records))
	for i, rec := range s.stats.records {
		out[i] = *rec
		out[i].Events = slices.Clone(rec.Events)
		out[i].CDRPushes = slices.Clone(rec.CDRPushes)
		if rec.CDR != nil {
			fee := *rec.CDR
			out[i].CDR = &fee
		}
	}
	return out
}

// Call returns the record of one session.
func (s *Simulator) Call(sessionID string) (CallRecord, bool) {
	for _, rec := range s.Calls() {
		if rec.SessionID == sessionID {
			return rec, true
		}
	}
	return CallRecord{}, false
}

// Stats returns the simulator's counters.
func (s *Simulator) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.stats
	out := Stats{
		Accepted:          st.accepted,
		Active:            s.ports,
		AcceptedByAPI:     maps.Clone(st.byAPI),
		CallsPerCallee:    maps.Clone(st.perCallee),
		CallsPerSecond:    make([]SecondCount, 0, len(st.perSecond)),
		MaxInAnySecond:    st.maxSliding,
		Refusals:          maps.Clone(st.refusals),
		OverCapRefusals:   make(map[string]int),
		DuplicateUserData: make(map[string]int),
		Results:           maps.Clone(st.results),
		HeldReplies:       st.held,
		Stops:             st.stops,
		Pushes:            st.pushes,
	}
	for _, sec := range slices.Sorted(maps.Keys(st.perSecond)) {
		n := st.perSecond[sec]
		out.CallsPerSecond = append(out.CallsPerSecond, SecondCount{Second: time.Unix(sec, 0).UTC(), Calls: n})
		out.MaxPerSecond = max(out.MaxPerSecond, n)
	}
	for code, n := range st.refusals {
		if overCapCodes[code] {
			out.OverCapRefusals[code] = n
		}
	}
	for ud, n := range st.userData {
		if n > 1 {
			out.DuplicateUserData[ud] = n
			out.DuplicateCalls += n - 1
		}
	}
	return out
}

// metrics are the simulator's Prometheus metrics. Labels are bounded: api (the five APIs),
// code (result codes, "held", "outage_503", "outage_refuse"), result, kind (status, cdr).
type metrics struct {
	requests     *prometheus.CounterVec
	accepted     *prometheus.CounterVec
	active       prometheus.Gauge
	results      *prometheus.CounterVec
	pushes       *prometheus.CounterVec
	pushFailures *prometheus.CounterVec
	pushDuration *prometheus.HistogramVec
	cdrRetries   prometheus.Counter
	cdrGivenUp   prometheus.Counter
}

func newMetrics() *metrics {
	const ns, sub = "voicequeue", "sim"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "requests_total", Help: "API requests answered, by API and result code."},
			[]string{"api", "code"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "calls_accepted_total", Help: "Calls accepted, by API."}, []string{"api"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "active_calls", Help: "Calls holding a port now."}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "call_results_total", Help: "Calls ended, by API and result."}, []string{"api", "result"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "pushes_total", Help: "Push requests sent, by kind (status, cdr)."}, []string{"kind"}),
		pushFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "push_failures_total", Help: "Push requests that failed, by kind."}, []string{"kind"}),
		pushDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "push_duration_seconds", Help: "Time to deliver one push request, by kind.",
			Buckets: prometheus.DefBuckets}, []string{"kind"}),
		cdrRetries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "cdr_retries_total", Help: "CDR re-pushes after a failed push."}),
		cdrGivenUp: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "cdr_given_up_total", Help: "CDR pushes given up after the last re-push failed."}),
	}
	for _, api := range []string{APINotify, APIVerify, APIClick2Call} {
		m.requests.WithLabelValues(api, voice.CodeSuccess)
		m.accepted.WithLabelValues(api)
	}
	for _, kind := range []string{kindStatus, kindCDR} {
		m.pushes.WithLabelValues(kind)
		m.pushFailures.WithLabelValues(kind)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.accepted, m.active, m.results, m.pushes,
		m.pushFailures, m.pushDuration, m.cdrRetries, m.cdrGivenUp}
}

// register registers every collector, stopping at the first error.
func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range m.collectors() {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
