package jobstatus

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestBeginDial(t *testing.T) {
	tests := []struct {
		name        string
		current     State
		wantGranted bool
		wantDialled bool
		wantErr     error
		wantState   State
	}{
		{"queued", StateQueued, true, false, nil, StateDispatching},
		{"scheduled", StateScheduled, true, false, nil, StateDispatching},
		{"dispatching without a dial", StateDispatching, true, false, nil, StateDispatching},
		{"calling", StateCalling, false, true, nil, StateCalling},
		{"ringing", StateRinging, false, true, nil, StateRinging},
		{"answered", StateAnswered, false, true, nil, StateAnswered},
		{"canceled", StateCanceled, false, false, ErrConflict, StateCanceled},
		{"expired", StateExpired, false, false, ErrConflict, StateExpired},
		{"completed", StateCompleted, false, false, ErrConflict, StateCompleted},
		{"unknown", StateUnknown, false, false, ErrConflict, StateUnknown},
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := e.force(t, tt.current)
				n := len(e.get(t, id).Events)
				rec, g, err := e.store.BeginDial(ctx, id, 1, at(10))
				if !errors.Is(err, tt.wantErr) || g.Granted != tt.wantGranted || g.AlreadyDialled != tt.wantDialled || rec.State != tt.wantState {
					t.Fatalf("state %s grant %+v err %v; want %s granted %v dialled %v err %v",
						rec.State, g, err, tt.wantState, tt.wantGranted, tt.wantDialled, tt.wantErr)
				}
				wantEvents := n
				if tt.wantGranted && tt.current != StateDispatching {
					wantEvents++
				}
				if len(rec.Events) != wantEvents {
					t.Errorf("%d events, want %d", len(rec.Events), wantEvents)
				}
				if tt.wantGranted {
					if rec.DialAttempt != 1 || rec.DialStartedAt == nil || !rec.DialStartedAt.Equal(at(10)) || rec.Attempts != 1 || !g.DialledAt.Equal(at(10)) {
						t.Errorf("marker %d %v attempts %d grant %+v", rec.DialAttempt, rec.DialStartedAt, rec.Attempts, g)
					}
				}
			})
		}
	})
}

// TestBeginDialRedelivery follows a task through a crash, a redelivery with a higher asynq retry
// count, the pushes, a retry after a failed reply, and a race of many deliveries.
func TestBeginDialRedelivery(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		t.Run("crash after recording", func(t *testing.T) {
			id := e.create(t).ID
			if _, g, err := e.store.BeginDial(ctx, id, 1, at(10)); err != nil || !g.Granted {
				t.Fatalf("first delivery: %+v %v", g, err)
			}
			// The worker died after the request left; asynq redelivers with the retry count raised.
			rec, g, err := e.store.BeginDial(ctx, id, 2, at(40))
			if err != nil || g.Granted || !g.AlreadyDialled || g.Attempt != 1 || !g.DialledAt.Equal(at(10)) {
				t.Fatalf("redelivery: %+v %v", g, err)
			}
			if rec.Attempts != 1 || len(rec.Events) != 2 {
				t.Errorf("redelivery changed the record: attempts %d, %d events", rec.Attempts, len(rec.Events))
			}
			// The pushes resolve it; the open dial closes.
			rec, _, err = e.store.Transition(ctx, id, Transition{To: StateCalling, At: at(41), Source: "status_push", SessionID: "s-a"})
			if err != nil || rec.DialAttempt != 0 || rec.DialStartedAt != nil {
				t.Fatalf("after push: marker %d %v err %v", rec.DialAttempt, rec.DialStartedAt, err)
			}
			_, g, err = e.store.BeginDial(ctx, id, 3, at(42))
			if err != nil || !g.AlreadyDialled || !g.DialledAt.Equal(at(10)) {
				t.Errorf("after push: %+v %v", g, err)
			}
		})
		t.Run("retry after a failed reply", func(t *testing.T) {
			id := e.create(t).ID
			if _, g, err := e.store.BeginDial(ctx, id, 1, at(10)); err != nil || !g.Granted {
				t.Fatalf("attempt 1: %+v %v", g, err)
			}
			if _, _, err := e.store.Transition(ctx, id, Transition{To: StateQueued, At: at(11), Source: "worker", From: []State{StateDispatching}, Detail: "503"}); err != nil {
				t.Fatal(err)
			}
			rec, g, err := e.store.BeginDial(ctx, id, 2, at(20))
			if err != nil || !g.Granted || rec.Attempts != 2 || rec.DialAttempt != 2 {
				t.Errorf("attempt 2: %+v attempts %d marker %d err %v", g, rec.Attempts, rec.DialAttempt, err)
			}
			want := []State{StateQueued, StateDispatching, StateQueued, StateDispatching}
			if got := states(rec); len(got) != len(want) || got[3] != StateDispatching || rec.Events[3].Attempt != 2 {
				t.Errorf("events %v", rec.Events)
			}
		})
		t.Run("cancel and dial race", func(t *testing.T) {
			id := e.create(t).ID
			var wg sync.WaitGroup
			var cancelErr, dialErr error
			var g DialGrant
			wg.Go(func() { _, cancelErr = e.store.Cancel(ctx, id, at(5)) })
			wg.Go(func() { _, g, dialErr = e.store.BeginDial(ctx, id, 1, at(5)) })
			wg.Wait()
			if (cancelErr == nil) == g.Granted {
				t.Errorf("exactly one must win: cancel err %v, dial %+v err %v", cancelErr, g, dialErr)
			}
		})
		t.Run("many deliveries at once", func(t *testing.T) {
			id := e.create(t).ID
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				granted int
			)
			for i := range 30 {
				wg.Go(func() {
					_, g, err := e.store.BeginDial(ctx, id, i+1, at(5))
					if err != nil {
						t.Errorf("BeginDial: %v", err)
					}
					mu.Lock()
					defer mu.Unlock()
					if g.Granted {
						granted++
					}
				})
			}
			wg.Wait()
			if granted != 1 {
				t.Errorf("%d grants, want exactly 1", granted)
			}
		})
		t.Run("bad arguments", func(t *testing.T) {
			if _, _, err := e.store.BeginDial(ctx, e.create(t).ID, -1, at(1)); !errors.Is(err, ErrInvalid) {
				t.Errorf("attempt -1: err = %v", err)
			}
			// NextAttempt numbers the dial from the record.
			rec, g, err := e.store.BeginDial(ctx, e.create(t).ID, NextAttempt, at(1))
			if err != nil || !g.Granted || g.Attempt != 1 || rec.Attempts != 1 {
				t.Errorf("NextAttempt: grant %+v attempts %d err %v, want attempt 1", g, rec.Attempts, err)
			}
			if _, _, err := e.store.BeginDial(ctx, "j_none", 1, at(1)); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing: err = %v", err)
			}
		})
	})
}

