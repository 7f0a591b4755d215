package jobstatus

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// matrix is the state machine without From, written out by hand: row = current state, column i =
// target States()[i]; 'y' = the state changes (one event), '.' = nothing changes.
var matrix = map[State]string{
	//               qsdcra + completed no_answer busy rejected failed expired canceled throttled unknown
	StateQueued:      "..yyyyyyyyyyyyy",
	StateScheduled:   "..yyyyyyyyyyyyy",
	StateDispatching: "...yyyyyyyyyyyy",
	StateCalling:     "....yyyyyyyyyyy",
	StateRinging:     ".....yyyyyyyyyy",
	StateAnswered:    "......yyyyyyyyy",
	StateCompleted:   "...............",
	StateNoAnswer:    "...............",
	StateBusy:        "...............",
	StateRejected:    "...............",
	StateFailed:      "...............",
	StateExpired:     "...............",
	StateCanceled:    "...............",
	StateThrottled:   "...............",
	StateUnknown:     "...yyyyyyyyyyy.",
}

func TestTransitionMatrix(t *testing.T) {
	if len(matrix) != len(States()) {
		t.Fatalf("matrix has %d rows, want %d", len(matrix), len(States()))
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, from := range States() {
			for i, to := range States() {
				applies := matrix[from][i] == 'y'
				t.Run(string(from)+"_to_"+string(to), func(t *testing.T) {
					id := e.force(t, from)
					before := e.get(t, id)
					rec, out, err := e.store.Transition(ctx, id, Transition{To: to, At: at(5), Source: "status_push", Detail: "d"})
					if err != nil {
						t.Fatalf("Transition: %v", err)
					}
					wantState, wantEvents := from, len(before.Events)
					if applies {
						wantState, wantEvents = to, wantEvents+1
					}
					wantFinal := applies && to.Final() && (!from.Final() || from == StateUnknown)
					if rec.State != wantState || len(rec.Events) != wantEvents || out.Changed != applies ||
						out.BecameFinal != wantFinal || out.Previous != from {
						t.Errorf("got state %s, %d events, %+v; want state %s, %d events, changed %v, became final %v, previous %s",
							rec.State, len(rec.Events), out, wantState, wantEvents, applies, wantFinal, from)
					}
					if got := e.get(t, id); got.State != wantState || len(got.Events) != wantEvents {
						t.Errorf("stored: state %s with %d events, want %s with %d", got.State, len(got.Events), wantState, wantEvents)
					}
					if applies {
						last := rec.Events[len(rec.Events)-1]
						if last.State != to || !last.At.Equal(at(5)) || last.Source != "status_push" || last.Detail != "d" {
							t.Errorf("last event = %+v", last)
						}
						if !rec.UpdatedAt.Equal(t0) {
							t.Errorf("UpdatedAt = %v, want the store clock %v", rec.UpdatedAt, t0)
						}
					}
					// The same transition again never changes anything.
					again, out2, err := e.store.Transition(ctx, id, Transition{To: to, At: at(6), Source: "status_push"})
					if err != nil || out2.Changed || out2.BecameFinal || len(again.Events) != wantEvents {
						t.Errorf("repeat: changed %v, %d events, err %v", out2.Changed, len(again.Events), err)
					}
				})
			}
		}
	})
}

func TestTransitionFromGuard(t *testing.T) {
	tests := []struct {
		name     string
		current  State
		to       State
		from     []State
		wantErr  error
		want     State
		wantEvts int // events added
	}{
		{"retry back to queue", StateDispatching, StateQueued, []State{StateDispatching}, nil, StateQueued, 1},
		{"cancel queued", StateQueued, StateCanceled, []State{StateQueued, StateScheduled}, nil, StateCanceled, 1},
		{"cancel after dial", StateCalling, StateCanceled, []State{StateQueued, StateScheduled}, ErrConflict, StateCalling, 0},
		{"queued to scheduled (same rank)", StateQueued, StateScheduled, []State{StateQueued}, nil, StateScheduled, 1},
		{"redial from busy", StateBusy, StateQueued, []State{StateBusy, StateNoAnswer}, nil, StateQueued, 1},
		{"final is not in From", StateCompleted, StateQueued, []State{StateBusy}, ErrConflict, StateCompleted, 0},
		{"same state via From", StateDispatching, StateDispatching, []State{StateDispatching}, nil, StateDispatching, 0},
		{"unknown to failed", StateUnknown, StateFailed, []State{StateUnknown}, nil, StateFailed, 1},
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := e.force(t, tt.current)
				n := len(e.get(t, id).Events)
				rec, out, err := e.store.Transition(context.Background(), id, Transition{To: tt.to, At: at(9), Source: "worker", From: tt.from})
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if rec.State != tt.want || len(rec.Events) != n+tt.wantEvts || out.Previous != tt.current {
					t.Errorf("state %s with %d new events, previous %s; want %s with %d, previous %s",
						rec.State, len(rec.Events)-n, out.Previous, tt.want, tt.wantEvts, tt.current)
				}
				if got := e.get(t, id).State; got != tt.want {
					t.Errorf("stored state %s, want %s", got, tt.want)
				}
			})
		}
	})
}

