package voicesim

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
)

func TestCDRRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		maxRetries    int
		reply         func(n int) (int, string)
		wantAttempts  int
		wantDelivered bool
	}{
		{"first push delivered", 0, func(int) (int, string) { return 200, "" }, 1, true},
		{"three failures then 200", 0, func(n int) (int, string) {
			if n < 3 {
				return 500, ""
			}
			return 200, `{"resultcode":"0","resultdesc":"Success"}`
		}, 4, true},
		{"always 500: 1 push and 6 re-pushes", 0, func(int) (int, string) { return 500, "" }, 7, false},
		{"resultcode in a 200 body counts as failure", 0, func(n int) (int, string) {
			if n == 0 {
				return 200, `{"resultcode":"1","resultdesc":"busy"}`
			}
			return 200, "ok"
		}, 2, true},
		{"redirect is a failure", 0, func(int) (int, string) { return 302, "" }, 7, false},
		{"retries configurable", 2, func(int) (int, string) { return 503, "" }, 3, false},
		{"retries off", -1, func(int) (int, string) { return 503, "" }, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// 1 h simulated between re-pushes is 3.6 ms of wall time at this speed.
			e := newEnv(t, Config{MaxCDRRetries: tt.maxRetries, Speed: 1e6})
			rcv := newReceiver(t)
			rcv.cdrReply = tt.reply
			id := e.accept(t, voice.PathNotify, notifyReq("+8613800000001", rcv))
			e.waitIdle(t)
			if got := len(rcv.cdrs(id)); got != tt.wantAttempts {
				t.Fatalf("receiver got the CDR %d times, want %d", got, tt.wantAttempts)
			}
			rec, _ := e.sim.Call(id)
			if len(rec.CDRPushes) != tt.wantAttempts {
				t.Fatalf("record has %d CDR pushes, want %d", len(rec.CDRPushes), tt.wantAttempts)
			}
			for i, p := range rec.CDRPushes {
				if p.Attempt != i || p.Records != 1 || p.Delivered != (tt.wantDelivered && i == tt.wantAttempts-1) {
					t.Errorf("push %d: %+v", i, p)
				}
			}
			st := e.sim.Stats()
			wantGivenUp := 0
			if !tt.wantDelivered {
				wantGivenUp = 1
			}
			if st.Pushes.CDRSent != tt.wantAttempts || st.Pushes.CDRRetries != tt.wantAttempts-1 || st.Pushes.CDRGivenUp != wantGivenUp {
				t.Errorf("push stats %+v", st.Pushes)
			}
			// Status pushes are never re-sent, whatever the CDR receiver does.
			if got := len(rcv.events(id)); got != 4 {
				t.Errorf("%d status pushes, want 4", got)
			}
		})
	}
}

func TestStatusPushesNotRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	req := notifyReq("+8613800000001", nil)
	req.StatusURL = "http://127.0.0.1:1/unreachable" // nothing listens on port 1
	id := e.accept(t, voice.PathNotify, req)
	e.waitIdle(t)
	rec, _ := e.sim.Call(id)
	if len(rec.Events) != 4 {
		t.Fatalf("%d status pushes recorded, want 4 (one per event, none re-sent)", len(rec.Events))
	}
	for _, ev := range rec.Events {
		if !ev.Pushed || ev.Delivered || ev.Error == "" {
			t.Errorf("event %+v, want pushed, failed, with an error", ev)
		}
	}
	if st := e.sim.Stats(); st.Pushes.StatusSent != 4 || st.Pushes.StatusFailed != 4 {
		t.Fatalf("push stats %+v", st.Pushes)
	}
}

