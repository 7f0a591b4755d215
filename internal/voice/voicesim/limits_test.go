package voicesim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
)

func TestRateCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Rate: 2})
	for i := range 2 {
		e.accept(t, voice.PathNotify, notifyReq("+861380000000"+string(rune('1'+i)), nil))
	}
	r := e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000009", nil))
	if r.resp.ResultCode != voice.CodeSPCallLimit || r.status != http.StatusForbidden {
		t.Fatalf("third call in the second: HTTP %d %+v, want 403 1013001", r.status, r.resp)
	}
	e.clock.Advance(999 * time.Millisecond)
	if r := e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000009", nil)); r.resp.ResultCode != voice.CodeSPCallLimit {
		t.Fatalf("still within the window: %+v, want 1013001", r.resp)
	}
	e.clock.Advance(time.Millisecond)
	e.accept(t, voice.PathNotify, notifyReq("+8613800000009", nil))

	st := e.sim.Stats()
	if st.Accepted != 3 || st.OverCapRefusals[voice.CodeSPCallLimit] != 2 || st.MaxInAnySecond != 2 {
		t.Fatalf("stats %+v: want 3 accepted, 2 rate refusals, at most 2 in any second", st)
	}
}

func TestRateWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		rate   float64
		offset []time.Duration // request times
		want   string          // accepted (1) or refused (0), per request
	}{
		{"whole rate", 3, []time.Duration{0, 0, 0, 0, 999 * time.Millisecond, time.Second, time.Second, time.Second, time.Second}, "111001110"},
		{"smooth", 2, []time.Duration{0, 500 * time.Millisecond, 900 * time.Millisecond, 1000 * time.Millisecond, 1400 * time.Millisecond, 1500 * time.Millisecond}, "110101"},
		{"fractional rate", 0.5, []time.Duration{0, time.Second, 1999 * time.Millisecond, 2 * time.Second}, "1001"},
		{"rate 2.5 allows 3 per 1.2 s", 2.5, []time.Duration{0, 0, 0, 0, 1199 * time.Millisecond, 1200 * time.Millisecond}, "111001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newRateWindow(tt.rate)
			var got strings.Builder
			for _, off := range tt.offset {
				now := testStart.Add(off)
				if w.allowed(now) {
					w.add(now)
					got.WriteString("1")
				} else {
					got.WriteString("0")
				}
			}
			if got.String() != tt.want {
				t.Fatalf("decisions %s, want %s", got.String(), tt.want)
			}
		})
	}
	if w := newRateWindow(0); !w.allowed(testStart) {
		t.Fatal("rate 0 must be unlimited")
	}
}

func TestPortsCap(t *testing.T) {
	t.Parallel()
	// Speed 1: the first call lasts 8.5 s, far longer than the test; Close ends it.
	e := newEnv(t, Config{Ports: 2, Speed: 1})
	req := notifyReq("+8613800000001", nil)
	req.ReturnIdlePort = true
	for want := 1; want >= 0; want-- {
		r := e.do(t, http.MethodPost, voice.PathNotify, req)
		if r.resp.ResultCode != "0" || r.resp.IdlePort == nil || *r.resp.IdlePort != want {
			t.Fatalf("reply %s, want accepted with idlePort %d", r.body, want)
		}
	}
	r := e.do(t, http.MethodPost, voice.PathNotify, req)
	if r.resp.ResultCode != voice.CodePortsExhausted || r.status != http.StatusForbidden {
		t.Fatalf("third concurrent call: HTTP %d %+v, want 403 1020165", r.status, r.resp)
	}
	if st := e.sim.Stats(); st.Active != 2 || st.OverCapRefusals[voice.CodePortsExhausted] != 1 {
		t.Fatalf("stats %+v: want 2 active and one port refusal", st)
	}
}

func TestPortReleasedAtDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{Ports: 1})
	e.accept(t, voice.PathNotify, notifyReq("+8613800000486", nil))
	e.waitIdle(t)
	if st := e.sim.Stats(); st.Active != 0 {
		t.Fatalf("%d ports still in use after the call ended", st.Active)
	}
	e.accept(t, voice.PathNotify, notifyReq("+8613800000001", nil)) // the port is free again
	e.waitIdle(t)
	if st := e.sim.Stats(); st.Active != 0 {
		t.Fatalf("%d ports still in use after every call ended", st.Active)
	}
}

func TestIdlePortUnlimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	req := verifyReq("+8613800000001", nil)
	req.ReturnIdlePort = true
	r := e.do(t, http.MethodPost, voice.PathVerify, req)
	if r.resp.IdlePort == nil || *r.resp.IdlePort != 65535 {
		t.Fatalf("reply %s, want idlePort 65535", r.body)
	}
	if r := e.do(t, http.MethodPost, voice.PathVerify, verifyReq("+8613800000001", nil)); r.resp.IdlePort != nil {
		t.Fatalf("idlePort sent without returnIdlePort: %s", r.body)
	}
}

