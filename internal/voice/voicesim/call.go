package voicesim

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// Scenario is what the simulated network does with an accepted call.
type Scenario string

// The scenarios of accepted calls (ref §6.2, §10.4).
const (
	ScenarioAnswered       Scenario = "answered"
	ScenarioPressOne       Scenario = "answered_press_1"
	ScenarioBusy           Scenario = "busy"
	ScenarioNoAnswer       Scenario = "no_answer"
	ScenarioRejected       Scenario = "rejected"
	ScenarioPoweredOff     Scenario = "powered_off"
	ScenarioNetworkFailure Scenario = "network_failure"
)

// Scripted behaviours, chosen by the last four digits of `calleeNbr` (for click-to-call the B
// party; leg A always answers). They win over RandomMode.
const (
	SuffixBusy           = "0486" // busy: callout, disconnect 8102 (Q.850 17, SIP 486)
	SuffixNoAnswer       = "0480" // rings 30 s, then disconnect 8101 (Q.850 19, ulFailReason 514, SIP 480)
	SuffixRejected       = "0603" // rings 4 s, then rejected: 8105 (Q.850 21, ulFailReason 515, SIP 603)
	SuffixPoweredOff     = "0410" // callout, disconnect 8104 (Q.850 20, SIP 480)
	SuffixNetworkFailure = "0500" // callout, disconnect 8001 (Q.850 41, ulFailReason 517, SIP 503)
	SuffixPressOne       = "0111" // answered; presses 1 whenever digits are collected
	SuffixInvalid        = "0404" // refused at request time: 1010002 "Invalid request. calleeNbr"
	SuffixTransient      = "0503" // the first request for the number gets 1010001 (HTTP 500)
	SuffixHoldReply      = "0408" // accepted and placed, but the reply never comes
)

// scriptedScenario maps the other suffixes to the scenario of the accepted call.
var scriptedScenario = map[string]Scenario{
	SuffixBusy:           ScenarioBusy,
	SuffixNoAnswer:       ScenarioNoAnswer,
	SuffixRejected:       ScenarioRejected,
	SuffixPoweredOff:     ScenarioPoweredOff,
	SuffixNetworkFailure: ScenarioNetworkFailure,
	SuffixPressOne:       ScenarioPressOne,
}

// suffix returns the last four characters of a number.
func suffix(n string) string {
	if len(n) < 4 {
		return n
	}
	return n[len(n)-4:]
}

// Simulated durations of a call (before scaling by Speed).
const (
	calloutDelay = 500 * time.Millisecond // accept → callout
	alertDelay   = 2 * time.Second        // callout → alerting
	answerDelay  = 3 * time.Second        // alerting → answer
	talkTime     = 5 * time.Second        // click-to-call: B answer → hang-up
	playTime     = 3 * time.Second        // notify: one play item
	pressDelay   = 1 * time.Second        // notify: playback end → digit pressed
	collectWait  = 5 * time.Second        // notify: playback end → empty collection (ref §2.2)
	verifyCycle  = 2 * time.Second        // verify: one play of preTone, code, posTone
	preVoiceTime = 2 * time.Second        // click-to-call: playPreVoice prompt
	loopCycles   = 3                      // verify times=0 ("loop"): the callee hangs up after 3
	minRecording = 3 * time.Second        // shorter calls produce no recording (ref §5.2)
)

// Results recorded in CallRecord.Result, beside the names of the failed scenarios ("busy"…).
const (
	ResultCompleted   = "completed"
	ResultDigitsEmpty = "digit_collection_empty"
	ResultStopped     = "stopped"
	ResultAborted     = "aborted" // the simulator closed mid-call: no disconnect, no CDR
)

// Values of disconnect pushes and CDRs.
const (
	stateDescNormal    = "The user releases the call."
	stateDescStopped   = "The call is released by the SP."
	stateCodeStopped   = 8017 // ref §10.1 ◐
	ulFailStopped      = 1003 // ref §10.3: SP released via API
	q850NormalClearing = 16

	// partyType values are undocumented (ref §6.1 ❓); the simulator uses these.
	partyPlatform = 0 // the platform or the SP released the call
	partyCaller   = 1 // the caller (click-to-call leg A)
	partyCallee   = 2 // the callee (leg B, or the callee of a notification)
)