func intp(v int) *int { return &v }

// step is one transition in a scenario and what it must leave.
type step struct {
	name        string
	tr          Transition
	wantState   State
	wantChanged bool
	wantFinal   bool
	wantStale   bool
	check       func(t *testing.T, rec Record)
}

func TestTransitionScenarios(t *testing.T) {
	const s1, s2 = "1200_366_0_20250301090000@callenabler.home1.com", "1200_367_0_20250301091000@callenabler.home1.com"
	cdrBusy := &CDR{DurationSeconds: 0, Outcome: "busy", StateCode: intp(8102), Q850: 17, ULFailReason: 3, SIPStatusCode: 486}
	cdrDone := &CDR{DurationSeconds: 42, Outcome: "completed", StateCode: intp(0), AnsweredAt: ptr(at(20)), EndedAt: ptr(at(62))}
	events := func(want ...State) func(t *testing.T, rec Record) {
		return func(t *testing.T, rec Record) {
			t.Helper()
			if got := states(rec); !slices.Equal(got, want) {
				t.Errorf("events %v, want %v", got, want)
			}
		}
	}
	scenarios := []struct {
		name  string
		steps []step
	}{
		{"answered call with digits, then CDR after disconnect", []step{
			{"dispatching", Transition{To: StateDispatching, At: at(1), Source: "worker", Attempt: 1}, StateDispatching, true, false, false, nil},
			{"accepted", Transition{To: StateCalling, At: at(2), Source: "worker", Attempt: 1, SessionID: s1}, StateCalling, true, false, false,
				func(t *testing.T, rec Record) {
					if rec.SessionID != s1 || rec.Attempts != 1 || rec.Events[2].SessionID != s1 || rec.Events[2].Attempt != 1 {
						t.Errorf("session %q attempts %d event %+v", rec.SessionID, rec.Attempts, rec.Events[2])
					}
				}},
			{"callout push", Transition{To: StateCalling, At: at(3), Source: "status_push", SessionID: s1}, StateCalling, false, false, false, nil},
			{"alerting", Transition{To: StateRinging, At: at(4), Source: "status_push", SessionID: s1}, StateRinging, true, false, false, nil},
			{"answer", Transition{To: StateAnswered, At: at(20), Source: "status_push", SessionID: s1}, StateAnswered, true, false, false, nil},
			{"collectInfo", Transition{To: StateAnswered, At: at(30), Source: "status_push", SessionID: s1, Digits: "1#"}, StateAnswered, true, false, false,
				func(t *testing.T, rec Record) {
					if rec.Digits != "1#" || len(rec.Events) != 5 {
						t.Errorf("digits %q, %d events", rec.Digits, len(rec.Events))
					}
				}},
			{"collectInfo again", Transition{To: StateAnswered, At: at(31), Source: "status_push", SessionID: s1, Digits: "2"}, StateAnswered, false, false, false,
				func(t *testing.T, rec Record) {
					if rec.Digits != "1#" {
						t.Errorf("digits %q, want the first ones", rec.Digits)
					}
				}},
			{"disconnect", Transition{To: StateCompleted, At: at(62), Source: "status_push", SessionID: s1, Detail: "stateCode 0"}, StateCompleted, true, true, false,
				func(t *testing.T, rec Record) {
					if rec.Reason != "stateCode 0" || rec.CDR != nil {
						t.Errorf("reason %q cdr %+v", rec.Reason, rec.CDR)
					}
				}},
			{"late alerting", Transition{To: StateRinging, At: at(5), Source: "status_push", SessionID: s1}, StateCompleted, false, false, false, nil},
			{"CDR attaches without an event", Transition{To: StateCompleted, At: at(63), Source: "cdr_push", SessionID: s1, CDR: cdrDone}, StateCompleted, true, false, false,
				func(t *testing.T, rec Record) {
					if rec.CDR == nil || rec.CDR.DurationSeconds != 42 || *rec.CDR.StateCode != 0 || !rec.CDR.EndedAt.Equal(at(62)) {
						t.Errorf("cdr %+v", rec.CDR)
					}
					events(StateQueued, StateDispatching, StateCalling, StateRinging, StateAnswered, StateCompleted)(t, rec)
				}},
			{"re-sent CDR", Transition{To: StateBusy, At: at(70), Source: "cdr_push", SessionID: s1, CDR: cdrBusy}, StateCompleted, false, false, false,
				func(t *testing.T, rec Record) {
					if rec.CDR.Outcome != "completed" {
						t.Errorf("cdr replaced: %+v", rec.CDR)
					}
				}},
		}},
		{"CDR before the disconnect push", []step{
			{"accepted", Transition{To: StateCalling, At: at(2), Source: "worker", SessionID: s1}, StateCalling, true, false, false, nil},
			{"CDR busy", Transition{To: StateBusy, At: at(10), Source: "cdr_push", SessionID: s1, CDR: cdrBusy, Detail: "busy"}, StateBusy, true, true, false,
				func(t *testing.T, rec Record) {
					if rec.CDR == nil || rec.CDR.SIPStatusCode != 486 || rec.Reason != "busy" {
						t.Errorf("cdr %+v reason %q", rec.CDR, rec.Reason)
					}
				}},
			{"disconnect after", Transition{To: StateBusy, At: at(9), Source: "status_push", SessionID: s1}, StateBusy, false, false, false, nil},
			{"disconnect saying otherwise", Transition{To: StateNoAnswer, At: at(9), Source: "status_push", SessionID: s1}, StateBusy, false, false, false,
				events(StateQueued, StateCalling, StateBusy)},
		}},
		{"unknown resolved by pushes", []step{
			{"dispatching", Transition{To: StateDispatching, At: at(1), Source: "worker", Attempt: 1}, StateDispatching, true, false, false, nil},
			{"no reply", Transition{To: StateUnknown, At: at(11), Source: "worker", Detail: "timeout"}, StateUnknown, true, true, false,
				func(t *testing.T, rec Record) {
					if rec.Reason != "timeout" {
						t.Errorf("reason %q", rec.Reason)
					}
				}},
			{"answer push", Transition{To: StateAnswered, At: at(12), Source: "status_push", SessionID: s1}, StateAnswered, true, false, false,
				func(t *testing.T, rec Record) {
					if rec.Reason != "" || rec.SessionID != s1 {
						t.Errorf("reason %q session %q", rec.Reason, rec.SessionID)
					}
				}},
			{"disconnect", Transition{To: StateCompleted, At: at(30), Source: "status_push", SessionID: s1}, StateCompleted, true, true, false,
				events(StateQueued, StateDispatching, StateUnknown, StateAnswered, StateCompleted)},
		}},
		{"unknown resolved by a CDR", []step{
			{"no reply", Transition{To: StateUnknown, At: at(11), Source: "worker"}, StateUnknown, true, true, false, nil},
			{"CDR", Transition{To: StateNoAnswer, At: at(40), Source: "cdr_push", SessionID: s1, CDR: &CDR{Outcome: "no_answer"}}, StateNoAnswer, true, true, false, nil},
			{"no further change", Transition{To: StateCompleted, At: at(41), Source: "status_push", SessionID: s1}, StateNoAnswer, false, false, false, nil},
		}},
		{"redial: the old call's pushes are stale", []step{
			{"accepted", Transition{To: StateCalling, At: at(2), Source: "worker", Attempt: 1, SessionID: s1}, StateCalling, true, false, false, nil},
			{"busy", Transition{To: StateBusy, At: at(5), Source: "cdr_push", SessionID: s1, CDR: cdrBusy}, StateBusy, true, true, false, nil},
			{"redial", Transition{To: StateQueued, At: at(60), Source: "redial", From: []State{StateBusy, StateNoAnswer}}, StateQueued, true, false, false,
				func(t *testing.T, rec Record) {
					if rec.SessionID != "" || rec.CDR != nil || rec.Reason != "" {
						t.Errorf("not reset for a new call: session %q cdr %+v reason %q", rec.SessionID, rec.CDR, rec.Reason)
					}
				}},
			{"accepted again", Transition{To: StateCalling, At: at(62), Source: "worker", Attempt: 2, SessionID: s2}, StateCalling, true, false, false, nil},
			{"late push of the first call", Transition{To: StateCompleted, At: at(63), Source: "status_push", SessionID: s1}, StateCalling, false, false, true, nil},
			{"re-sent CDR of the first call", Transition{To: StateBusy, At: at(64), Source: "cdr_push", SessionID: s1, CDR: cdrBusy}, StateCalling, false, false, true, nil},
			{"a session never seen", Transition{To: StateAnswered, At: at(64), Source: "status_push", SessionID: "other"}, StateCalling, false, false, true, nil},
			{"second call ends", Transition{To: StateCompleted, At: at(90), Source: "cdr_push", SessionID: s2, CDR: cdrDone}, StateCompleted, true, true, false,
				func(t *testing.T, rec Record) {
					if rec.SessionID != s2 || rec.CDR.Outcome != "completed" || rec.Attempts != 2 {
						t.Errorf("session %q cdr %+v attempts %d", rec.SessionID, rec.CDR, rec.Attempts)
					}
					if rec.Events[1].SessionID != s1 || rec.Events[4].SessionID != s2 {
						t.Errorf("event sessions %q %q", rec.Events[1].SessionID, rec.Events[4].SessionID)
					}
				}},
		}},
		{"attempts only rise", []step{
			{"attempt 3", Transition{To: StateDispatching, At: at(1), Source: "worker", Attempt: 3}, StateDispatching, true, false, false, nil},
			{"attempt 2", Transition{To: StateDispatching, At: at(2), Source: "worker", Attempt: 2}, StateDispatching, false, false, false,
				func(t *testing.T, rec Record) {
					if rec.Attempts != 3 {
						t.Errorf("attempts %d, want 3", rec.Attempts)
					}
				}},
			{"attempt 4 without a state change", Transition{To: StateDispatching, At: at(3), Source: "worker", Attempt: 4}, StateDispatching, true, false, false,
				func(t *testing.T, rec Record) {
					if rec.Attempts != 4 || len(rec.Events) != 2 {
						t.Errorf("attempts %d, %d events", rec.Attempts, len(rec.Events))
					}
				}},
		}},
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) {
				id := e.create(t).ID
				for _, st := range sc.steps {
					rec, out, err := e.store.Transition(context.Background(), id, st.tr)
					if err != nil {
						t.Fatalf("%s: %v", st.name, err)
					}
					if rec.State != st.wantState || out.Changed != st.wantChanged || out.BecameFinal != st.wantFinal || out.StaleSession != st.wantStale {
						t.Errorf("%s: state %s %+v; want state %s changed %v final %v stale %v",
							st.name, rec.State, out, st.wantState, st.wantChanged, st.wantFinal, st.wantStale)
					}
					stored := e.get(t, id)
					if stored.State != rec.State || len(stored.Events) != len(rec.Events) {
						t.Errorf("%s: stored record differs from the returned one", st.name)
					}
					if st.check != nil {
						t.Run(st.name, func(t *testing.T) { st.check(t, stored) })
					}
				}
			})
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestTransitionInvalid(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		tr      Transition
		wantErr error
	}{
		{"unknown state", "", Transition{To: "done", Source: "x"}, ErrInvalid},
		{"bad From", "", Transition{To: StateQueued, Source: "x", From: []State{"nope"}}, ErrInvalid},
		{"no source", "", Transition{To: StateCalling}, ErrInvalid},
		{"negative attempt", "", Transition{To: StateCalling, Source: "x", Attempt: -1}, ErrInvalid},
		{"digits not DTMF", "", Transition{To: StateAnswered, Source: "x", Digits: "12x"}, ErrInvalid},
		{"missing job", "j_missing", Transition{To: StateCalling, Source: "x"}, ErrNotFound},
		{"malformed ID", "j_{x}", Transition{To: StateCalling, Source: "x"}, ErrNotFound},
		{"empty ID", "-", Transition{To: StateCalling, Source: "x"}, ErrNotFound},
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := tt.id
				if id == "" {
					id = e.create(t).ID
				} else if id == "-" {
					id = ""
				}
				_, _, err := e.store.Transition(context.Background(), id, tt.tr)
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			})
		}
	})
}

// TestEventCap: a job that loops (many retries) keeps its creation event and the latest ones.
func TestEventCap(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		id := e.create(t).ID
		for i := range 40 {
			for _, tr := range []Transition{
				{To: StateDispatching, At: at(2 * i), Source: "worker", Attempt: i + 1, From: []State{StateQueued}},
				{To: StateQueued, At: at(2*i + 1), Source: "worker", From: []State{StateDispatching}},
			} {
				if _, _, err := e.store.Transition(ctx, id, tr); err != nil {
					t.Fatal(err)
				}
			}
		}
		rec := e.get(t, id)
		last := rec.Events[len(rec.Events)-1]
		if len(rec.Events) != maxEvents || rec.Events[0].Source != "api" || !last.At.Equal(at(79)) || rec.Attempts != 40 {
			t.Errorf("%d events (want %d), first %+v, last %+v, attempts %d", len(rec.Events), maxEvents, rec.Events[0], last, rec.Attempts)
		}
	})
}
