package voicesim

import (
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// wantCDR is what a test expects of a call's CDR. Times are checked through talk: callEndTime
// minus callOutAnswerTime (notify, verify) or fwdAnswerTime (click-to-call), 0 when unanswered.
type wantCDR struct {
	service  string
	unasw    int  // callOutUnaswRsn
	fwdUnasw *int // click-to-call fwdUnaswRsn
	ulFail   *int
	sip      *int
	failed   bool
	talk     time.Duration
	tts      *int
}

func TestScriptedOutcomes(t *testing.T) {
	t.Parallel()
	const caller = "+8613700000001"
	collect := func(digits int, replay bool) func(*voice.NotifyRequest) {
		return func(r *voice.NotifyRequest) {
			r.PlayInfoList = []voice.PlayItem{{TemplateID: "tpl1", TemplateParas: []string{"1"},
				CollectInd: digits, ReplayAfterCollection: voice.Flag(replay), CollectContentTriggerReplaying: "1"}}
		}
	}
	tests := []struct {
		name       string
		path       string
		callee     string
		cfg        Config
		notify     func(*voice.NotifyRequest)
		verify     func(*voice.VerifyRequest)
		click2Call func(*voice.Click2CallRequest)
		wantEvents string
		wantResult string
		cdr        wantCDR
	}{
		{name: "notify answered", path: voice.PathNotify, callee: "+8613800000001",
			wantEvents: "callout alerting answer disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "001", ulFail: ptr(0), sip: ptr(0), talk: 3 * time.Second, tts: ptr(1)}},
		{name: "notify busy", path: voice.PathNotify, callee: "+8613800000486",
			wantEvents: "callout disconnect(8102)", wantResult: "busy",
			cdr: wantCDR{service: "001", unasw: 17, sip: ptr(486), failed: true}},
		{name: "notify no answer", path: voice.PathNotify, callee: "+8613800000480",
			wantEvents: "callout alerting disconnect(8101)", wantResult: "no_answer",
			cdr: wantCDR{service: "001", unasw: 19, ulFail: ptr(514), sip: ptr(480), failed: true}},
		{name: "notify rejected", path: voice.PathNotify, callee: "+8613800000603",
			wantEvents: "callout alerting disconnect(8105)", wantResult: "rejected",
			cdr: wantCDR{service: "001", unasw: 21, ulFail: ptr(515), sip: ptr(603), failed: true}},
		{name: "notify powered off", path: voice.PathNotify, callee: "+8613800000410",
			wantEvents: "callout disconnect(8104)", wantResult: "powered_off",
			cdr: wantCDR{service: "001", unasw: 20, sip: ptr(480), failed: true}},
		{name: "notify network failure", path: voice.PathNotify, callee: "+8613800000500",
			wantEvents: "callout disconnect(8001)", wantResult: "network_failure",
			cdr: wantCDR{service: "001", unasw: 41, ulFail: ptr(517), sip: ptr(503), failed: true}},
		{name: "notify press 1", path: voice.PathNotify, callee: "+8613800000111", notify: collect(1, false),
			wantEvents: "callout alerting answer collectInfo(1) disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "001", ulFail: ptr(0), sip: ptr(0), talk: 4 * time.Second, tts: ptr(1)}},
		{name: "notify press 1 replays then hangs up", path: voice.PathNotify, callee: "+8613800000111", notify: collect(1, true),
			wantEvents: "callout alerting answer collectInfo(1) disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "001", ulFail: ptr(0), sip: ptr(0), talk: 6 * time.Second, tts: ptr(2)}},
		{name: "notify press 1 without collection", path: voice.PathNotify, callee: "+8613800000111",
			wantEvents: "callout alerting answer disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "001", ulFail: ptr(0), sip: ptr(0), talk: 3 * time.Second, tts: ptr(1)}},
		{name: "notify silent callee with collection", path: voice.PathNotify, callee: "+8613800000001", notify: collect(2, false),
			wantEvents: "callout alerting answer collectInfo() disconnect(8008)", wantResult: ResultDigitsEmpty,
			cdr: wantCDR{service: "001", ulFail: ptr(100), talk: 8 * time.Second, tts: ptr(1)}},
		{name: "notify busy ignores collection", path: voice.PathNotify, callee: "+8613800000486", notify: collect(1, false),
			wantEvents: "callout disconnect(8102)", wantResult: "busy",
			cdr: wantCDR{service: "001", unasw: 17, sip: ptr(486), failed: true}},

		{name: "verify answered", path: voice.PathVerify, callee: "+8613800000001",
			wantEvents: "callout alerting answer disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "001", ulFail: ptr(0), sip: ptr(0), talk: 6 * time.Second, tts: ptr(3)}},
		{name: "verify once", path: voice.PathVerify, callee: "+8613800000001", verify: func(r *voice.VerifyRequest) { r.Times = ptr(1) },
			wantEvents: "callout alerting answer disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "001", ulFail: ptr(0), sip: ptr(0), talk: 2 * time.Second, tts: ptr(1)}},
		{name: "verify busy", path: voice.PathVerify, callee: "+8613800000486",
			wantEvents: "callout disconnect(8102)", wantResult: "busy",
			cdr: wantCDR{service: "001", unasw: 17, sip: ptr(486), failed: true}},
		{name: "verify press 1 is answered", path: voice.PathVerify, callee: "+8613800000111",
			wantEvents: "callout alerting answer disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "001", ulFail: ptr(0), sip: ptr(0), talk: 6 * time.Second, tts: ptr(3)}},

		{name: "click2call answered", path: voice.PathClick2Call, callee: "+8613800000001",
			wantEvents: "callout alerting answer callout alerting answer disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "002", fwdUnasw: ptr(0), ulFail: ptr(0), sip: ptr(0), talk: 5 * time.Second}},
		{name: "click2call with pre-voice", path: voice.PathClick2Call, callee: "+8613800000001",
			click2Call: func(r *voice.Click2CallRequest) { r.PlayPreVoice = true },
			wantEvents: "callout alerting answer callout alerting answer disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "002", fwdUnasw: ptr(0), ulFail: ptr(0), sip: ptr(0), talk: 5 * time.Second}},
		{name: "click2call callee busy", path: voice.PathClick2Call, callee: "+8613800000486",
			wantEvents: "callout alerting answer callout disconnect(8102)", wantResult: "busy",
			cdr: wantCDR{service: "002", fwdUnasw: ptr(17), sip: ptr(486), failed: true}},
		{name: "click2call callee no answer", path: voice.PathClick2Call, callee: "+8613800000480",
			wantEvents: "callout alerting answer callout alerting disconnect(8101)", wantResult: "no_answer",
			cdr: wantCDR{service: "002", fwdUnasw: ptr(19), ulFail: ptr(514), sip: ptr(480), failed: true}},
		{name: "click2call callee rejects", path: voice.PathClick2Call, callee: "+8613800000603",
			wantEvents: "callout alerting answer callout alerting disconnect(8105)", wantResult: "rejected",
			cdr: wantCDR{service: "002", fwdUnasw: ptr(21), ulFail: ptr(515), sip: ptr(603), failed: true}},
		{name: "click2call disconnect per leg", path: voice.PathClick2Call, callee: "+8613800000001",
			cfg:        Config{ClickToCallDisconnectPerLeg: true},
			wantEvents: "callout alerting answer callout alerting answer disconnect(0) disconnect(0)", wantResult: ResultCompleted,
			cdr: wantCDR{service: "002", fwdUnasw: ptr(0), ulFail: ptr(0), sip: ptr(0), talk: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.cfg)
			rcv := newReceiver(t)
			var body any
			switch tt.path {
			case voice.PathNotify:
				req := notifyReq(tt.callee, rcv)
				if tt.notify != nil {
					tt.notify(&req)
				}
				body = req
			case voice.PathVerify:
				req := verifyReq(tt.callee, rcv)
				if tt.verify != nil {
					tt.verify(&req)
				}
				body = req
			default:
				req := click2CallReq(tt.callee, rcv)
				if tt.click2Call != nil {
					tt.click2Call(&req)
				}
				body = req
			}
			id := e.accept(t, tt.path, body)
			e.waitIdle(t)

			events := rcv.events(id)
			if got := eventNames(events); got != tt.wantEvents {
				t.Fatalf("events %q, want %q", got, tt.wantEvents)
			}
			for i, ev := range events {
				wantCaller, wantCalled := testDisplay, tt.callee
				if tt.path == voice.PathClick2Call && i < 3 || i == len(events)-1 && tt.cfg.ClickToCallDisconnectPerLeg {
					wantCalled = caller // leg A
				}
				si := ev.StatusInfo
				if si.Caller != wantCaller || si.Called != wantCalled || si.UserData != "job-"+tt.callee || si.Timestamp.IsZero() {
					t.Errorf("event %d %s: %+v, want caller %s called %s", i, ev.EventType, si, wantCaller, wantCalled)
				}
				if i > 0 && si.Timestamp.Before(events[i-1].StatusInfo.Timestamp.Time) {
					t.Errorf("event %d goes back in time", i)
				}
			}
			cdrs := rcv.cdrs(id)
			if len(cdrs) != 1 {
				t.Fatalf("got %d CDRs, want 1", len(cdrs))
			}
			checkCDR(t, cdrs[0], tt.cdr, tt.callee)

			rec, ok := e.sim.Call(id)
			if !ok || rec.Result != tt.wantResult || !rec.Ended || len(rec.Events) != len(events) {
				t.Errorf("record %+v, want result %q with %d events", rec, tt.wantResult, len(events))
			}
			if len(rec.CDRPushes) != 1 || !rec.CDRPushes[0].Delivered || rec.CDR == nil {
				t.Errorf("record CDR pushes %+v, want one delivered", rec.CDRPushes)
			}
		})
	}
}

// checkCDR compares a CDR with what the test wants.
func checkCDR(t *testing.T, f voice.FeeInfo, want wantCDR, callee string) {
	t.Helper()
	eqPtr := func(name string, got, want *int) {
		t.Helper()
		switch {
		case got == nil && want == nil:
		case got == nil || want == nil || *got != *want:
			t.Errorf("%s = %v, want %v", name, deref(got), deref(want))
		}
	}
	if f.ServiceType != want.service || f.AppKey != testKey || f.SpID != DefaultSpID || f.BindNum != testDisplay ||
		f.CallerNum != testDisplay || f.UserData != "job-"+callee || f.Direction != 0 || f.ICID == "" || f.HostName == "" {
		t.Errorf("CDR identity fields wrong: %+v", f)
	}
	if !f.CallInTime.Equal(testStart) || f.CallOutStartTime.IsZero() || f.CallEndTime.IsZero() {
		t.Errorf("CDR times wrong: in %v start %v end %v", f.CallInTime, f.CallOutStartTime, f.CallEndTime)
	}
	eqPtr("callOutUnaswRsn", f.CallOutUnaswRsn, &want.unasw)
	eqPtr("fwdUnaswRsn", f.FwdUnaswRsn, want.fwdUnasw)
	eqPtr("ulFailReason", f.ULFailReason, want.ulFail)
	eqPtr("sipStatusCode", f.SIPStatusCode, want.sip)
	eqPtr("ttsPlayTimes", f.TTSPlayTimes, want.tts)
	if f.FailTime.IsZero() == want.failed {
		t.Errorf("failTime %v, want set: %v", f.FailTime, want.failed)
	}
	answer := f.CallOutAnswerTime
	if want.service == voice.ServiceTypeCallback {
		answer = f.FwdAnswerTime
		if f.FwdDstNum != callee || f.FwdDisplayNum != testDisplay || f.CalleeNum != "+8613700000001" || f.RecordFlag == nil {
			t.Errorf("click-to-call CDR fields wrong: %+v", f)
		}
		if f.CallOutAnswerTime.IsZero() {
			t.Errorf("leg A answer time missing")
		}
	} else if f.CalleeNum != callee {
		t.Errorf("calleeNum %q, want %q", f.CalleeNum, callee)
	}
	var talk time.Duration
	if !answer.IsZero() {
		talk = f.CallEndTime.Sub(answer.Time)
	}
	if talk != want.talk {
		t.Errorf("talk time %v, want %v", talk, want.talk)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestPartyTypeInDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	rcv := newReceiver(t)
	req := click2CallReq("+8613800000001", rcv)
	req.PartyTypeRequiredInDisconnect = true
	id := e.accept(t, voice.PathClick2Call, req)
	e.waitIdle(t)
	events := rcv.events(id)
	last := events[len(events)-1]
	if last.EventType != voice.EventDisconnect || string(last.StatusInfo.PartyType) != "2" {
		t.Fatalf("last event %s partyType %s, want disconnect with partyType 2", last.EventType, last.StatusInfo.PartyType)
	}
	for _, ev := range events[:len(events)-1] {
		if ev.StatusInfo.PartyType != nil {
			t.Errorf("%s carries partyType", ev.EventType)
		}
	}
}

func TestRandomMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		random RandomMode
		callee string
		want   Scenario
	}{
		{"all busy", RandomMode{Busy: 1}, "+8613800000001", ScenarioBusy},
		{"all powered off", RandomMode{PoweredOff: 1, Seed: 7}, "+8613800000002", ScenarioPoweredOff},
		{"all network failures", RandomMode{NetworkFailure: 1}, "+8613800000003", ScenarioNetworkFailure},
		{"nothing drawn", RandomMode{}, "+8613800000004", ScenarioAnswered},
		{"suffix wins over dice", RandomMode{Busy: 1}, "+8613800000603", ScenarioRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Config{Random: &tt.random})
			id := e.accept(t, voice.PathNotify, notifyReq(tt.callee, nil))
			if rec, _ := e.sim.Call(id); rec.Scenario != tt.want {
				t.Fatalf("scenario %q, want %q", rec.Scenario, tt.want)
			}
		})
	}
}

// TestRandomModeMix checks that the dice follow the probabilities roughly, and reproducibly.
func TestRandomModeMix(t *testing.T) {
	t.Parallel()
	draw := func() map[Scenario]int {
		sim, err := New(Config{AppKey: testKey, AppSecret: testSecret,
			Random: &RandomMode{Busy: 0.5, NoAnswer: 0.25, Seed: 42}})
		if err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		counts := map[Scenario]int{}
		for range 1000 {
			counts[sim.scenarioFor("0001")]++
		}
		return counts
	}
	a, b := draw(), draw()
	if a[ScenarioBusy] != b[ScenarioBusy] || a[ScenarioNoAnswer] != b[ScenarioNoAnswer] {
		t.Fatalf("same seed drew %v and %v", a, b)
	}
	if a[ScenarioBusy] < 400 || a[ScenarioBusy] > 600 || a[ScenarioNoAnswer] < 150 || a[ScenarioNoAnswer] > 350 ||
		a[ScenarioAnswered] < 150 || a[ScenarioAnswered] > 350 {
		t.Fatalf("draws %v far from 50/25/25", a)
	}
}

func TestNoPushURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	id := e.accept(t, voice.PathNotify, notifyReq("+8613800000001", nil))
	e.waitIdle(t)
	rec, _ := e.sim.Call(id)
	if len(rec.Events) != 4 || rec.Events[0].Pushed || len(rec.CDRPushes) != 0 || rec.CDR == nil {
		t.Fatalf("record %+v: want 4 unpushed events, a CDR and no CDR push", rec)
	}
	if st := e.sim.Stats(); st.Pushes.StatusSent != 0 || st.Pushes.CDRSent != 0 {
		t.Fatalf("pushes %+v, want none", st.Pushes)
	}
}