// ending is how a call ends: the disconnect's stateCode and the CDR's codes.
type ending struct {
	result    string
	stateCode int
	stateDesc string
	q850      int  // Q.850 cause of the leg that did not answer (0: answered)
	ulFail    *int // ulFailReason; nil when the reference gives none
	sip       *int // sipStatusCode; nil when none
	partyType int
	failed    bool // sets the CDR's failTime
}

// failureSpec is an unsuccessful scenario: whether the phone rings, how long until release, and
// the codes (ref §10.4).
type failureSpec struct {
	alerting bool
	after    time.Duration // from the last event (callout or alerting) to the disconnect
	end      ending
}

func ptr[T any](v T) *T { return &v }

var failures = map[Scenario]failureSpec{
	ScenarioBusy: {after: time.Second, end: ending{result: string(ScenarioBusy),
		stateCode: 8102, stateDesc: "The callee is busy.", q850: 17, sip: ptr(486)}},
	ScenarioNoAnswer: {alerting: true, after: 30 * time.Second, end: ending{result: string(ScenarioNoAnswer),
		stateCode: 8101, stateDesc: "The callee does not answer.", q850: 19, ulFail: ptr(514), sip: ptr(480)}},
	ScenarioRejected: {alerting: true, after: 4 * time.Second, end: ending{result: string(ScenarioRejected),
		stateCode: 8105, stateDesc: "The callee rejects the call.", q850: 21, ulFail: ptr(515), sip: ptr(603)}},
	ScenarioPoweredOff: {after: 3 * time.Second, end: ending{result: string(ScenarioPoweredOff),
		stateCode: 8104, stateDesc: "The callee is powered off.", q850: 20, sip: ptr(480)}},
	ScenarioNetworkFailure: {after: time.Second, end: ending{result: string(ScenarioNetworkFailure),
		stateCode: 8001, stateDesc: "The call is not connected.", q850: 41, ulFail: ptr(517), sip: ptr(503)}},
}

func init() {
	for sc, f := range failures {
		f.end.failed = true
		f.end.partyType = partyCallee
		failures[sc] = f
	}
}

// normalEnding is a hang-up after the call was connected; the example CDR of ref §7.5 carries
// zeros in callOutUnaswRsn, ulFailReason and sipStatusCode.
func normalEnding(party int) ending {
	return ending{result: ResultCompleted, stateCode: 0, stateDesc: stateDescNormal,
		ulFail: ptr(0), sip: ptr(0), partyType: party}
}

// digitsEmptyEnding is an empty digit collection (ref §2.2, §10.4: 8008 / ulFailReason 100).
func digitsEmptyEnding() ending {
	return ending{result: ResultDigitsEmpty, stateCode: 8008, stateDesc: "Digit collection failed.",
		ulFail: ptr(100), partyType: partyPlatform}
}

// stopEnding is a release by callStop (ref §5.1, §10.4: 8017 ◐, ulFailReason 1003).
func stopEnding() ending {
	return ending{result: ResultStopped, stateCode: stateCodeStopped, stateDesc: stateDescStopped,
		q850: q850NormalClearing, ulFail: ptr(ulFailStopped), partyType: partyPlatform}
}

// API names in records, stats and metric labels.
const (
	APINotify     = "notify"
	APIVerify     = "verify"
	APIClick2Call = "click2call"
	APICallStop   = "callstop"
	APIRecord     = "record"
)

// Legs of a call: legA is the leg the platform dials first (the callee of a notification or
// verification, the caller of a click-to-call); legB is the forwarded click-to-call leg.
const (
	legA = 0
	legB = 1
)

// step is one event of a call's plan, after a simulated delay from the previous step.
type step struct {
	after  time.Duration
	event  voice.EventType
	leg    int
	digits *string // collectInfo
	end    *ending // disconnect
}

// party is who calls whom on one leg, as the status pushes show it (ref §6.1).
type party struct{ caller, called string }

// legTimes are the (simulated) times of one leg's events; zero when they did not happen.
type legTimes struct{ callout, alerting, answer time.Time }

