package voicesim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/voicequeue/voicequeue/internal/voice"
)

func TestRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantCode   string // "" = a plain 404, no JSON
	}{
		{"notify", http.MethodPost, voice.PathNotify, 200, "0"},
		{"wrong case", http.MethodPost, "/rest/httpsessions/callNotify/v2.0", 404, ""},
		{"legacy version", http.MethodPost, "/rest/httpsessions/callnotify/v1.0", 404, ""},
		{"trailing slash", http.MethodPost, voice.PathNotify + "/", 404, ""},
		{"sandbox prefix", http.MethodPost, "/sandbox" + voice.PathNotify, 404, ""},
		{"unknown", http.MethodGet, "/", 404, ""},
		{"GET on notify", http.MethodGet, voice.PathNotify, 400, voice.CodeInvalidRestAPI},
		{"PUT on click2Call", http.MethodPut, voice.PathClick2Call, 400, voice.CodeInvalidRestAPI},
		{"POST on record", http.MethodPost, voice.PathRecord, 400, voice.CodeInvalidRestAPI},
		{"GET on callStop", http.MethodGet, voice.PathCallStop, 400, voice.CodeInvalidRestAPI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(t, tt.method, tt.path, notifyReq("+8613800000001", nil))
			if r.status != tt.wantStatus || r.resp.ResultCode != tt.wantCode {
				t.Fatalf("HTTP %d %q, want %d %q", r.status, r.body, tt.wantStatus, tt.wantCode)
			}
			if !r.closed {
				t.Error("reply without Connection: close, want short connections")
			}
			if tt.wantCode == "" {
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("404 Content-Type %q, want plain text", ct)
				}
				return
			}
			if r.header.Get("Content-Type") != voice.ContentType {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
		})
	}
}

func TestCallStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Speed: 10}) // the session lasts 1.6 s of wall time
	rcv := newReceiver(t)
	id := e.accept(t, voice.PathClick2Call, click2CallReq("+8613800000001", rcv))
	if ev := <-rcv.arrived; ev.EventType != voice.EventCallout {
		t.Fatalf("first push %s, want callout", ev.EventType)
	}
	stop := func(session string) reply {
		return e.do(t, http.MethodPost, voice.PathCallStop, voice.CallStopRequest{SessionID: session, Signal: voice.SignalCallStop})
	}
	if r := stop(id); r.status != 200 || r.resp.ResultCode != "0" || r.resp.SessionID != "" {
		t.Fatalf("stop: HTTP %d %s, want 200 resultcode 0 without sessionId", r.status, r.body)
	}
	e.waitIdle(t)
	events := rcv.events(id)
	last := events[len(events)-1]
	if last.EventType != voice.EventDisconnect || *last.StatusInfo.StateCode != stateCodeStopped {
		t.Fatalf("events %q, want a disconnect with 8017 last", eventNames(events))
	}
	cdrs := rcv.cdrs(id)
	if len(cdrs) != 1 || *cdrs[0].ULFailReason != ulFailStopped || !cdrs[0].FwdAnswerTime.IsZero() {
		t.Fatalf("CDR %+v, want ulFailReason 1003 and no fwdAnswerTime", cdrs)
	}
	if rec, _ := e.sim.Call(id); rec.Result != ResultStopped || e.sim.Stats().Stops != 1 {
		t.Fatalf("record result %q, want stopped", rec.Result)
	}

	notifyID := e.accept(t, voice.PathNotify, notifyReq("+8613800000001", nil))
	for name, session := range map[string]string{"ended session": id, "unknown session": "nope", "notify session": notifyID} {
		if r := stop(session); r.status != 400 || r.resp.ResultCode != "1010002" || r.resp.ResultDesc != "Invalid request. sessionid" {
			t.Errorf("%s: HTTP %d %s, want 400 1010002 naming sessionid", name, r.status, r.body)
		}
	}
}