// TestConcurrentSamePush delivers one push from many goroutines (as duplicated deliveries on
// several gateway pods would): exactly one applies and one event is written.
func TestConcurrentSamePush(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		id := e.force(t, StateCalling)
		const n = 50
		var (
			wg               sync.WaitGroup
			mu               sync.Mutex
			changed, becameF int
		)
		for _, to := range []State{StateRinging, StateCompleted} {
			for range n {
				wg.Go(func() {
					_, out, err := e.store.Transition(ctx, id, Transition{To: to, At: at(7), Source: "status_push", SessionID: "s-1"})
					if err != nil {
						t.Errorf("Transition: %v", err)
					}
					mu.Lock()
					defer mu.Unlock()
					if out.Changed {
						changed++
					}
					if out.BecameFinal {
						becameF++
					}
				})
			}
		}
		wg.Wait()
		rec := e.get(t, id)
		// The ringing pushes may apply before the completed ones or not at all, so either one or
		// two changes; the final state is completed exactly once.
		ringing := 0
		for _, ev := range rec.Events {
			if ev.State == StateRinging {
				ringing++
			}
		}
		if rec.State != StateCompleted || becameF != 1 || ringing > 1 || changed != 1+ringing {
			t.Errorf("state %s, %d became final, %d changed, %d ringing events: %v", rec.State, becameF, changed, ringing, states(rec))
		}
		if got := len(rec.Events); got != 3+ringing {
			t.Errorf("%d events, want %d", got, 3+ringing)
		}
	})
}

// TestBeginDialAsSameToken: a caller that asks again with its own token (its first reply was
// lost) is granted its open dial again, unchanged; any other caller, and one without a token,
// finds the dial open; once the dial is resolved the token opens nothing.
func TestBeginDialAsSameToken(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		id := e.force(t, StateQueued)
		first, g1, err := e.store.BeginDialAs(ctx, id, "delivery-1", NextAttempt, at(10))
		if err != nil || !g1.Granted {
			t.Fatalf("first BeginDialAs: %+v, %v; want granted", g1, err)
		}
		again, g2, err := e.store.BeginDialAs(ctx, id, "delivery-1", NextAttempt, at(11))
		if err != nil || !g2.Granted || g2.Attempt != g1.Attempt || !g2.DialledAt.Equal(at(10)) {
			t.Fatalf("same token again: %+v, %v; want granted attempt %d dialled at %v", g2, err, g1.Attempt, at(10))
		}
		if len(again.Events) != len(first.Events) || again.Attempts != first.Attempts {
			t.Errorf("asking again changed the record: %d events attempts %d, was %d and %d",
				len(again.Events), again.Attempts, len(first.Events), first.Attempts)
		}
		for _, token := range []string{"delivery-2", ""} {
			if _, g, err := e.store.BeginDialAs(ctx, id, token, NextAttempt, at(12)); err != nil || g.Granted || !g.AlreadyDialled {
				t.Errorf("token %q: %+v, %v; want the dial open (AlreadyDialled)", token, g, err)
			}
		}
		if _, _, err := e.store.Transition(ctx, id, Transition{To: StateQueued, Source: "worker", Attempt: g1.Attempt,
			From: []State{StateDispatching}}); err != nil {
			t.Fatalf("back to queued: %v", err)
		}
		if raw, err := e.rdb.Get(ctx, e.store.keys.job(id)).Result(); err != nil || strings.Contains(raw, "delivery-1") {
			t.Errorf("the token outlived its dial: %s (%v)", raw, err)
		}
		_, g3, err := e.store.BeginDialAs(ctx, id, "delivery-1", NextAttempt, at(13))
		if err != nil || !g3.Granted || g3.Attempt != g1.Attempt+1 {
			t.Errorf("after the dial was resolved: %+v, %v; want a new grant, attempt %d", g3, err, g1.Attempt+1)
		}
	})
}