func TestCDRMerge(t *testing.T) {
	t.Parallel()
	// The fake clock stands still, so every call ends in the same second and its CDR waits up to
	// the merge window (2 s of wall time here) for the others.
	e := newEnv(t, Config{CDRMergeWindow: 2000 * time.Second})
	rcv := newReceiver(t)
	const calls = 120
	ids := map[string]bool{}
	for i := range calls {
		req := notifyReq(fmt.Sprintf("+86138%08d", i+1000), rcv)
		ids[e.accept(t, voice.PathNotify, req)] = true
	}
	e.waitIdle(t)
	pushes := rcv.feePushes()
	total, largest := 0, 0
	seen := map[string]bool{}
	for _, p := range pushes {
		if p.EventType != voice.EventFee || len(p.FeeLst) < 1 || len(p.FeeLst) > voice.MaxFeeRecords {
			t.Fatalf("push of %d records (event %q), want 1-50 fee records", len(p.FeeLst), p.EventType)
		}
		end := p.FeeLst[0].CallEndTime
		for _, f := range p.FeeLst {
			if !f.CallEndTime.Equal(end.Time) {
				t.Errorf("merged CDRs with different callEndTime %v and %v", end, f.CallEndTime)
			}
			if seen[f.SessionID] || !ids[f.SessionID] {
				t.Errorf("CDR of %s pushed twice or unknown", f.SessionID)
			}
			seen[f.SessionID] = true
		}
		total += len(p.FeeLst)
		largest = max(largest, len(p.FeeLst))
	}
	if total != calls || largest != voice.MaxFeeRecords {
		t.Fatalf("%d CDRs in %d pushes, largest %d; want %d CDRs and a full push of 50", total, len(pushes), largest, calls)
	}
}

func TestPushFaults(t *testing.T) {
	t.Parallel()
	t.Run("duplicates", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{DuplicatePushes: 1}})
		rcv := newReceiver(t)
		id := e.accept(t, voice.PathNotify, notifyReq("+8613800000486", rcv))
		e.waitIdle(t)
		if got := eventNames(rcv.events(id)); got != "callout callout disconnect(8102) disconnect(8102)" {
			t.Fatalf("events %q, want each twice", got)
		}
		if got := len(rcv.cdrs(id)); got != 2 {
			t.Fatalf("CDR received %d times, want 2", got)
		}
		if st := e.sim.Stats(); st.Pushes.Duplicates != 3 || st.Pushes.CDRRetries != 0 {
			t.Fatalf("push stats %+v, want 3 duplicates and no retry", st.Pushes)
		}
	})
	t.Run("reordered", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{ReorderPushes: 1}})
		rcv := newReceiver(t)
		id := e.accept(t, voice.PathNotify, notifyReq("+8613800000001", rcv))
		e.waitIdle(t)
		// Every push is held back and swapped with the next one.
		if got := eventNames(rcv.events(id)); got != "alerting callout disconnect(0) answer" {
			t.Fatalf("events %q, want pairs swapped", got)
		}
	})
	t.Run("held last disconnect is still sent", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{ReorderPushes: 1}, CDRMergeWindow: time.Nanosecond})
		rcv := newReceiver(t)
		id := e.accept(t, voice.PathNotify, notifyReq("+8613800000486", rcv))
		e.waitIdle(t)
		if got := eventNames(rcv.events(id)); got != "disconnect(8102) callout" {
			t.Fatalf("events %q", got)
		}
	})
	t.Run("delayed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{Faults: Faults{DelayPushes: 5 * time.Millisecond}})
		rcv := newReceiver(t)
		id := e.accept(t, voice.PathNotify, notifyReq("+8613800000001", rcv))
		e.waitIdle(t)
		if got := eventNames(rcv.events(id)); got != "callout alerting answer disconnect(0)" {
			t.Fatalf("delayed pushes out of order: %q", got)
		}
	})
}

