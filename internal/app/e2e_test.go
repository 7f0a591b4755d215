package app_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/webhook"
)

// TestEndToEnd runs every job kind and every deterministic outcome of the simulator through the
// gateway, the worker and the simulator on the real Redis, and checks the final state, the order
// of events, the CDR, the number of calls the simulator saw and the producer's webhook.
func TestEndToEnd(t *testing.T) {
	for _, backend := range []struct {
		name string
		mini bool
	}{{"real_redis", false}, {"miniredis", true}} {
		t.Run(backend.name, func(t *testing.T) {
			testEndToEnd(t, newHarness(t, harnessOptions{mini: backend.mini}))
		})
	}
}

func testEndToEnd(t *testing.T, h *harness) {
	tests := []struct {
		name       string
		job        map[string]any
		state      jobstatus.State
		outcome    string   // CDR outcome; "" = no CDR expected
		sequence   []string // exact state sequence, when the outcome fixes it
		calls      int      // requests the simulator accepted
		talks      bool     // the CDR reports talk time
		wantDigits string
	}{
		{"verify answered", map[string]any{"kind": "verify", "to": "+8613800000001"},
			jobstatus.StateCompleted, "completed", []string{"queued", "dispatching", "calling", "ringing", "answered", "completed"}, 1, true, ""},
		{"verify given code", map[string]any{"kind": "verify", "to": "+8613800000002", "code": "4711"},
			jobstatus.StateCompleted, "completed", nil, 1, true, ""},
		{"notify template answered", map[string]any{"kind": "notify", "to": "+8613800000003", "template_id": "tpl_bill", "template_params": []string{"42.50"}},
			jobstatus.StateCompleted, "completed", []string{"queued", "dispatching", "calling", "ringing", "answered", "completed"}, 1, true, ""},
		{"notify presses 1", map[string]any{"kind": "notify", "to": "+8613800000111", "voice_file": "menu.wav", "collect_digits": 1},
			jobstatus.StateCompleted, "completed", nil, 1, true, "1"},
		{"notify busy", map[string]any{"kind": "notify", "to": "+8613800000486", "voice_file": "a.wav"},
			jobstatus.StateBusy, "busy", nil, 1, false, ""},
		{"notify no answer", map[string]any{"kind": "notify", "to": "+8613800000480", "voice_file": "a.wav"},
			jobstatus.StateNoAnswer, "no_answer", nil, 1, false, ""},
		{"notify rejected while ringing", map[string]any{"kind": "notify", "to": "+8613800000603", "voice_file": "a.wav"},
			jobstatus.StateFailed, "rejected", nil, 1, false, ""},
		{"notify powered off", map[string]any{"kind": "notify", "to": "+8613800000410", "voice_file": "a.wav"},
			jobstatus.StateFailed, "unreachable", nil, 1, false, ""},
		{"notify invalid number refused", map[string]any{"kind": "notify", "to": "+8613800000404", "voice_file": "a.wav"},
			jobstatus.StateRejected, "", []string{"queued", "dispatching", "rejected"}, 0, false, ""},
		{"notify transient then accepted", map[string]any{"kind": "notify", "to": "+8613800000503", "voice_file": "a.wav"},
			jobstatus.StateCompleted, "completed", nil, 1, true, ""},
		{"notify ambiguous reply", map[string]any{"kind": "notify", "to": "+8613800000408", "voice_file": "a.wav"},
			jobstatus.StateCompleted, "completed", nil, 1, true, ""},
		{"click2call", map[string]any{"kind": "click2call", "from": "+8613800000005", "to": "+8613800000006", "max_duration_minutes": 10},
			jobstatus.StateCompleted, "completed", nil, 1, true, ""},
		{"click2call callee busy", map[string]any{"kind": "click2call", "from": "+8613800000007", "to": "+8613800000486"},
			jobstatus.StateBusy, "busy", nil, 1, false, ""},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		tt.job["callback_url"] = h.hooks.url("/hook")
		ids[i] = h.submit(tt.job)
	}
	keys := [][]byte{h.cfg.Keys().Webhook}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := ids[i]
			rec := h.waitSettled(id, tt.outcome != "")
			if rec.State != tt.state {
				t.Fatalf("state %s, want %s (events %s)", rec.State, tt.state, states(rec))
			}
			checkEventOrder(t, rec)
			if tt.sequence != nil && states(rec) != join(tt.sequence) {
				t.Errorf("events %s, want %s", states(rec), join(tt.sequence))
			}
			if tt.outcome != "" {
				if rec.CDR == nil || rec.CDR.Outcome != tt.outcome {
					t.Fatalf("cdr %+v, want outcome %s", rec.CDR, tt.outcome)
				}
				if tt.talks != (rec.CDR.DurationSeconds > 0) {
					t.Errorf("cdr duration %ds, want talk time %v", rec.CDR.DurationSeconds, tt.talks)
				}
			}
			if rec.Digits != tt.wantDigits {
				t.Errorf("digits %q, want %q", rec.Digits, tt.wantDigits)
			}
			if got := h.callsFor(id); got != tt.calls {
				t.Errorf("simulator accepted %d calls for the job, want %d", got, tt.calls)
			}
			// One signed webhook, carrying the final record.
			var hits []hookHit
			deadline := time.Now().Add(10 * time.Second)
			for len(hits) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				hits = h.hooks.get(id)
			}
			if len(hits) != 1 {
				t.Fatalf("%d webhooks, want 1", len(hits))
			}
			if err := webhook.Verify(keys, hits[0].signature, hits[0].body, time.Now(), 5*time.Minute); err != nil {
				t.Errorf("webhook signature: %v", err)
			}
			var got jobstatus.Record
			if err := json.Unmarshal(hits[0].body, &got); err != nil || got.ID != id || !got.State.Final() {
				t.Errorf("webhook body %s: %v", hits[0].body, err)
			}
		})
	}
	// A while later, still exactly one webhook per job (late pushes must not fire another).
	time.Sleep(300 * time.Millisecond)
	for i, id := range ids {
		if n := len(h.hooks.get(id)); n != 1 {
			t.Errorf("%s: %d webhooks after settling, want 1", tests[i].name, n)
		}
	}
}

// checkEventOrder asserts that events never go backwards and never repeat a state.
func checkEventOrder(t *testing.T, rec jobstatus.Record) {
	t.Helper()
	seen := map[jobstatus.State]bool{}
	prev := -1
	for _, e := range rec.Events {
		if e.State == jobstatus.StateQueued && prev == jobstatus.StateDispatching.Rank() {
			prev = -1 // a retry sends the job back to the queue
		}
		if prev == jobstatus.StateUnknown.Rank() && seen[jobstatus.StateUnknown] {
			prev = -1 // a push resolves an unknown job
		}
		if e.State.Rank() < prev {
			t.Errorf("events go backwards: %s", states(rec))
		}
		if seen[e.State] && e.State != jobstatus.StateQueued && e.State != jobstatus.StateDispatching {
			t.Errorf("state %s recorded twice: %s", e.State, states(rec))
		}
		seen[e.State] = true
		prev = e.State.Rank()
	}
	if last := rec.Events[len(rec.Events)-1].State; last != rec.State {
		t.Errorf("last event %s, record state %s", last, rec.State)
	}
}

func join(s []string) string { return slicesJoin(s) }

func slicesJoin(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

var _ = slices.Contains[[]string]
var _ = http.StatusOK