func TestRequestTimeScripts(t *testing.T) {
	t.Parallel()
	t.Run("0404 is an invalid number", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{})
		for _, path := range []string{voice.PathNotify, voice.PathVerify, voice.PathClick2Call} {
			var body any
			switch path {
			case voice.PathNotify:
				body = notifyReq("+8613800000404", nil)
			case voice.PathVerify:
				body = verifyReq("+8613800000404", nil)
			default:
				body = click2CallReq("+8613800000404", nil)
			}
			r := e.do(t, http.MethodPost, path, body)
			if r.status != http.StatusBadRequest || r.resp.ResultCode != "1010002" || r.resp.ResultDesc != "Invalid request. calleeNbr" {
				t.Errorf("%s: HTTP %d %+v, want 400 1010002 naming calleeNbr", path, r.status, r.resp)
			}
		}
		if st := e.sim.Stats(); st.Accepted != 0 {
			t.Fatalf("%d calls accepted", st.Accepted)
		}
	})
	t.Run("0503 fails the first request only", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{})
		r := e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000503", nil))
		if r.status != http.StatusInternalServerError || r.resp.ResultCode != voice.CodeInternal {
			t.Fatalf("first request: HTTP %d %+v, want 500 1010001", r.status, r.resp)
		}
		e.accept(t, voice.PathNotify, notifyReq("+8613800000503", nil))
		e.accept(t, voice.PathNotify, notifyReq("+8613800000503", nil))
		r = e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613900000503", nil))
		if r.resp.ResultCode != voice.CodeInternal {
			t.Fatalf("first request for another number: %+v, want 1010001", r.resp)
		}
		e.sim.Reset()
		if r := e.do(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000503", nil)); r.resp.ResultCode != voice.CodeInternal {
			t.Fatalf("after Reset: %+v, want 1010001 again", r.resp)
		}
	})
}

func TestHeldReply(t *testing.T) {
	t.Parallel()
	post := func(t *testing.T, e *env, client *http.Client, body any) error {
		t.Helper()
		req := toMap(t, body)
		r, err := http.NewRequest(http.MethodPost, e.srv.URL+voice.PathNotify, strings.NewReader(mustJSON(t, req)))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", voice.ContentType)
		sign(r.Header, testKey, testSecret, e.clock.Now())
		res, err := client.Do(r)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			t.Fatalf("got a reply to a held request: HTTP %d %s", res.StatusCode, b)
		}
		return err
	}
	t.Run("client times out, call placed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{}) // holds 30 s
		rcv := newReceiver(t)
		err := post(t, e, &http.Client{Timeout: 100 * time.Millisecond}, notifyReq("+8613800000408", rcv))
		var timeout interface{ Timeout() bool }
		if !errors.As(err, &timeout) || !timeout.Timeout() {
			t.Fatalf("error %v, want a client timeout", err)
		}
		e.waitIdle(t)
		calls := e.sim.Calls()
		if len(calls) != 1 || !calls[0].ReplyHeld || calls[0].Result != ResultCompleted {
			t.Fatalf("records %+v, want one completed call with a held reply", calls)
		}
		if got := eventNames(rcv.events(calls[0].SessionID)); got != "callout alerting answer disconnect(0)" {
			t.Fatalf("pushes of the held call: %q", got)
		}
		if st := e.sim.Stats(); st.HeldReplies != 1 || st.Accepted != 1 {
			t.Fatalf("stats %+v, want one accepted call with its reply held", st)
		}
	})
	t.Run("hold ends without a reply", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{ReplyTimeoutHold: 20 * time.Millisecond})
		err := post(t, e, &http.Client{}, notifyReq("+8613800000408", nil))
		if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "EOF") {
			t.Fatalf("error %v, want the connection closed without a reply", err)
		}
	})
	t.Run("close releases a held reply", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, Config{ReplyTimeoutHold: time.Hour})
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+voice.PathNotify,
				strings.NewReader(mustJSON(t, toMap(t, notifyReq("+8613800000408", nil)))))
			r.Header.Set("Content-Type", voice.ContentType)
			sign(r.Header, testKey, testSecret, e.clock.Now())
			res, err := testClient().Do(r)
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
		for e.sim.Stats().HeldReplies == 0 {
			time.Sleep(time.Millisecond) // wait for the request to arrive; no clock to advance here
		}
		_ = e.sim.Close()
		if err := <-done; err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want the connection dropped at Close", err)
		}
	})
}
