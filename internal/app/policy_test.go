package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
)

// TestCalleeCapOverAPI: with verify capped at one call per number per minute, a second verify
// job to the same number ends `throttled` with the cap named, and the simulator sees one call.
func TestCalleeCapOverAPI(t *testing.T) {
	caps := "1/60s"
	h := newHarness(t, harnessOptions{cfg: func(c *app.Config) {
		c.CalleeCaps = map[string]*string{"verify": &caps}
		c.CallRate, c.CallBurst, c.MaxConcurrentCalls = 50, 1, 5
	}})
	first := h.submit(map[string]any{"kind": "verify", "to": "+8613800000021"})
	rec := h.waitSettled(first, true)
	if rec.State != jobstatus.StateCompleted {
		t.Fatalf("first verify ended %s", rec.State)
	}
	second := h.submit(map[string]any{"kind": "verify", "to": "+86 138 0000 0021"})
	rec = h.waitFor(second, 10*time.Second, func(r jobstatus.Record) bool { return r.State.Final() })
	if rec.State != jobstatus.StateThrottled || !strings.Contains(rec.Reason, "callee_cap_1_per_1m") {
		t.Fatalf("second verify: state %s reason %q, want throttled by callee_cap_1_per_1m", rec.State, rec.Reason)
	}
	other := h.submit(map[string]any{"kind": "verify", "to": "+8613800000022"})
	if rec := h.waitSettled(other, true); rec.State != jobstatus.StateCompleted {
		t.Errorf("verify to another number ended %s", rec.State)
	}
	if n := h.callsFor(second); n != 0 {
		t.Errorf("simulator saw %d calls for the throttled job", n)
	}
	if c := counter(t, h.registry, "voicequeue_jobs_throttled_total", map[string]string{"reason": "callee_cap_1_per_1m"}); c != 1 {
		t.Errorf("throttled counter %v, want 1", c)
	}
}

// TestRedials: a busy notify job is called again as new attempts of the same job, up to the
// policy's count, each visible in its events; an answered job is never redialled.
func TestRedials(t *testing.T) {
	redials, delay := 2, 50*time.Millisecond
	h := newHarness(t, harnessOptions{cfg: func(c *app.Config) {
		c.Redials = map[string]*int{"notify": &redials}
		c.RedialDelays = map[string]*time.Duration{"notify": &delay}
	}})
	busy := h.submit(map[string]any{"kind": "notify", "to": "+8613800000486", "voice_file": "a.wav", "callback_url": h.hooks.url("/hook")})
	answered := h.submit(map[string]any{"kind": "notify", "to": "+8613800000031", "voice_file": "a.wav"})
	rec := h.waitFor(busy, 20*time.Second, func(r jobstatus.Record) bool {
		return r.State == jobstatus.StateBusy && r.Attempts == 3 && r.CDR != nil
	})
	want := "queued,dispatching,calling,busy,queued,dispatching,calling,busy,queued,dispatching,calling,busy"
	if got := states(rec); got != want {
		t.Errorf("events %s\nwant   %s", got, want)
	}
	if n := h.callsFor(busy); n != 3 {
		t.Errorf("simulator saw %d calls, want 3 (1 + 2 redials)", n)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(h.hooks.get(busy)); n != 1 {
		t.Errorf("%d webhooks, want 1 (only the real end)", n)
	}
	if rec := h.waitSettled(answered, true); rec.State != jobstatus.StateCompleted || h.callsFor(answered) != 1 {
		t.Errorf("answered job: %s with %d calls", rec.State, h.callsFor(answered))
	}
}
