package jobstatus

import (
	"errors"
	"testing"
)

func TestStateRankFinal(t *testing.T) {
	tests := []struct {
		s     State
		rank  int
		final bool
	}{
		{StateQueued, 0, false}, {StateScheduled, 0, false}, {StateDispatching, 1, false},
		{StateCalling, 2, false}, {StateRinging, 3, false}, {StateAnswered, 4, false},
		{StateCompleted, 5, true}, {StateNoAnswer, 5, true}, {StateBusy, 5, true},
		{StateRejected, 5, true}, {StateFailed, 5, true}, {StateExpired, 5, true},
		{StateCanceled, 5, true}, {StateThrottled, 5, true}, {StateUnknown, 5, true},
		{"", -1, false}, {"Completed", -1, false}, {"done", -1, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.s), func(t *testing.T) {
			if got := tt.s.Rank(); got != tt.rank {
				t.Errorf("Rank() = %d, want %d", got, tt.rank)
			}
			if got := tt.s.Final(); got != tt.final {
				t.Errorf("Final() = %v, want %v", got, tt.final)
			}
			got, err := ParseState(string(tt.s))
			if tt.rank < 0 {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("ParseState(%q) err = %v, want ErrInvalid", tt.s, err)
				}
				return
			}
			if err != nil || got != tt.s {
				t.Errorf("ParseState(%q) = %q, %v", tt.s, got, err)
			}
		})
	}
	if len(States()) != 15 {
		t.Errorf("States() has %d entries, want 15", len(States()))
	}
}

func FuzzParseState(f *testing.F) {
	for _, s := range States() {
		f.Add(string(s))
	}
	f.Add(" queued")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseState(v)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if string(s) != v || !s.Valid() {
			t.Fatalf("ParseState(%q) = %q", v, s)
		}
	})
}