// call is one accepted call.
type call struct {
	id        string
	api       string
	seq       uint64
	accepted  time.Time // Config.Now at acceptance: the origin of the call's simulated timeline
	scenario  Scenario
	legs      [2]party
	display   string // displayNbr
	displayB  string // displayCalleeNbr (click-to-call)
	callee    string // calleeNbr
	userData  string
	statusURL string
	feeURL    string
	partyType bool // click-to-call partyTypeRequiredInDisconnect
	record    bool // click-to-call recordFlag
	plan      []step
	tts       int // TTS plays in the plan (CDR ttsPlayTimes)
	icid      string
	stop      chan struct{} // closed by callStop

	// Guarded by Simulator.mu.
	stopRequested bool
	ended         bool
	portHeld      bool

	// Owned by the call's goroutine.
	times [2]legTimes
}

// planCall builds the event plan of a call from its request and scenario.
func planCall(c *call, notify *voice.NotifyRequest, verify *voice.VerifyRequest, c2c *voice.Click2CallRequest) {
	var steps []step
	add := func(after time.Duration, ev voice.EventType, leg int) {
		steps = append(steps, step{after: after, event: ev, leg: leg})
	}
	end := func(after time.Duration, leg int, e ending) {
		steps = append(steps, step{after: after, event: voice.EventDisconnect, leg: leg, end: &e})
	}
	failure, failed := failures[c.scenario]
	legOfOutcome := legA
	if c2c != nil {
		// Leg A always answers; an optional prompt plays before B is dialled.
		add(calloutDelay, voice.EventCallout, legA)
		add(alertDelay, voice.EventAlerting, legA)
		add(answerDelay, voice.EventAnswer, legA)
		pre := time.Duration(0)
		if c2c.PlayPreVoice {
			pre = preVoiceTime
		}
		add(pre+calloutDelay, voice.EventCallout, legB)
		legOfOutcome = legB
	} else {
		add(calloutDelay, voice.EventCallout, legA)
	}
	if failed {
		if failure.alerting {
			add(alertDelay, voice.EventAlerting, legOfOutcome)
		}
		end(failure.after, legOfOutcome, failure.end)
		c.plan = steps
		return
	}
	add(alertDelay, voice.EventAlerting, legOfOutcome)
	add(answerDelay, voice.EventAnswer, legOfOutcome)
	switch {
	case c2c != nil:
		end(talkTime, legB, normalEnding(partyCallee))
	case verify != nil:
		times := 3
		if verify.Times != nil {
			times = *verify.Times
		}
		party := partyPlatform
		if times == 0 { // loop until the user hangs up
			times, party = loopCycles, partyCallee
		}
		c.tts = times
		end(time.Duration(times)*verifyCycle, legA, normalEnding(party))
	default:
		steps = planPlayback(c, notify.PlayInfoList, steps)
	}
	c.plan = steps
}

// planPlayback appends the playback of a notification's items (ref §2.2): items play in order;
// an item with collectInd > 0 collects digits after it. The scripted callees:
//
//   - ScenarioPressOne presses "1" at each collection. If the item is set to replay on that input,
//     it is replayed and the callee hangs up halfway through the replay (stateCode 0).
//   - Every other answering callee presses nothing: the collection comes back empty after 5 s,
//     a collectInfo with digitInfo "" is pushed and the call ends with 8008 / ulFailReason 100.
//
// After the last item the platform hangs up (stateCode 0).
func planPlayback(c *call, items []voice.PlayItem, steps []step) []step {
	var since time.Duration // simulated time since the last step
	for _, item := range items {
		since += playTime
		if item.TemplateID != "" {
			c.tts++
		}
		if item.CollectInd == 0 {
			continue
		}
		if c.scenario != ScenarioPressOne {
			steps = append(steps, step{after: since + collectWait, event: voice.EventCollectInfo, leg: legA, digits: ptr("")})
			e := digitsEmptyEnding()
			return append(steps, step{event: voice.EventDisconnect, leg: legA, end: &e})
		}
		steps = append(steps, step{after: since + pressDelay, event: voice.EventCollectInfo, leg: legA, digits: ptr("1")})
		since = 0
		trigger := item.CollectContentTriggerReplaying
		if item.ReplayAfterCollection && (trigger == "" || trigger == "1") {
			if item.TemplateID != "" {
				c.tts++
			}
			e := normalEnding(partyCallee)
			return append(steps, step{after: playTime / 2, event: voice.EventDisconnect, leg: legA, end: &e})
		}
	}
	e := normalEnding(partyPlatform)
	return append(steps, step{after: since, event: voice.EventDisconnect, leg: legA, end: &e})
}