func TestCallStopUnknownCodeConfigurable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{StopUnknownSessionCode: "1020001"})
	r := e.do(t, http.MethodPost, voice.PathCallStop, voice.CallStopRequest{SessionID: "nope", Signal: voice.SignalCallStop})
	if r.resp.ResultCode != "1020001" || r.resp.ResultDesc != "Parameter error." {
		t.Fatalf("reply %+v, want the configured 1020001", r.resp)
	}
}

func TestRecording(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{RecordingEnabled: true})
	rcv := newReceiver(t)
	req := click2CallReq("+8613800000001", rcv)
	req.RecordFlag = true
	id := e.accept(t, voice.PathClick2Call, req)
	shortReq := click2CallReq("+8613800000486", rcv) // B busy: nothing to record
	shortReq.RecordFlag = true
	shortID := e.accept(t, voice.PathClick2Call, shortReq)
	e.waitIdle(t)

	cdr := rcv.cdrs(id)[0]
	if *cdr.RecordFlag != 1 || cdr.RecordObjectName == "" || cdr.RecordDomain == "" || cdr.RecordBucketName == "" ||
		!cdr.RecordStartTime.Equal(cdr.FwdAnswerTime.Time) {
		t.Fatalf("recorded CDR %+v", cdr)
	}
	if short := rcv.cdrs(shortID)[0]; *short.RecordFlag != 0 || short.RecordObjectName != "" {
		t.Fatalf("unanswered call recorded: %+v", short)
	}
	record := func(file, domain string) reply {
		q := url.Values{"fileName": {file}, "recordDomain": {domain}}
		return e.do(t, http.MethodGet, voice.PathRecord+"?"+q.Encode(), nil)
	}
	r := record(cdr.RecordObjectName, cdr.RecordDomain)
	loc := r.header.Get("Location")
	if r.status != http.StatusMovedPermanently || !strings.HasPrefix(loc, e.srv.URL+"/sim/recordings/") {
		t.Fatalf("HTTP %d Location %q, want 301 to the recording", r.status, loc)
	}
	res, err := httpGet(loc)
	if err != nil {
		t.Fatal(err)
	}
	wav, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(string(wav), "RIFF") || res.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("recording download: HTTP %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for name, args := range map[string][2]string{
		"unknown file": {"nope.wav", cdr.RecordDomain},
		"wrong domain": {cdr.RecordObjectName, "other.example"},
	} {
		if r := record(args[0], args[1]); r.resp.ResultCode != voice.CodeRecordNotFound || r.header.Get("Location") != "" {
			t.Errorf("%s: HTTP %d %s, want JSON 1016001", name, r.status, r.body)
		}
	}
	if r := record("", cdr.RecordDomain); r.resp.ResultCode != "1010002" || r.resp.ResultDesc != "Invalid request. fileName" {
		t.Errorf("missing fileName: %s", r.body)
	}
}

func TestSimEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Rate: 3})
	rcv := newReceiver(t)
	req := notifyReq("+8613800000001", rcv)
	req.UserData = "job-1"
	e.accept(t, voice.PathNotify, req)
	e.accept(t, voice.PathNotify, req) // the same job placed twice
	e.accept(t, voice.PathVerify, verifyReq("+8613800000002", rcv))
	e.do(t, http.MethodPost, voice.PathVerify, verifyReq("+8613800000002", rcv)) // over the rate
	e.clock.Advance(time.Second)
	e.accept(t, voice.PathClick2Call, click2CallReq("+8613800000486", rcv))
	e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000404", rcv))
	e.waitIdle(t)

	get := func(path string, v any) {
		t.Helper()
		res, err := httpGet(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != voice.ContentType {
			t.Fatalf("GET %s: HTTP %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
	}
	var st Stats
	get("/sim/stats", &st)
	want := Stats{Accepted: 4, MaxPerSecond: 3, MaxInAnySecond: 3, DuplicateCalls: 1}
	if st.Accepted != want.Accepted || st.MaxPerSecond != want.MaxPerSecond || st.MaxInAnySecond != want.MaxInAnySecond ||
		st.DuplicateCalls != want.DuplicateCalls || st.DuplicateUserData["job-1"] != 2 || len(st.DuplicateUserData) != 1 {
		t.Errorf("stats %+v", st)
	}
	if st.CallsPerCallee["+8613800000001"] != 2 || st.CallsPerCallee["+8613800000002"] != 1 ||
		st.AcceptedByAPI[APINotify] != 2 || st.AcceptedByAPI[APIClick2Call] != 1 {
		t.Errorf("per callee %v, per API %v", st.CallsPerCallee, st.AcceptedByAPI)
	}
	if len(st.CallsPerSecond) != 2 || st.CallsPerSecond[0].Calls != 3 || st.CallsPerSecond[1].Calls != 1 ||
		!st.CallsPerSecond[0].Second.Equal(testStart) {
		t.Errorf("calls per second %+v", st.CallsPerSecond)
	}
	if st.Refusals[voice.CodeSPCallLimit] != 1 || st.Refusals[voice.CodeInvalidRequest] != 1 ||
		st.OverCapRefusals[voice.CodeSPCallLimit] != 1 || len(st.OverCapRefusals) != 1 {
		t.Errorf("refusals %v, over cap %v", st.Refusals, st.OverCapRefusals)
	}
	if st.Results[ResultCompleted] != 3 || st.Results["busy"] != 1 || st.Pushes.StatusSent != 4*3+5 || st.Pushes.CDRSent == 0 {
		t.Errorf("results %v, pushes %+v", st.Results, st.Pushes)
	}

	var calls []CallRecord
	get("/sim/calls", &calls)
	if len(calls) != 4 || calls[0].CalleeNbr != "+8613800000001" || calls[3].CallerNbr != "+8613700000001" ||
		calls[3].Scenario != ScenarioBusy || len(calls[3].Events) != 5 || calls[3].CDR == nil {
		t.Fatalf("calls %+v", calls)
	}

	post := func(path string) int {
		t.Helper()
		res, err := httpPost(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := post("/sim/reset"); code != http.StatusNoContent {
		t.Fatalf("reset: HTTP %d", code)
	}
	st, calls = Stats{}, nil
	get("/sim/stats", &st)
	get("/sim/calls", &calls)
	if st.Accepted != 0 || len(calls) != 0 || len(st.Refusals) != 0 {
		t.Fatalf("after reset: stats %+v, %d calls", st, len(calls))
	}
	for path, want := range map[string]int{"/sim/reset": http.StatusMethodNotAllowed, "/healthz": 200, "/sim/nope": 404} {
		res, err := httpGet(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: HTTP %d, want %d", path, res.StatusCode, want)
		}
	}
}

func TestMaxRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{MaxRecords: 10})
	for range 25 {
		e.accept(t, voice.PathNotify, notifyReq("+8613800000001", nil))
	}
	if calls, st := e.sim.Calls(), e.sim.Stats(); len(calls) > 10 || len(calls) < 9 || st.Accepted != 25 {
		t.Fatalf("%d records kept of %d accepted, want at most 10", len(calls), st.Accepted)
	}
}

func TestOutages(t *testing.T) {
	t.Parallel()
	t.Run("scheduled 503", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{Outages: []Outage{{Start: 10 * time.Second, End: 20 * time.Second, Mode: Outage503}}}})
		e.accept(t, voice.PathNotify, notifyReq("+8613800000001", nil))
		e.clock.Advance(10 * time.Second)
		r := e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000001", nil))
		if r.status != http.StatusServiceUnavailable || r.resp.ResultCode != "" {
			t.Fatalf("in the outage: HTTP %d %s, want a plain 503", r.status, r.body)
		}
		if e.sim.OutageMode() != Outage503 {
			t.Fatalf("OutageMode %q", e.sim.OutageMode())
		}
		e.clock.Advance(10 * time.Second)
		e.accept(t, voice.PathNotify, notifyReq("+8613800000001", nil))
		if st := e.sim.Stats(); st.Refusals["outage_503"] != 1 {
			t.Fatalf("refusals %v", st.Refusals)
		}
	})
	t.Run("runtime refuse", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{})
		e.sim.SetOutage(OutageRefuse, true)
		e.sim.SetOutage(Outage503, true) // refuse wins
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+voice.PathNotify, strings.NewReader(mustJSON(t, notifyReq("+8613800000001", nil))))
		req.Header.Set("Content-Type", voice.ContentType)
		sign(req.Header, testKey, testSecret, e.clock.Now())
		if res, err := testClient().Do(req); err == nil {
			res.Body.Close()
			t.Fatalf("got HTTP %d during a refuse outage, want no reply", res.StatusCode)
		}
		e.sim.SetOutage(OutageRefuse, false)
		if r := e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000001", nil)); r.status != 503 {
			t.Fatalf("HTTP %d, want 503 while the 503 outage is on", r.status)
		}
		e.sim.SetOutage(Outage503, false)
		e.accept(t, voice.PathNotify, notifyReq("+8613800000001", nil))
		e.sim.SetOutage("teapot", true) // ignored
		if e.sim.OutageMode() != "" {
			t.Fatalf("OutageMode %q after an unknown mode", e.sim.OutageMode())
		}
	})
	t.Run("over HTTP", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{})
		post := func(q string) int {
			res, err := httpPost(e.srv.URL + "/sim/outage?" + q)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		if post("mode=503&on=true") != 204 || e.sim.OutageMode() != Outage503 {
			t.Fatal("outage not switched on")
		}
		if post("mode=503&on=false") != 204 || e.sim.OutageMode() != "" {
			t.Fatal("outage not switched off")
		}
		if post("mode=refuse&on=true&for=20ms") != 204 || e.sim.OutageMode() != OutageRefuse {
			t.Fatal("timed outage not switched on")
		}
		for e.sim.OutageMode() != "" {
			time.Sleep(time.Millisecond) // the "for" timer runs on wall time
		}
		for _, bad := range []string{"mode=x&on=true", "mode=503", "mode=503&on=true&for=-1s"} {
			if code := post(bad); code != 400 {
				t.Errorf("%s: HTTP %d, want 400", bad, code)
			}
		}
	})
}

func TestInjectedErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     Faults
		wantStatus int
		wantCode   string
	}{
		{"error rate", Faults{ErrorRate: 1}, 500, voice.CodeInternal},
		{"flow control", Faults{FlowControlRate: 1}, 403, voice.CodeFlowControl},
		{"latency", Faults{Latency: time.Millisecond}, 200, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Config{Faults: tt.faults})
			r := e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000001", nil))
			if r.status != tt.wantStatus || r.resp.ResultCode != tt.wantCode {
				t.Fatalf("HTTP %d %+v, want %d %s", r.status, r.resp, tt.wantStatus, tt.wantCode)
			}
		})
	}
	t.Run("error rate applies after authentication", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{ErrorRate: 1}})
		r := e.doWith(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000001", nil), func(http.Header) {})
		if r.resp.ResultCode != voice.CodeAuthFailed {
			t.Fatalf("%+v, want 1023006", r.resp)
		}
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	e := newEnv(t, Config{Registerer: reg, Ports: 1, Speed: 1})
	e.accept(t, voice.PathNotify, notifyReq("+8613800000001", nil))
	e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000001", nil))

	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	if got := testutil.ToFloat64(e.sim.metrics.accepted.WithLabelValues(APINotify)); got != 1 {
		t.Errorf("accepted %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.sim.metrics.requests.WithLabelValues(APINotify, voice.CodePortsExhausted)); got != 1 {
		t.Errorf("port refusals %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.sim.metrics.active); got != 1 {
		t.Errorf("active %v, want 1", got)
	}
	res, err := httpGet(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), "voicequeue_sim_calls_accepted_total") || strings.Contains(string(body), "+86") {
		t.Fatalf("/metrics: %s", body)
	}
	if _, err := New(Config{AppKey: "k", AppSecret: "s", Registerer: reg}); err == nil {
		t.Fatal("second simulator on the same registry: want a registration error")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no credentials", Config{}, "app key is empty"},
		{"bad display number", Config{AppKey: "k", AppSecret: "s", DisplayNumbers: []string{"0755"}}, "display number"},
		{"negative speed", Config{AppKey: "k", AppSecret: "s", Speed: -1}, "speed"},
		{"probability", Config{AppKey: "k", AppSecret: "s", Faults: Faults{ErrorRate: 2}}, "error rate"},
		{"outage mode", Config{AppKey: "k", AppSecret: "s", Faults: Faults{Outages: []Outage{{End: time.Second, Mode: "x"}}}}, "outage 0"},
		{"random sum", Config{AppKey: "k", AppSecret: "s", Random: &RandomMode{Busy: 0.6, NoAnswer: 0.6}}, "add up"},
		{"template", Config{AppKey: "k", AppSecret: "s", Templates: map[string]string{"t": "${X}"}}, "template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, err := New(tt.cfg)
			if err == nil {
				sim.Close()
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestCloseAndWaitIdle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Speed: 1})
	e.accept(t, voice.PathClick2Call, click2CallReq("+8613800000001", newReceiver(t)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := e.sim.WaitIdle(ctx); err == nil {
		t.Fatal("WaitIdle returned while a 16 s call runs")
	}
	if err := e.sim.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitIdle(context.Background()); err != nil {
		t.Fatalf("WaitIdle after Close: %v", err)
	}
	calls := e.sim.Calls()
	if len(calls) != 1 || calls[0].Result != ResultAborted || e.sim.Stats().Active != 0 {
		t.Fatalf("after Close: %+v", calls)
	}
	if r := e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000001", nil)); r.resp.ResultCode != voice.CodeInternal {
		t.Fatalf("request after Close: %+v, want 1010001", r.resp)
	}
	if err := e.sim.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	outages, err := ParseOutages("30s+10s:503, 2m+30s:refuse")
	if err != nil || len(outages) != 2 || outages[0] != (Outage{30 * time.Second, 40 * time.Second, Outage503}) ||
		outages[1] != (Outage{2 * time.Minute, 150 * time.Second, OutageRefuse}) {
		t.Fatalf("ParseOutages: %v %v", outages, err)
	}
	for _, bad := range []string{"30s:503", "30s+10s", "x+10s:503", "1s+0s:503", "1s+1s:down"} {
		if _, err := ParseOutages(bad); err == nil {
			t.Errorf("ParseOutages(%q): want an error", bad)
		}
	}
	rm, err := ParseRandom("busy=0.1, no-answer=0.2,rejected=0.05,powered-off=0.01,network-failure=0.02,seed=9")
	if err != nil || *rm != (RandomMode{Busy: 0.1, NoAnswer: 0.2, Rejected: 0.05, PoweredOff: 0.01, NetworkFailure: 0.02, Seed: 9}) {
		t.Fatalf("ParseRandom: %+v %v", rm, err)
	}
	if rm, err := ParseRandom(""); rm != nil || err != nil {
		t.Fatalf("ParseRandom(\"\"): %v %v", rm, err)
	}
	for _, bad := range []string{"busy", "busy=2", "loud=0.1", "seed=x"} {
		if _, err := ParseRandom(bad); err == nil {
			t.Errorf("ParseRandom(%q): want an error", bad)
		}
	}
}
