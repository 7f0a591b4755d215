package jobstatus

import "fmt"

// State is where a job is in its life. The values are stable strings: they are stored in Redis,
// returned by the API and scripted against by reviewers.
type State string

// The job states (ARCHITECTURE.md, "Job states").
const (
	StateQueued      State = "queued"
	StateScheduled   State = "scheduled"
	StateDispatching State = "dispatching"
	StateCalling     State = "calling"
	StateRinging     State = "ringing"
	StateAnswered    State = "answered"
	StateCompleted   State = "completed"
	StateNoAnswer    State = "no_answer"
	StateBusy        State = "busy"
	StateRejected    State = "rejected"
	StateFailed      State = "failed"
	StateExpired     State = "expired"
	StateCanceled    State = "canceled"
	StateThrottled   State = "throttled"
	StateUnknown     State = "unknown"
)

// States returns every state in rank order (final states last, unknown at the very end).
func States() []State {
	return []State{
		StateQueued, StateScheduled, StateDispatching, StateCalling, StateRinging, StateAnswered,
		StateCompleted, StateNoAnswer, StateBusy, StateRejected, StateFailed, StateExpired,
		StateCanceled, StateThrottled, StateUnknown,
	}
}

// rankFinal is the rank shared by every final state.
const rankFinal = 5

// Rank orders the states: queued = scheduled (0) < dispatching (1) < calling (2) < ringing (3) <
// answered (4) < every final state (5). An invalid state has rank -1.
func (s State) Rank() int {
	switch s {
	case StateQueued, StateScheduled:
		return 0
	case StateDispatching:
		return 1
	case StateCalling:
		return 2
	case StateRinging:
		return 3
	case StateAnswered:
		return 4
	case StateCompleted, StateNoAnswer, StateBusy, StateRejected, StateFailed, StateExpired,
		StateCanceled, StateThrottled, StateUnknown:
		return rankFinal
	}
	return -1
}

// Final reports whether s ends the job for its producer (the webhook fires). StateUnknown is final
// in that sense, but a later status push or CDR can still resolve it (see Store.Transition).
func (s State) Final() bool { return s.Rank() == rankFinal }

// Valid reports whether s is one of the states above.
func (s State) Valid() bool { return s.Rank() >= 0 }

// ParseState returns the State named by v (exact, lower-case spelling).
func ParseState(v string) (State, error) {
	s := State(v)
	if !s.Valid() {
		return "", fmt.Errorf("parse state %q: %w", v, ErrInvalid)
	}
	return s, nil
}