// wall converts a simulated duration to wall time.
func (s *Simulator) wall(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.cfg.Speed)
}

// runCall plays a call out: it waits for each step's (scaled) time, records the leg times and
// pushes the status events in order; a callStop or Close interrupts it.
func (s *Simulator) runCall(c *call) {
	defer s.wg.Done()
	defer s.doneWork()
	start := time.Now()
	out := &statusSender{s: s, c: c}
	var offset time.Duration
	for _, st := range c.plan {
		prev := offset
		offset += st.after
		stopped, aborted := s.waitCall(c, time.Until(start.Add(s.wall(offset))))
		if aborted {
			s.abortCall(c)
			return
		}
		if stopped {
			elapsed := time.Duration(float64(time.Since(start)) * s.cfg.Speed)
			s.finishCall(c, stopEnding(), c.accepted.Add(min(max(elapsed, prev), offset)), out)
			return
		}
		at := c.accepted.Add(offset)
		if st.event == voice.EventDisconnect {
			s.finishCall(c, *st.end, at, out)
			return
		}
		s.mu.Lock()
		stopRequested := c.stopRequested
		s.mu.Unlock()
		if stopRequested {
			s.finishCall(c, stopEnding(), at, out)
			return
		}
		lt := &c.times[st.leg]
		switch st.event {
		case voice.EventCallout:
			lt.callout = at
		case voice.EventAlerting:
			lt.alerting = at
		case voice.EventAnswer:
			lt.answer = at
		}
		info := s.statusInfo(c, st.leg, at)
		info.DigitInfo = st.digits
		out.emit(voice.StatusPush{EventType: st.event, StatusInfo: info})
	}
}

// waitCall waits d (wall) unless the call is stopped or the simulator closes.
func (s *Simulator) waitCall(c *call, d time.Duration) (stopped, aborted bool) {
	if d < 0 {
		d = 0
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false, true
	case <-c.stop:
		return true, false
	case <-t.C:
		return false, false
	}
}

// statusInfo is the statusInfo of an event on one leg.
func (s *Simulator) statusInfo(c *call, leg int, at time.Time) voice.CallStatusInfo {
	return voice.CallStatusInfo{
		SessionID: c.id,
		Timestamp: voice.Timestamp{Time: at.UTC().Truncate(time.Second), Unix: s.cfg.UnixTimestamps},
		Caller:    c.legs[leg].caller,
		Called:    c.legs[leg].called,
		UserData:  c.userData,
	}
}

// finishCall ends a call at the simulated time at: it frees the port, pushes the disconnect(s),
// registers a recording and hands the CDR to the batcher.
func (s *Simulator) finishCall(c *call, e ending, at time.Time, out *statusSender) {
	at = at.UTC().Truncate(time.Second)
	s.mu.Lock()
	if c.stopRequested && e.result != ResultStopped {
		e = stopEnding() // a callStop that raced with the end wins: the platform saw it first
	}
	c.ended = true
	s.releasePortLocked(c)
	var recording string
	if c.record && !c.times[legB].answer.IsZero() && at.Sub(c.times[legB].answer) >= minRecording {
		recording = fmt.Sprintf("%s_%d.wav", c.accepted.UTC().Format("20060102150405"), c.seq)
		s.recordings[recording] = recordDomain
	}
	s.stats.endCallLocked(c, e, at, recording)
	s.mu.Unlock()
	s.metrics.results.WithLabelValues(c.api, e.result).Inc()
	s.log.Debug("call ended", "session_id", c.id, "api", c.api, "callee", voice.MaskNumber(c.callee),
		"result", e.result, "state_code", e.stateCode)

	for _, leg := range s.disconnectLegs(c) {
		info := s.statusInfo(c, leg, at)
		info.StateCode = ptr(e.stateCode)
		info.StateDesc = e.stateDesc
		if c.partyType {
			info.PartyType = json.RawMessage(fmt.Sprint(e.partyType))
		}
		out.emit(voice.StatusPush{EventType: voice.EventDisconnect, StatusInfo: info})
	}
	fee := s.buildFee(c, e, at, recording)
	out.finish(func() { s.queueCDR(c, fee) })
}

