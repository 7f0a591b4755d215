package voicesim

import (
	"math"
	"time"
)

// rateWindow is the account's call rate (1013001): a strict sliding window that accepts at most
// n = ceil(rate) calls in any window of n/rate seconds. For a whole rate that is "never more than
// rate calls in any one second" with a burst of rate; for 2.5/s it is 3 calls in any 1.2 s.
// A nil window is unlimited. Guarded by Simulator.mu.
type rateWindow struct {
	n      int
	window time.Duration
	times  []time.Time // the last n accepted calls, a ring once full; times[next] is the oldest
	next   int
}

func newRateWindow(rate float64) *rateWindow {
	if rate <= 0 {
		return nil
	}
	n := int(math.Ceil(rate))
	return &rateWindow{n: n, window: time.Duration(float64(n) / rate * float64(time.Second))}
}

// allowed reports whether a call accepted at now stays within the rate.
func (w *rateWindow) allowed(now time.Time) bool {
	if w == nil || len(w.times) < w.n {
		return true
	}
	return now.Sub(w.times[w.next]) >= w.window
}

// add counts a call accepted at now.
func (w *rateWindow) add(now time.Time) {
	switch {
	case w == nil:
	case len(w.times) < w.n:
		w.times = append(w.times, now)
	default:
		w.times[w.next] = now
		w.next = (w.next + 1) % w.n
	}
}
