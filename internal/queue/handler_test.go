package queue

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/testredis"
	"github.com/voicequeue/voicequeue/internal/voice"
)

// fakeDialer counts requests and answers each with reply.
type fakeDialer struct {
	calls atomic.Int32
	reply func() (*voice.Response, error)
}

func (d *fakeDialer) answer() (*voice.Response, error) {
	d.calls.Add(1)
	if d.reply != nil {
		return d.reply()
	}
	return &voice.Response{ResultCode: "0", SessionID: "S-1"}, nil
}
func (d *fakeDialer) Notify(context.Context, *voice.NotifyRequest) (*voice.Response, error) {
	return d.answer()
}
func (d *fakeDialer) Verify(context.Context, *voice.VerifyRequest) (*voice.Response, error) {
	return d.answer()
}
func (d *fakeDialer) Click2Call(context.Context, *voice.Click2CallRequest) (*voice.Response, error) {
	return d.answer()
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type handlerRig struct {
	mr     *miniredis.Miniredis
	store  *jobstatus.Store
	dialer *fakeDialer
	h      *Handler
	clock  *clock
}

func newHandlerRig(t *testing.T) *handlerRig {
	t.Helper()
	mr, rdb := testredis.Mini(t)
	clk := &clock{now: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)}
	store := jobstatus.New(rdb, jobstatus.Options{Now: clk.Now})
	sealer, err := NewCodeSealer(DeriveKey("s", "code"))
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDialer{}
	h, err := NewHandler(HandlerOptions{
		Store: store, Dialer: d, Tagger: NewTagger(DeriveKey("s", "userdata")), Sealer: sealer,
		DisplayNumber: "+8675500000001", StatusURL: "http://gw/callbacks/x/status", FeeURL: "http://gw/callbacks/x/fee",
		DialResolveTimeout: time.Minute, DialResolveInterval: 5 * time.Second, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &handlerRig{mr: mr, store: store, dialer: d, h: h, clock: clk}
}

func (r *handlerRig) newJob(t *testing.T) Job {
	t.Helper()
	now := r.clock.Now()
	job := Job{ID: jobstatus.NewID(), Kind: KindNotify, Queue: QueueNotify, To: "+8613800000001",
		Play: []PlayItem{{VoiceFile: "a.wav"}}, CreatedAt: now, DispatchBy: now.Add(time.Hour)}
	_, _, err := r.store.Create(t.Context(), jobstatus.Record{ID: job.ID, Kind: "notify", Queue: QueueNotify,
		State: jobstatus.StateQueued, To: "+86138****0001", CreatedAt: now, UpdatedAt: now, DispatchBy: job.DispatchBy})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func (r *handlerRig) run(t *testing.T, job Job) error {
	t.Helper()
	task, err := NewTask(job, TaskOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r.h.ProcessTask(t.Context(), task)
}

// TestDialGuardOnRedelivery: a task whose earlier delivery recorded its dial and then died
// (worker killed, shutdown timeout, lease expired) never dials again: it waits for pushes without
// using an attempt, and ends `unknown` only after the resolve timeout.
func TestDialGuardOnRedelivery(t *testing.T) {
	t.Parallel()
	t.Run("normal delivery dials once", func(t *testing.T) {
		r := newHandlerRig(t)
		job := r.newJob(t)
		if err := r.run(t, job); err != nil {
			t.Fatal(err)
		}
		if n := r.dialer.calls.Load(); n != 1 {
			t.Fatalf("%d dials", n)
		}
		// A duplicate delivery after the call was accepted does nothing.
		if err := r.run(t, job); err != nil || r.dialer.calls.Load() != 1 {
			t.Fatalf("redelivery after accept: err %v, dials %d", err, r.dialer.calls.Load())
		}
	})
	t.Run("crash after recording the dial", func(t *testing.T) {
		r := newHandlerRig(t)
		job := r.newJob(t)
		// The first delivery recorded its dial, then the worker died before the reply.
		if _, grant, err := r.store.BeginDial(t.Context(), job.ID, 1, r.clock.Now()); err != nil || !grant.Granted {
			t.Fatalf("BeginDial: %+v %v", grant, err)
		}
		err := r.run(t, job)
		var resched *RescheduleError
		if !errors.As(err, &resched) || resched.Reason != "dial_guard" || IsFailure(err) {
			t.Fatalf("redelivery returned %v, want a dial_guard reschedule that uses no attempt", err)
		}
		if n := r.dialer.calls.Load(); n != 0 {
			t.Fatalf("redelivery dialled %d times, want 0", n)
		}
		r.clock.Advance(2 * time.Minute)
		if err := r.run(t, job); err != nil {
			t.Fatal(err)
		}
		rec, _ := r.store.Get(t.Context(), job.ID)
		if rec.State != jobstatus.StateUnknown || r.dialer.calls.Load() != 0 {
			t.Fatalf("after the resolve timeout: state %s, dials %d; want unknown and 0", rec.State, r.dialer.calls.Load())
		}
	})
	t.Run("a push resolves the open dial", func(t *testing.T) {
		r := newHandlerRig(t)
		job := r.newJob(t)
		if _, _, err := r.store.BeginDial(t.Context(), job.ID, 1, r.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.store.Transition(t.Context(), job.ID, jobstatus.Transition{To: jobstatus.StateRinging, At: r.clock.Now(), Source: "status_push", SessionID: "S-9"}); err != nil {
			t.Fatal(err)
		}
		if err := r.run(t, job); err != nil || r.dialer.calls.Load() != 0 {
			t.Fatalf("err %v, dials %d", err, r.dialer.calls.Load())
		}
	})
}

func TestHandlerClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		reply     func() (*voice.Response, error)
		wantState jobstatus.State
		wantErr   func(error) bool
	}{
		{"accepted", nil, jobstatus.StateCalling, func(err error) bool { return err == nil }},
		{"permanent", func() (*voice.Response, error) {
			return nil, &voice.APIError{Code: "1010002", Class: voice.ClassPermanent}
		}, jobstatus.StateRejected, func(err error) bool { return err == nil }},
		{"transient", func() (*voice.Response, error) {
			return nil, &voice.APIError{Code: "1010001", Class: voice.ClassTransient, HTTPStatus: 500}
		}, jobstatus.StateQueued, func(err error) bool { var te *TransientError; return errors.As(err, &te) && IsFailure(err) }},
		{"rate", func() (*voice.Response, error) {
			return nil, &voice.APIError{Code: "1013001", Class: voice.ClassRate}
		}, jobstatus.StateQueued, func(err error) bool { var re *RescheduleError; return errors.As(err, &re) && !IsFailure(err) }},
		{"account", func() (*voice.Response, error) {
			return nil, &voice.APIError{Code: "1010007", Class: voice.ClassAccount}
		}, jobstatus.StateRejected, func(err error) bool { return err == nil }},
		{"ambiguous", func() (*voice.Response, error) {
			return nil, &voice.APIError{Class: voice.ClassAmbiguous, Err: context.DeadlineExceeded}
		}, jobstatus.StateUnknown, func(err error) bool { return err == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newHandlerRig(t)
			r.dialer.reply = tt.reply
			paused := ""
			r.h.o.Pauser = pauserFunc(func(q string) error { paused = q; return nil })
			job := r.newJob(t)
			err := r.run(t, job)
			if !tt.wantErr(err) {
				t.Errorf("ProcessTask returned %v", err)
			}
			rec, _ := r.store.Get(t.Context(), job.ID)
			if rec.State != tt.wantState {
				t.Errorf("state %s, want %s", rec.State, tt.wantState)
			}
			if (tt.name == "account") != (paused == QueueNotify) {
				t.Errorf("paused queue %q", paused)
			}
		})
	}
}

type pauserFunc func(string) error

func (f pauserFunc) PauseQueue(q string) error { return f(q) }

func TestExpiredJobIsNotDialled(t *testing.T) {
	t.Parallel()
	r := newHandlerRig(t)
	job := r.newJob(t)
	r.clock.Advance(2 * time.Hour)
	if err := r.run(t, job); err != nil {
		t.Fatal(err)
	}
	rec, _ := r.store.Get(t.Context(), job.ID)
	if rec.State != jobstatus.StateExpired || r.dialer.calls.Load() != 0 {
		t.Fatalf("state %s, dials %d; want expired and none", rec.State, r.dialer.calls.Load())
	}
}

// TestTransientAttemptsFromRecord: the job ends failed after MaxAttempts provider requests,
// counted in its record, and its asynq task never runs out of retries first.
func TestTransientAttemptsFromRecord(t *testing.T) {
	t.Parallel()
	r := newHandlerRig(t)
	r.h.o.MaxAttempts = 3
	r.dialer.reply = func() (*voice.Response, error) {
		return nil, &voice.APIError{Code: "1010001", Class: voice.ClassTransient, HTTPStatus: 500}
	}
	job := r.newJob(t)
	for i := 1; i <= 3; i++ {
		err := r.run(t, job)
		rec, _ := r.store.Get(t.Context(), job.ID)
		if i < 3 && (err == nil || rec.State != jobstatus.StateQueued) {
			t.Fatalf("attempt %d: err %v state %s, want a retry", i, err, rec.State)
		}
		if i == 3 && (err != nil || rec.State != jobstatus.StateFailed) {
			t.Fatalf("attempt 3: err %v state %s, want failed", err, rec.State)
		}
	}
}

// TestRateRepliesUseNoAttempt: rate-class replies put the job back without using one of its
// MaxAttempts; only transient failures do.
func TestRateRepliesUseNoAttempt(t *testing.T) {
	t.Parallel()
	r := newHandlerRig(t)
	r.h.o.MaxAttempts = 2
	replies := []error{
		&voice.APIError{Code: "1013001", Class: voice.ClassRate, HTTPStatus: 403},
		&voice.APIError{Code: "1013001", Class: voice.ClassRate, HTTPStatus: 403},
		&voice.APIError{Code: "1010001", Class: voice.ClassTransient, HTTPStatus: 500},
		&voice.APIError{Code: "1010001", Class: voice.ClassTransient, HTTPStatus: 500},
	}
	var n atomic.Int32
	r.dialer.reply = func() (*voice.Response, error) { return nil, replies[n.Add(1)-1] }
	job := r.newJob(t)
	for i, want := range []jobstatus.State{jobstatus.StateQueued, jobstatus.StateQueued, jobstatus.StateQueued, jobstatus.StateFailed} {
		_ = r.run(t, job)
		rec, _ := r.store.Get(t.Context(), job.ID)
		if rec.State != want {
			t.Fatalf("after reply %d (%v): state %s, want %s", i+1, replies[i], rec.State, want)
		}
	}
}

// lateGate admits every job with a SendBy already past.
type lateGate struct{ released atomic.Int32 }

func (g *lateGate) Admit(context.Context, Job, int) (Admission, error) {
	return Admission{Verdict: Admit, SendBy: time.Unix(1, 0)}, nil
}
func (g *lateGate) Release(context.Context, string) error { g.released.Add(1); return nil }
func (g *lateGate) ProviderRate(context.Context) error    { return nil }

// TestLateTokenIsNotSent: a request that would leave after its Admission.SendBy is not sent; the
// job goes back to the queue with its slot released, and is rescheduled as late_token.
func TestLateTokenIsNotSent(t *testing.T) {
	t.Parallel()
	r := newHandlerRig(t)
	g := &lateGate{}
	r.h.o.Gate = g
	job := r.newJob(t)
	err := r.run(t, job)
	var resched *RescheduleError
	if !errors.As(err, &resched) || resched.Reason != "late_token" || IsFailure(err) {
		t.Fatalf("run = %v, want a late_token reschedule", err)
	}
	rec, _ := r.store.Get(t.Context(), job.ID)
	if r.dialer.calls.Load() != 0 || rec.State != jobstatus.StateQueued || g.released.Load() != 1 {
		t.Fatalf("dials %d, state %s, releases %d; want no dial, queued, one release", r.dialer.calls.Load(), rec.State, g.released.Load())
	}
}

// TestDialRecordSurvivesRedisRestart: Redis goes away as the dial is about to be recorded and
// comes back 150 ms later; the delivery records it then and dials once, instead of failing and
// leaving its redelivery to guess.
func TestDialRecordSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	r := newHandlerRig(t)
	// A client that does not retry by itself, so that the outage reaches the handler.
	rdb := redis.NewClient(&redis.Options{Addr: r.mr.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	r.store = jobstatus.New(rdb, jobstatus.Options{Now: r.clock.Now})
	r.h.o.Store = r.store
	job := r.newJob(t)
	r.mr.Close()
	restarted := make(chan error, 1)
	go func() {
		time.Sleep(150 * time.Millisecond)
		restarted <- r.mr.Restart()
	}()
	err := r.run(t, job)
	if rerr := <-restarted; rerr != nil {
		t.Fatalf("restart miniredis: %v", rerr)
	}
	rec, _ := r.store.Get(t.Context(), job.ID)
	if err != nil || r.dialer.calls.Load() != 1 || rec.State != jobstatus.StateCalling {
		t.Fatalf("run = %v, %d dials, state %s; want one dial and calling", err, r.dialer.calls.Load(), rec.State)
	}
}