func TestSignedPushes(t *testing.T) {
	t.Parallel()
	for _, newline := range []bool{true, false} {
		t.Run(fmt.Sprintf("newline=%v", newline), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Config{SignPushes: true, PushNewlineDigest: newline})
			rcv := newReceiver(t)
			e.accept(t, voice.PathNotify, notifyReq("+8613800000486", rcv))
			e.waitIdle(t)
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.headers) != 3 {
				t.Fatalf("%d pushes, want 3", len(rcv.headers))
			}
			for i, h := range rcv.headers {
				if h.Get("Authorization") != voice.AuthorizationValue {
					t.Fatalf("push %d Authorization %q", i, h.Get("Authorization"))
				}
				tok, err := voice.ParseUsernameToken(h.Get("X-AKSK"))
				if err != nil {
					t.Fatal(err)
				}
				url := rcv.srv.URL + "/status"
				if i == 2 {
					url = rcv.srv.URL + "/fee"
				}
				want := voice.PushDigest(testSecret, url, tok.Nonce, tok.Created, newline)
				if tok.Username != testKey || tok.PasswordDigest != want || tok.Created != voice.FormatCreated(testStart) {
					t.Errorf("push %d token %+v, want digest %s", i, tok, want)
				}
			}
		})
	}
	t.Run("unsigned by default", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{})
		rcv := newReceiver(t)
		e.accept(t, voice.PathNotify, notifyReq("+8613800000486", rcv))
		e.waitIdle(t)
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		for _, h := range rcv.headers {
			if h.Get("Authorization") != "" || h.Get("X-AKSK") != "" {
				t.Fatal("push carries auth headers by default")
			}
			if h.Get("Content-Type") != voice.ContentType {
				t.Errorf("push Content-Type %q", h.Get("Content-Type"))
			}
		}
	})
}

func TestTimestampForms(t *testing.T) {
	t.Parallel()
	for _, unix := range []bool{false, true} {
		t.Run(fmt.Sprintf("unix=%v", unix), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Config{UnixTimestamps: unix})
			rcv := newReceiver(t)
			e.accept(t, voice.PathNotify, notifyReq("+8613800000486", rcv))
			e.waitIdle(t)
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			want := `"timestamp":"2024-05-01 08:00:00"`
			if unix {
				want = fmt.Sprintf(`"timestamp":%d`, testStart.Unix())
			}
			if !bytes.Contains(rcv.rawStatus[0], []byte(want)) {
				t.Fatalf("callout push %s, want %s", rcv.rawStatus[0], want)
			}
		})
	}
}

func TestPushBodiesMatchReference(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	rcv := newReceiver(t)
	id := e.accept(t, voice.PathNotify, notifyReq("+8613800000486", rcv))
	e.waitIdle(t)
	rcv.mu.Lock()
	raw, rawFee := string(rcv.rawStatus[1]), string(rcv.rawFees[0])
	rcv.mu.Unlock()
	want := fmt.Sprintf(`{"eventType":"disconnect","statusInfo":{"sessionId":"%s","timestamp":"2024-05-01 08:00:01","caller":"%s","called":"+8613800000486","stateCode":8102,"stateDesc":"The callee is busy.","userData":"job-+8613800000486"}}`,
		id, testDisplay)
	if raw != want {
		t.Fatalf("disconnect push\n got %s\nwant %s", raw, want)
	}
	wantFee := fmt.Sprintf(`{"eventType":"fee","feeLst":[{"direction":0,"spId":"sp_voicesim","appKey":"%s","icid":"%s","bindNum":"%s","sessionId":"%s","callerNum":"%s","calleeNum":"+8613800000486","callInTime":"2024-05-01 08:00:00","callEndTime":"2024-05-01 08:00:01","failTime":"2024-05-01 08:00:01","sipStatusCode":486,"callOutStartTime":"2024-05-01 08:00:00","callOutUnaswRsn":17,"serviceType":"001","hostName":"callenabler.voicesim.local","userData":"job-+8613800000486"}]}`,
		testKey, rcv.feePushes()[0].FeeLst[0].ICID, testDisplay, id, testDisplay)
	if rawFee != wantFee {
		t.Fatalf("CDR push\n got %s\nwant %s", rawFee, wantFee)
	}
}