// disconnectLegs lists the legs that get a disconnect push: one per session (the last dialled
// leg), or with ClickToCallDisconnectPerLeg one per dialled click-to-call leg, B first.
func (s *Simulator) disconnectLegs(c *call) []int {
	bDialled := c.api == APIClick2Call && !c.times[legB].callout.IsZero()
	switch {
	case bDialled && s.cfg.ClickToCallDisconnectPerLeg:
		return []int{legB, legA}
	case bDialled:
		return []int{legB}
	default:
		return []int{legA}
	}
}

// abortCall ends a call because the simulator closed: no disconnect push and no CDR.
func (s *Simulator) abortCall(c *call) {
	s.mu.Lock()
	c.ended = true
	s.releasePortLocked(c)
	s.stats.endCallLocked(c, ending{result: ResultAborted}, time.Time{}, "")
	s.mu.Unlock()
}

// Fixed CDR values of the simulated platform.
const (
	hostName     = "callenabler.voicesim.local"
	recordDomain = "record.voicesim.local"
	recordBucket = "voicesim-record"
)

// buildFee builds the CDR of a call (ref §7.2): leg A times go to callOut*, leg B times to fwd*.
func (s *Simulator) buildFee(c *call, e ending, end time.Time, recording string) voice.FeeInfo {
	a, b := c.times[legA], c.times[legB]
	fee := voice.FeeInfo{
		Direction:           0,
		SpID:                s.cfg.SpID,
		AppKey:              s.cfg.AppKey,
		ICID:                c.icid,
		BindNum:             c.display,
		SessionID:           c.id,
		CallerNum:           c.display,
		CalleeNum:           c.legs[legA].called,
		CallInTime:          pushTime(c.accepted),
		CallEndTime:         pushTime(end),
		CallOutStartTime:    pushTime(a.callout),
		CallOutAlertingTime: pushTime(a.alerting),
		CallOutAnswerTime:   pushTime(a.answer),
		CallOutUnaswRsn:     ptr(unanswered(a, e)),
		ULFailReason:        e.ulFail,
		SIPStatusCode:       e.sip,
		ServiceType:         voice.ServiceTypePlayback,
		HostName:            hostName,
		UserData:            c.userData,
	}
	if e.failed {
		fee.FailTime = pushTime(end)
	}
	switch c.api {
	case APIClick2Call:
		fee.ServiceType = voice.ServiceTypeCallback
		fee.FwdDisplayNum = c.displayB
		fee.FwdDstNum = c.callee
		if !b.callout.IsZero() {
			fee.FwdStartTime = pushTime(b.callout)
			fee.FwdAlertingTime = pushTime(b.alerting)
			fee.FwdAnswerTime = pushTime(b.answer)
			fee.FwdUnaswRsn = ptr(unanswered(b, e))
		}
		fee.RecordFlag = ptr(0)
		if recording != "" {
			fee.RecordFlag = ptr(1)
			fee.RecordStartTime = pushTime(b.answer)
			fee.RecordObjectName = recording
			fee.RecordBucketName = recordBucket
			fee.RecordDomain = recordDomain
		}
	default:
		if c.tts > 0 && !a.answer.IsZero() {
			fee.TTSPlayTimes = ptr(c.tts)
			fee.TTSTransDuration = ptr(1)
		}
		if c.api == APINotify && !a.answer.IsZero() {
			fee.DynIVRStartTime = pushTime(a.answer)
		}
	}
	return fee
}

// unanswered is a leg's Q.850 non-answer reason: 0 once it answered.
func unanswered(t legTimes, e ending) int {
	if !t.answer.IsZero() {
		return 0
	}
	return e.q850
}

// pushTime converts a simulated time to a CDR time (zero stays absent).
func pushTime(t time.Time) voice.PushTime {
	if t.IsZero() {
		return voice.PushTime{}
	}
	return voice.PushTime{Time: t.UTC().Truncate(time.Second)}
}

// sessionPrefix is the first part of a sessionId per API, after the reference's examples.
var sessionPrefix = map[string]int{APINotify: 1200, APIVerify: 1201, APIClick2Call: 1202}

// newSessionID returns an opaque, unique sessionId in the platform's shape, e.g.
// "1200_366_2712847316_20161228102743@callenabler.voicesim.local" (ref §1.5).
func (s *Simulator) newSessionID(api string, seq uint64, now time.Time) string {
	return fmt.Sprintf("%d_%d_%d_%s@%s", sessionPrefix[api], seq, s.instance, now.UTC().Format("20060102150405"), hostName)
}
