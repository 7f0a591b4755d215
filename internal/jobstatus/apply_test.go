package jobstatus

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestTransitionAnsweredTo: the disconnect push's two outcomes, picked by the script on whether
// the job is answered at that moment.
func TestTransitionAnsweredTo(t *testing.T) {
	tests := []struct {
		current    State
		wantState  State
		wantReason string
		wantFinal  bool
	}{
		{StateCalling, StateNoAnswer, "no_answer", true},
		{StateRinging, StateNoAnswer, "no_answer", true},
		{StateAnswered, StateCompleted, "completed", true},
		{StateUnknown, StateNoAnswer, "no_answer", true}, // unknown is resolved, as unanswered
		{StateBusy, StateBusy, "", false},                // final: nothing changes
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(string(tt.current), func(t *testing.T) {
				id := e.force(t, tt.current)
				tr := Transition{To: StateNoAnswer, Detail: "no_answer", AnsweredTo: StateCompleted,
					AnsweredDetail: "completed", At: at(9), Source: "status_push"}
				rec, out, err := e.store.Transition(context.Background(), id, tr)
				if err != nil {
					t.Fatal(err)
				}
				if rec.State != tt.wantState || rec.Reason != tt.wantReason || out.BecameFinal != tt.wantFinal {
					t.Errorf("state %s reason %q final %v; want %s %q %v", rec.State, rec.Reason, out.BecameFinal,
						tt.wantState, tt.wantReason, tt.wantFinal)
				}
			})
		}
	})
	t.Run("invalid", func(t *testing.T) {
		_, rdb := miniForTest(t)
		_, _, err := New(rdb, Options{}).Transition(context.Background(), "j_x", Transition{To: StateCompleted, AnsweredTo: "over", Source: "t"})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})
}

// TestTransitionRefuseOlderAttempt: a push that names an attempt older than the record's is
// stale when the guard is on, and changes nothing.
func TestTransitionRefuseOlderAttempt(t *testing.T) {
	tests := []struct {
		name      string
		attempt   int
		guard     bool
		wantStale bool
		wantState State
	}{
		{"older attempt refused", 1, true, true, StateCalling},
		{"current attempt applies", 2, true, false, StateBusy},
		{"older attempt without the guard applies", 1, false, false, StateBusy},
		{"attempt 0 with the guard is older", 0, true, true, StateCalling},
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := context.Background()
				id := e.create(t).ID
				if _, _, err := e.store.Transition(ctx, id, Transition{To: StateCalling, At: at(1), Source: "worker", Attempt: 2}); err != nil {
					t.Fatal(err)
				}
				before := e.get(t, id)
				rec, out, err := e.store.Transition(ctx, id, Transition{To: StateBusy, At: at(5), Source: "status_push",
					Attempt: tt.attempt, RefuseOlderAttempt: tt.guard, SessionID: "s-1"})
				if err != nil {
					t.Fatal(err)
				}
				if out.StaleAttempt != tt.wantStale || rec.State != tt.wantState || out.Changed == tt.wantStale {
					t.Errorf("%+v state %s; want stale %v state %s", out, rec.State, tt.wantStale, tt.wantState)
				}
				if tt.wantStale && !recordsEqual(e.get(t, id), before) {
					t.Error("a refused push changed the record")
				}
			})
		}
	})
}

// TestApply: the same change as Transition, but the record comes back only when the job became
// final.
func TestApply(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		id := e.create(t).ID
		steps := []struct {
			name       string
			tr         Transition
			wantRecord bool
			wantErr    error
		}{
			{"calling", Transition{To: StateCalling, At: at(1), Source: "worker", SessionID: "s-1"}, false, nil},
			{"duplicate", Transition{To: StateCalling, At: at(2), Source: "status_push", SessionID: "s-1"}, false, nil},
			{"stale session", Transition{To: StateRinging, At: at(2), Source: "status_push", SessionID: "s-2"}, false, nil},
			{"cancel conflicts", Transition{To: StateCanceled, At: at(2), Source: "api", From: []State{StateQueued}}, false, ErrConflict},
			{"completed", Transition{To: StateCompleted, At: at(9), Source: "status_push", SessionID: "s-1", Detail: "done"}, true, nil},
			{"CDR after the end", Transition{To: StateCompleted, At: at(10), Source: "cdr_push", SessionID: "s-1", CDR: &CDR{Outcome: "completed"}}, false, nil},
		}
		for _, st := range steps {
			rec, out, err := e.store.Apply(ctx, id, st.tr)
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
			}
			if got := rec.ID != ""; got != st.wantRecord || got != out.BecameFinal {
				t.Errorf("%s: record returned %v, became final %v; want %v", st.name, got, out.BecameFinal, st.wantRecord)
			}
			if st.wantRecord && !recordsEqual(rec, e.get(t, id)) {
				t.Errorf("%s: returned record differs from the stored one", st.name)
			}
		}
		if _, _, err := e.store.Apply(ctx, "j_none", Transition{To: StateCalling, Source: "t"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing job: err = %v, want ErrNotFound", err)
		}
	})
}

// TestSessionIndexWrittenOnce: the first transition with a sessionId writes the index with
// Retention; later pushes of the call neither rewrite it nor refresh its TTL.
func TestSessionIndexWrittenOnce(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		id := e.create(t).ID
		key := e.store.keys.session("s-1")
		if _, _, err := e.store.Transition(ctx, id, Transition{To: StateCalling, Source: "worker", SessionID: "s-1"}); err != nil {
			t.Fatal(err)
		}
		if ttl := e.rdb.PTTL(ctx, key).Val(); ttl <= DefaultRetention-time.Minute || ttl > DefaultRetention {
			t.Errorf("index TTL %v, want about %v", ttl, DefaultRetention)
		}
		// Shorten the TTL: a push that rewrote the index would restore it.
		e.rdb.PExpire(ctx, key, time.Hour)
		for _, to := range []State{StateRinging, StateAnswered, StateCompleted} {
			if _, _, err := e.store.Transition(ctx, id, Transition{To: to, Source: "status_push", SessionID: "s-1"}); err != nil {
				t.Fatal(err)
			}
		}
		if ttl := e.rdb.PTTL(ctx, key).Val(); ttl > time.Hour {
			t.Errorf("index TTL %v after later pushes: rewritten", ttl)
		}
		if got, err := e.store.LookupSession(ctx, "s-1"); err != nil || got != id {
			t.Errorf("LookupSession = %q, %v; want %q", got, err, id)
		}
	})
}
