package queue

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
)

// RescheduleError sends a task back to its queue for a later try without using one of its
// attempts: a rate token or a call slot was not free, the calling window is closed, or the
// provider asked us to slow down. asynq's IsFailure hook (see IsFailure) makes sure the retry
// counter is not incremented.
type RescheduleError struct {
	Delay  time.Duration
	Reason string // bounded: one of RetryReasons
}

func (e *RescheduleError) Error() string {
	return fmt.Sprintf("reschedule in %s: %s", e.Delay.Round(time.Millisecond), e.Reason)
}

// TransientError asks for a retry with exponential backoff; it uses an attempt.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return "transient: " + e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// IsFailure is the asynq Config.IsFailure hook: a reschedule is not a failure.
func IsFailure(err error) bool {
	var r *RescheduleError
	return err != nil && !errors.As(err, &r)
}

// Backoff is the retry policy of transient failures: exponential from Base, capped at Max, with
// full jitter (the delay is uniform in [d/2, d]).
type Backoff struct {
	Base, Max time.Duration
}

// DefaultBackoff starts at 2 s and stops growing at 5 min.
var DefaultBackoff = Backoff{Base: 2 * time.Second, Max: 5 * time.Minute}

// Delay returns the delay before retry n (n = retries so far, from 0).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + rand.N(half+1)
}

// RetryDelayFunc returns the asynq Config.RetryDelayFunc: a RescheduleError's own delay, else the
// backoff.
func (b Backoff) RetryDelayFunc() asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var r *RescheduleError
		if errors.As(err, &r) {
			return r.Delay
		}
		return b.Delay(n)
	}
}
