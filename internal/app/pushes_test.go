package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// TestAmbiguousReplyResolvedByPushes: the simulator places the call for a "…0408" number but
// holds its reply past the client's timeout. The job goes `unknown` (never redialled), the
// pushes then resolve it to `completed`, the simulator saw exactly one call, and the producer
// gets one webhook with the real result.
func TestAmbiguousReplyResolvedByPushes(t *testing.T) {
	h := newHarness(t, harnessOptions{
		simConfig: func(c *voicesim.Config) { c.Speed = 2 },
		cfg: func(c *app.Config) {
			c.ProviderTimeout = 100 * time.Millisecond
			c.DialResolve = 30 * time.Second
		},
	})
	id := h.submit(map[string]any{"kind": "notify", "to": "+8613800000408", "voice_file": "a.wav", "callback_url": h.hooks.url("/hook")})
	h.waitFor(id, 10*time.Second, func(r jobstatus.Record) bool { return r.State == jobstatus.StateUnknown })
	rec := h.waitFor(id, 30*time.Second, func(r jobstatus.Record) bool {
		return r.State == jobstatus.StateCompleted && r.CDR != nil
	})
	if got := states(rec); got != "queued,dispatching,unknown,calling,ringing,answered,completed" {
		t.Errorf("events %s", got)
	}
	if rec.CDR.Outcome != "completed" || rec.CDR.DurationSeconds <= 0 {
		t.Errorf("cdr %+v", rec.CDR)
	}
	if n := h.callsFor(id); n != 1 {
		t.Errorf("simulator accepted %d calls, want exactly 1", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(h.hooks.get(id)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	hits := h.hooks.get(id)
	if len(hits) != 1 {
		t.Fatalf("%d webhooks, want 1", len(hits))
	}
	var got jobstatus.Record
	if err := json.Unmarshal(hits[0].body, &got); err != nil || got.State != jobstatus.StateCompleted {
		t.Errorf("webhook carries state %s (%v), want completed", got.State, err)
	}
}

// TestPushHandling drives the push endpoints by hand for a job the worker leaves alone (it is
// scheduled an hour ahead), so that every order of pushes can be tried.
func TestPushHandling(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tagger := queue.NewTagger(h.cfg.Keys().UserData)
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	newJob := func() (string, string) {
		id := h.submit(map[string]any{"kind": "notify", "to": "+8613800000009", "voice_file": "a.wav", "scheduled_at": at})
		return id, tagger.Tag(queue.Reference{JobID: id, Attempt: 0})
	}
	secretPath := "/callbacks/" + h.cfg.PushSecret
	status := func(event, session, userData string, extra string) int {
		body := fmt.Sprintf(`{"eventType":%q,"statusInfo":{"sessionId":%q,"timestamp":"2026-11-25 10:00:00","userData":%q%s}}`, event, session, userData, extra)
		return h.do("POST", secretPath+"/status", body, nil)
	}
	fee := func(session, userData string, answered bool) int {
		ans := ""
		if answered {
			ans = `"callOutAnswerTime":"2026-11-25 10:00:08",`
		}
		body := fmt.Sprintf(`{"eventType":"fee","feeLst":[{"direction":0,"spId":"sp","appKey":"k","bindNum":"+8675500000001","sessionId":%q,"callerNum":"+8675500000001","calleeNum":"+8613800000009","callOutStartTime":"2026-11-25 10:00:00",%s"callEndTime":"2026-11-25 10:00:20","ulFailReason":0,"serviceType":"001","userData":%q}]}`, session, ans, userData)
		return h.do("POST", secretPath+"/fee", body, nil)
	}

	t.Run("wrong secret is 404", func(t *testing.T) {
		for _, path := range []string{"/callbacks/wrong/status", "/callbacks/wrong/fee", "/callbacks//status"} {
			if code := h.do("POST", path, `{}`, nil); code != http.StatusNotFound {
				t.Errorf("POST %s = %d, want 404", path, code)
			}
		}
	})
	t.Run("malformed is 400", func(t *testing.T) {
		for _, body := range []string{`{`, `{"eventType":"dance","statusInfo":{"sessionId":"s"}}`, `{"eventType":"answer","statusInfo":{}}`} {
			if code := h.do("POST", secretPath+"/status", body, nil); code != http.StatusBadRequest {
				t.Errorf("status push %s = %d, want 400", body, code)
			}
		}
		if code := h.do("POST", secretPath+"/fee", `{"eventType":"fee","feeLst":[]}`, nil); code != http.StatusBadRequest {
			t.Errorf("empty CDR push = %d, want 400", code)
		}
	})
	t.Run("forged or missing tag leaves the job untouched", func(t *testing.T) {
		id, good := newJob()
		forged := []string{
			id,                               // no tag at all
			id + ".0.AAAAAAAAAAAAAAAAAAAAAA", // wrong tag
			good[:len(good)-2] + "xx",        // tampered tag
			strings.Replace(good, id, "j_aaaaaaaaaaaaaaaaaaaa", 1),
		}
		before := counter(t, h.registry, "voicequeue_pushes_received_total", map[string]string{"type": "status", "outcome": "forged"})
		for _, ud := range forged {
			if code := status("answer", "S-forged", ud, ""); code != http.StatusOK {
				t.Errorf("forged push answered %d, want 200 (ignored)", code)
			}
		}
		if code := fee("S-forged", forged[1], true); code != http.StatusOK {
			t.Errorf("forged CDR answered %d", code)
		}
		after := counter(t, h.registry, "voicequeue_pushes_received_total", map[string]string{"type": "status", "outcome": "forged"})
		if after-before != float64(len(forged)) {
			t.Errorf("forged pushes counted %v, want %d", after-before, len(forged))
		}
		if fc := counter(t, h.registry, "voicequeue_pushes_received_total", map[string]string{"type": "fee", "outcome": "forged"}); fc < 1 {
			t.Errorf("forged CDR not counted")
		}
		// No userData and an unknown session: nothing to correlate, counted as unknown.
		if code := status("answer", "S-nobody", "", ""); code != http.StatusOK {
			t.Errorf("untagged push answered %d", code)
		}
		if c := counter(t, h.registry, "voicequeue_pushes_received_total", map[string]string{"type": "status", "outcome": "unknown_job"}); c < 1 {
			t.Error("untagged push not counted as unknown_job")
		}
		rec := h.record(id)
		if rec.State != jobstatus.StateScheduled || len(rec.Events) != 1 || rec.CDR != nil {
			t.Errorf("job touched by forged pushes: %s %s", rec.State, states(rec))
		}
	})
	t.Run("CDR before disconnect, duplicates and late pushes", func(t *testing.T) {
		id, ud := newJob()
		for _, ev := range []string{"callout", "alerting", "answer", "answer", "alerting"} {
			if code := status(ev, "S-1", ud, ""); code != http.StatusOK {
				t.Fatalf("%s push = %d", ev, code)
			}
		}
		if code := fee("S-1", ud, true); code != http.StatusOK {
			t.Fatalf("CDR push = %d", code)
		}
		rec := h.record(id)
		if rec.State != jobstatus.StateCompleted || rec.CDR == nil || rec.CDR.DurationSeconds != 12 {
			t.Fatalf("after CDR: %s cdr %+v", rec.State, rec.CDR)
		}
		// The disconnect arrives after the CDR, then everything again (duplicates), then a late
		// disconnect with another outcome: nothing changes.
		for _, p := range []struct{ ev, extra string }{
			{"disconnect", `,"stateCode":0,"stateDesc":"The user releases the call."`},
			{"disconnect", `,"stateCode":0`},
			{"answer", ""},
			{"disconnect", `,"stateCode":8102`},
		} {
			if code := status(p.ev, "S-1", ud, p.extra); code != http.StatusOK {
				t.Fatalf("%s push = %d", p.ev, code)
			}
		}
		if code := fee("S-1", ud, false); code != http.StatusOK {
			t.Fatalf("re-sent CDR = %d", code)
		}
		got := h.record(id)
		if states(got) != "scheduled,calling,ringing,answered,completed" {
			t.Errorf("events %s", states(got))
		}
		if got.State != jobstatus.StateCompleted || got.CDR.DurationSeconds != 12 || got.CDR.Outcome != "completed" {
			t.Errorf("record changed by late pushes: %s %+v", got.State, got.CDR)
		}
	})
	t.Run("pushes of another session are stale", func(t *testing.T) {
		id, ud := newJob()
		status("callout", "S-2", ud, "")
		status("disconnect", "S-other", ud, `,"stateCode":8102`)
		if rec := h.record(id); rec.State != jobstatus.StateCalling {
			t.Errorf("state %s after a push of another session, want calling", rec.State)
		}
	})
}

// TestBadRequestsOverAPI sends every bad request of queue/testdata/bad_requests.json to the API:
// each is answered 400 naming the field, and nothing reaches Redis.
func TestBadRequestsOverAPI(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	raw, err := os.ReadFile("../queue/testdata/bad_requests.json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct{ Name, Body, Field string }
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 25 {
		t.Fatalf("%d bad requests, want at least 25", len(rows))
	}
	before := h.dataKeys()
	for _, row := range rows {
		t.Run(row.Name, func(t *testing.T) {
			var res struct{ Error, Field string }
			if code := h.do("POST", "/v1/jobs", row.Body, &res); code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", code)
			}
			if res.Field != row.Field || res.Error == "" {
				t.Errorf("answer %+v, want field %q", res, row.Field)
			}
		})
	}
	// The same requests in one batch: every item refused with its field, nothing enqueued.
	items := make([]json.RawMessage, 0, len(rows))
	for _, row := range rows {
		if json.Valid([]byte(row.Body)) {
			items = append(items, json.RawMessage(row.Body))
		}
	}
	var batch struct {
		Accepted, Rejected int
		Results            []struct {
			Index            int
			Field, Error, ID string
		}
	}
	if code := h.do("POST", "/v1/jobs/batch", map[string]any{"jobs": items}, &batch); code != http.StatusOK {
		t.Fatalf("batch status %d", code)
	}
	if batch.Accepted != 0 || batch.Rejected != len(items) {
		t.Errorf("batch accepted %d rejected %d, want 0 and %d", batch.Accepted, batch.Rejected, len(items))
	}
	if after := h.dataKeys(); after != before {
		t.Errorf("Redis data keys %d → %d: bad requests reached Redis", before, after)
	}
	// Auth and size limits.
	h.token = "wrong-token-0123456789"
	if code := h.do("POST", "/v1/jobs", `{"kind":"verify","to":"+8613800000001"}`, nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	h.token = "e2e-producer-token-0123456789"
	big := `{"kind":"verify","to":"+8613800000001","idempotency_key":"` + strings.Repeat("x", 70<<10) + `"}`
	if code := h.do("POST", "/v1/jobs", big, nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", code)
	}
	if code := h.do("GET", "/v1/jobs/j_doesnotexist00000000", nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown job: %d, want 404", code)
	}
}

// dataKeys counts the keys that jobs could create: everything but asynq's server and worker
// heartbeats, which the running worker writes on its own.
func (h *harness) dataKeys() int {
	h.t.Helper()
	keys, err := h.rdb.Keys(h.t.Context(), "*").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		if !strings.HasPrefix(k, "asynq:servers") && !strings.HasPrefix(k, "asynq:workers") {
			n++
		}
	}
	return n
}

// counter sums the samples of a counter (or gauge) whose labels match (0 when absent).
func counter(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	return 0
}

// TestCancel: a job not yet dialled can be canceled (its task leaves the queue); once dialled it
// cannot (409).
func TestCancel(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	id := h.submit(map[string]any{"kind": "notify", "to": "+8613800000051", "voice_file": "a.wav", "scheduled_at": at, "callback_url": h.hooks.url("/hook")})
	var rec jobstatus.Record
	if code := h.do("DELETE", "/v1/jobs/"+id, nil, &rec); code != http.StatusOK || rec.State != jobstatus.StateCanceled {
		t.Fatalf("DELETE = %d, state %s", code, rec.State)
	}
	if n, _ := h.rdb.ZCard(t.Context(), "asynq:{notify}:scheduled").Result(); n != 0 {
		t.Errorf("%d scheduled tasks left after cancel", n)
	}
	done := h.submit(map[string]any{"kind": "verify", "to": "+8613800000052"})
	h.waitSettled(done, true)
	if code := h.do("DELETE", "/v1/jobs/"+done, nil, nil); code != http.StatusConflict {
		t.Errorf("DELETE of a finished job = %d, want 409", code)
	}
	if code := h.do("DELETE", "/v1/jobs/j_aaaaaaaaaaaaaaaaaaaa", nil, nil); code != http.StatusNotFound {
		t.Errorf("DELETE of an unknown job = %d, want 404", code)
	}
}
