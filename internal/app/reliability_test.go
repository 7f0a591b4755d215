package app_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// TestPushesSurviveRedisOutage: while Redis is down the gateway spools every push (answering
// 200), and once Redis is back it replays them in order, exactly once.
func TestPushesSurviveRedisOutage(t *testing.T) {
	h := newHarness(t, harnessOptions{mini: true})
	tagger := queue.NewTagger(h.cfg.Keys().UserData)
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	id := h.submit(map[string]any{"kind": "notify", "to": "+8613800000041", "voice_file": "a.wav", "scheduled_at": at})
	ud := tagger.Tag(queue.Reference{JobID: id})
	path := "/callbacks/" + h.cfg.PushSecret

	h.mr.Close() // Redis goes away
	post := func(kind, body string) {
		t.Helper()
		resp, err := http.Post(h.api+path+"/"+kind, "application/json", stringsReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s push during the outage answered %d, want 200 (spooled)", kind, resp.StatusCode)
		}
	}
	for _, ev := range []string{"callout", "alerting", "answer"} {
		post("status", fmt.Sprintf(`{"eventType":%q,"statusInfo":{"sessionId":"S-outage","userData":%q}}`, ev, ud))
	}
	post("status", fmt.Sprintf(`{"eventType":"disconnect","statusInfo":{"sessionId":"S-outage","stateCode":0,"userData":%q}}`, ud))
	post("fee", fmt.Sprintf(`{"eventType":"fee","feeLst":[{"direction":0,"spId":"sp","appKey":"k","bindNum":"+8675500000001","sessionId":"S-outage","callerNum":"+8675500000001","calleeNum":"+8613800000041","callOutAnswerTime":"2026-11-25 10:00:05","callEndTime":"2026-11-25 10:00:35","serviceType":"001","userData":%q}]}`, ud))
	if n := counter(t, h.registry, "voicequeue_spool_pushes_total", map[string]string{"result": "spooled"}); n != 5 {
		t.Errorf("%v pushes spooled, want 5", n)
	}

	if err := h.mr.Restart(); err != nil { // Redis is back (miniredis keeps its data)
		t.Fatal(err)
	}
	rec := h.waitFor(id, 15*time.Second, func(r jobstatus.Record) bool { return r.State == jobstatus.StateCompleted && r.CDR != nil })
	if got := states(rec); got != "scheduled,calling,ringing,answered,completed" {
		t.Errorf("events after replay %s", got)
	}
	if rec.CDR.DurationSeconds != 30 {
		t.Errorf("cdr %+v", rec.CDR)
	}
	if n := counter(t, h.registry, "voicequeue_spool_pushes_total", map[string]string{"result": "replayed"}); n != 5 {
		t.Errorf("%v pushes replayed, want 5 (exactly once)", n)
	}
}

// TestProviderOutage: during a run of 503s the circuit breaker pauses dialling instead of burning
// every job's attempts; after recovery every job completes and none is rejected or failed.
func TestProviderOutage(t *testing.T) {
	h := newHarness(t, harnessOptions{cfg: func(c *app.Config) {
		c.BreakerThreshold, c.BreakerCooldown, c.BreakerMaxCooldown = 3, 200*time.Millisecond, 400*time.Millisecond
		c.MaxAttempts = 3
	}})
	h.sim.SetOutage("503", true)
	var ids []string
	for i := range 12 {
		ids = append(ids, h.submit(map[string]any{"kind": "notify", "to": fmt.Sprintf("+86138000007%02d", i), "voice_file": "a.wav"}))
	}
	deadline := time.Now().Add(10 * time.Second)
	for counter(t, h.registry, "voicequeue_breaker_transitions_total", map[string]string{"to": "open"}) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never opened during the outage")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // the outage goes on for a while with the breaker open
	h.sim.SetOutage("503", false)
	for _, id := range ids {
		rec := h.waitFor(id, 30*time.Second, func(r jobstatus.Record) bool { return r.State.Final() })
		if rec.State != jobstatus.StateCompleted {
			t.Errorf("job %s ended %s (%s) after the outage, want completed", id, rec.State, rec.Reason)
		}
	}
}

// TestGracefulShutdown: a worker stopped (as on SIGTERM) while a provider request is in flight
// lets the request finish and records its result: nothing half-recorded, exactly one call.
func TestGracefulShutdown(t *testing.T) {
	h := newHarness(t, harnessOptions{simConfig: func(c *voicesim.Config) { c.Faults.Latency = 800 * time.Millisecond }})
	id := h.submit(map[string]any{"kind": "verify", "to": "+8613800000061"})
	h.waitFor(id, 10*time.Second, func(r jobstatus.Record) bool { return r.State == jobstatus.StateDispatching })
	h.stopWorker() // the request is still waiting for the provider's reply
	rec := h.record(id)
	if rec.State == jobstatus.StateDispatching || rec.State == jobstatus.StateQueued {
		t.Fatalf("after shutdown the job is %s: the in-flight request was not recorded", rec.State)
	}
	if rec.SessionID == "" && rec.State != jobstatus.StateUnknown {
		t.Errorf("state %s without a session", rec.State)
	}
	rec = h.waitSettled(id, true) // the gateway keeps taking pushes
	if rec.State != jobstatus.StateCompleted || h.callsFor(id) != 1 {
		t.Errorf("job ended %s with %d calls, want completed with 1", rec.State, h.callsFor(id))
	}
}
