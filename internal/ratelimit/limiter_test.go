package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

const testKey = "app-1"

func newTestLimiter(b *backend, opts LimiterOptions) *Limiter {
	opts.hooks = b.hooks
	return NewLimiter(b.rdb, opts)
}

// mustAllow calls Allow and fails the test on an error.
func mustAllow(t *testing.T, l *Limiter, lim Limit, p Priority) Result {
	t.Helper()
	r, err := l.Allow(context.Background(), testKey, lim, p)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	return r
}

func TestLimitInterval(t *testing.T) {
	tests := []struct {
		name string
		rate float64
		want time.Duration
	}{
		{"whole", 100, 10 * time.Millisecond},
		{"rounded up", 3, 333334 * time.Microsecond},
		{"slow", 1.0 / 60, time.Minute},
		{"faster than a microsecond", 5e6, time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Limit{Rate: tt.rate, Burst: 1}).Interval(); got != tt.want {
				t.Errorf("Interval() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLimiterBurstThenSpacing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		l := newTestLimiter(b, LimiterOptions{})
		lim := Limit{Rate: 10, Burst: 3}
		for i, wantRemaining := range []int{2, 1, 0} {
			if r := mustAllow(t, l, lim, PriorityHigh); !r.Allowed || r.Remaining != wantRemaining {
				t.Fatalf("call %d = %+v, want allowed with %d remaining", i, r, wantRemaining)
			}
		}
		if r := mustAllow(t, l, lim, PriorityHigh); r.Allowed || r.RetryAfter != 100*time.Millisecond {
			t.Fatalf("call over the burst = %+v, want denied, retry after 100ms", r)
		}
		b.clock.Advance(99 * time.Millisecond)
		if r := mustAllow(t, l, lim, PriorityHigh); r.Allowed || r.RetryAfter != time.Millisecond {
			t.Fatalf("call 1ms early = %+v, want denied, retry after 1ms", r)
		}
		b.clock.Advance(time.Millisecond)
		if r := mustAllow(t, l, lim, PriorityHigh); !r.Allowed || r.Remaining != 0 {
			t.Fatalf("call on time = %+v, want allowed, 0 remaining", r)
		}
		// A long idle time refills the burst, and no more than the burst.
		b.clock.Advance(time.Hour)
		for i := range 3 {
			if r := mustAllow(t, l, lim, PriorityHigh); !r.Allowed {
				t.Fatalf("call %d after idling = %+v, want allowed", i, r)
			}
		}
		if r := mustAllow(t, l, lim, PriorityHigh); r.Allowed {
			t.Fatalf("call after a refilled burst = %+v, want denied", r)
		}
		checkKeys(t, b.rdb)
	})
}

func TestLimiterRoundingNeverExceedsRate(t *testing.T) {
	// 3/s does not divide a second into whole microseconds; an interval rounded down would
	// fit a fourth call just inside the first second.
	eachBackend(t, func(t *testing.T, b *backend) {
		l := newTestLimiter(b, LimiterOptions{})
		lim := Limit{Rate: 3, Burst: 1}
		start := b.clock.Now()
		granted := 0
		for b.clock.Now().Sub(start) < time.Second {
			r := mustAllow(t, l, lim, PriorityHigh)
			if r.Allowed {
				granted++
				continue
			}
			b.clock.Advance(r.RetryAfter) // come back exactly when the next token is due
		}
		if granted != 3 {
			t.Errorf("granted %d calls within one second at 3/s, want 3", granted)
		}
	})
}

func TestLimiterPriorityReserve(t *testing.T) {
	tests := []struct {
		name    string
		burst   int
		reserve float64
		want    map[Priority]int // tokens each priority gets from a full bucket
	}{
		{"no reserve", 4, 0, map[Priority]int{PriorityLow: 4, PriorityNormal: 4, PriorityHigh: 4}},
		{"quarter", 4, 0.25, map[Priority]int{PriorityLow: 3, PriorityNormal: 3, PriorityHigh: 4}},
		{"half", 4, 0.5, map[Priority]int{PriorityLow: 2, PriorityNormal: 3, PriorityHigh: 4}},
		{"never the last token", 2, 0.9, map[Priority]int{PriorityLow: 1, PriorityNormal: 1, PriorityHigh: 2}},
		{"burst 1 has nothing to reserve", 1, 0.5, map[Priority]int{PriorityLow: 1, PriorityNormal: 1, PriorityHigh: 1}},
	}
	eachBackend(t, func(t *testing.T, b *backend) {
		for _, tt := range tests {
			for p, want := range tt.want {
				t.Run(fmt.Sprintf("%s/%s", tt.name, p), func(t *testing.T) {
					b.clock.Advance(time.Hour) // a full bucket
					l := newTestLimiter(b, LimiterOptions{Reserve: tt.reserve})
					lim := Limit{Rate: 1, Burst: tt.burst}
					got := 0
					for mustAllow(t, l, lim, p).Allowed {
						got++
					}
					if got != want {
						t.Errorf("%s got %d tokens from a full bucket, want %d", p, got, want)
					}
					// Whatever a lower priority leaves, a higher one can still use.
					if p != PriorityHigh && tt.want[PriorityHigh] > want {
						if r := mustAllow(t, l, lim, PriorityHigh); !r.Allowed {
							t.Errorf("high after %s drained its share = %+v, want allowed", p, r)
						}
					}
				})
			}
		}
	})
}

func TestLimiterSteadyBulkUsesFullRateAndLeavesHeadroom(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		l := newTestLimiter(b, LimiterOptions{Reserve: 0.25})
		lim := Limit{Rate: 10, Burst: 4} // low keeps 1 token for higher priorities
		granted := 0
		for range 600 { // bulk polls every 5 ms for 3 s
			if mustAllow(t, l, lim, PriorityLow).Allowed {
				granted++
			}
			b.clock.Advance(5 * time.Millisecond)
		}
		// 3 from the bucket at 0 s, then one every 100 ms from 0.1 s to 2.9 s.
		if want := 3 + 29; granted != want {
			t.Errorf("bulk alone got %d tokens in 3 s at 10/s, want %d", granted, want)
		}
		if r := mustAllow(t, l, lim, PriorityHigh); !r.Allowed {
			t.Errorf("verify after steady bulk = %+v, want allowed at once", r)
		}
	})
}

func TestLimiterHighPriorityWaitsAtMostTwoIntervals(t *testing.T) {
	tests := []struct {
		name     string
		burst    int
		reserve  float64
		wantHigh time.Duration // the high-priority booking's wait behind saturating lower priorities
	}{
		{"burst 1", 1, 0, 200 * time.Millisecond},
		{"burst 2 with a reserved token", 2, 0.5, 100 * time.Millisecond},
		{"burst 3 with a reserved token", 3, 0.3, 100 * time.Millisecond},
	}
	eachBackend(t, func(t *testing.T, b *backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b.clock.Advance(time.Hour)
				l := newTestLimiter(b, LimiterOptions{Reserve: tt.reserve})
				lim := Limit{Rate: 10, Burst: tt.burst}
				ctx := context.Background()
				// Lower priorities take and book all they may at this instant.
				for _, p := range []Priority{PriorityLow, PriorityNormal, PriorityLow, PriorityNormal, PriorityLow} {
					for {
						r, err := l.take(ctx, testKey, lim, p, lim.Interval())
						if err != nil {
							t.Fatalf("take: %v", err)
						}
						if !r.allowed {
							break
						}
						if r.wait > lim.Interval() {
							t.Fatalf("%s booked %v ahead, more than one interval", p, r.wait)
						}
					}
				}
				r, err := l.take(ctx, testKey, lim, PriorityHigh, time.Second)
				if err != nil {
					t.Fatalf("take: %v", err)
				}
				if !r.allowed || r.wait != tt.wantHigh {
					t.Errorf("high booking = %+v, want allowed after %v", r, tt.wantHigh)
				}
			})
		}
	})
}

func TestLimiterWait(t *testing.T) {
	lim := Limit{Rate: 10, Burst: 1}
	tests := []struct {
		name      string
		p         Priority
		before    int           // tokens taken by PriorityHigh just before
		maxWait   time.Duration // for the Wait under test
		want      bool
		wantSlept time.Duration // controlled-clock time spent in Wait
		wantRetry time.Duration
	}{
		{"free token", PriorityLow, 0, time.Second, true, 0, 0},
		{"high books ahead", PriorityHigh, 3, time.Second, true, 300 * time.Millisecond, 0},
		{"high beyond maxWait", PriorityHigh, 3, 250 * time.Millisecond, false, 0, 300 * time.Millisecond},
		{"low polls then books", PriorityLow, 3, time.Second, true, 300 * time.Millisecond, 0},
		{"low beyond maxWait", PriorityLow, 3, 250 * time.Millisecond, false, 0, 300 * time.Millisecond},
		{"zero maxWait is Allow", PriorityNormal, 1, 0, false, 0, 100 * time.Millisecond},
	}
	eachBackend(t, func(t *testing.T, b *backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b.clock.Advance(time.Hour)
				reg := prometheus.NewPedanticRegistry()
				m := NewMetrics(reg)
				l := newTestLimiter(b, LimiterOptions{Metrics: m})
				ctx := context.Background()
				for range tt.before {
					if r, err := l.take(ctx, testKey, lim, PriorityHigh, time.Hour); err != nil || !r.allowed {
						t.Fatalf("booking = %+v, %v", r, err)
					}
				}
				start := b.clock.Now()
				r, err := l.Wait(ctx, testKey, lim, tt.p, tt.maxWait)
				if err != nil {
					t.Fatalf("Wait: %v", err)
				}
				slept := b.clock.Now().Sub(start)
				if r.Allowed != tt.want || slept != tt.wantSlept || r.RetryAfter != tt.wantRetry {
					t.Errorf("Wait = %+v after %v, want allowed=%v after %v, retry %v", r, slept, tt.want, tt.wantSlept, tt.wantRetry)
				}
				result := "denied"
				if tt.want {
					result = "granted"
				}
				if got := testutil.ToFloat64(m.tokens.WithLabelValues(tt.p.String(), result)); got != 1 {
					t.Errorf("tokens_total{%s,%s} = %v, want 1", tt.p, result, got)
				}
			})
		}
	})
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		l := newTestLimiter(b, LimiterOptions{})
		lim := Limit{Rate: 1, Burst: 1}
		mustAllow(t, l, lim, PriorityHigh)

		t.Run("deadline shorter than maxWait fails fast", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			r, err := l.Wait(ctx, testKey, lim, PriorityHigh, 5*time.Second)
			if err != nil || r.Allowed || r.RetryAfter != time.Second {
				t.Errorf("Wait = %+v, %v; want denied, retry after 1s", r, err)
			}
		})
		t.Run("cancelled while sleeping", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			b.hooks.sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
			defer func() { b.hooks.sleep = b.clock.Sleep }()
			r, err := l.Wait(ctx, testKey, lim, PriorityHigh, 5*time.Second)
			if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) || r.Allowed {
				t.Errorf("Wait = %+v, %v; want context.Canceled", r, err)
			}
		})
	})
}

func TestLimiterInvalidArguments(t *testing.T) {
	_, rdb := testredis.Mini(t)
	l := NewLimiter(rdb, LimiterOptions{})
	tests := []struct {
		name string
		key  string
		lim  Limit
		p    Priority
	}{
		{"zero rate", testKey, Limit{Rate: 0, Burst: 1}, PriorityLow},
		{"NaN rate", testKey, Limit{Rate: math.NaN(), Burst: 1}, PriorityLow},
		{"infinite rate", testKey, Limit{Rate: math.Inf(1), Burst: 1}, PriorityLow},
		{"zero burst", testKey, Limit{Rate: 1, Burst: 0}, PriorityLow},
		{"unknown priority", testKey, Limit{Rate: 1, Burst: 1}, Priority(7)},
		{"empty key", "", Limit{Rate: 1, Burst: 1}, PriorityLow},
		{"brace in key", "a}b", Limit{Rate: 1, Burst: 1}, PriorityLow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := l.Allow(context.Background(), tt.key, tt.lim, tt.p)
			if !errors.Is(err, ErrInvalid) || r.Allowed {
				t.Errorf("Allow = %+v, %v; want ErrInvalid", r, err)
			}
		})
	}
	if err := (LimiterOptions{Reserve: 1}).Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate(Reserve 1) = %v, want ErrInvalid", err)
	}
}

func TestLimiterFailsClosed(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T) *redis.Client
	}{
		{"closed client", func(t *testing.T) *redis.Client {
			_, rdb := testredis.Mini(t)
			_ = rdb.Close()
			return rdb
		}},
		{"miniredis stopped", func(t *testing.T) *redis.Client {
			mr, _ := testredis.Mini(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1})
			t.Cleanup(func() { _ = rdb.Close() })
			mr.Close()
			return rdb
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := tt.break_(t)
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			m := NewMetrics(prometheus.NewPedanticRegistry())
			ctx := context.Background()
			lim := Limit{Rate: 100, Burst: 1}

			l := NewLimiter(rdb, LimiterOptions{Logger: log, Metrics: m})
			for range 2 {
				if r, err := l.Allow(ctx, testKey, lim, PriorityHigh); !errors.Is(err, ErrUnavailable) || r.Allowed {
					t.Errorf("Allow = %+v, %v; want denied with ErrUnavailable", r, err)
				}
			}
			if r, err := l.Wait(ctx, testKey, lim, PriorityHigh, time.Second); !errors.Is(err, ErrUnavailable) || r.Allowed {
				t.Errorf("Wait = %+v, %v; want denied with ErrUnavailable", r, err)
			}
			if got := testutil.ToFloat64(m.errors.WithLabelValues("limiter")); got != 3 {
				t.Errorf("errors_total{op=limiter} = %v, want 3", got)
			}
			if n := strings.Count(logs.String(), "failing closed"); n != 1 {
				t.Errorf("logged %d times in a burst of failures, want 1 (throttled):\n%s", n, logs.String())
			}

			s := NewSlots(rdb, SlotsOptions{Metrics: m})
			if ok, _, err := s.Acquire(ctx, testKey, "job-1", 5, time.Minute); !errors.Is(err, ErrUnavailable) || ok {
				t.Errorf("Acquire = %v, %v; want false with ErrUnavailable", ok, err)
			}
			c := NewCalleeLimiter(rdb, []byte("k"), CalleeOptions{Metrics: m})
			if d, err := c.Check(ctx, "verify", "+8613800000001", DefaultCalleeCaps()["verify"], "job-1:1"); !errors.Is(err, ErrUnavailable) || d.Allowed {
				t.Errorf("Check = %+v, %v; want refused with ErrUnavailable", d, err)
			}
			a := NewAdaptive(rdb, AdaptiveOptions{Metrics: m})
			if _, err := a.Effective(ctx, testKey, lim); !errors.Is(err, ErrUnavailable) {
				t.Errorf("Effective: %v, want ErrUnavailable", err)
			}
			for _, op := range []string{"slots", "callee", "adaptive"} {
				if got := testutil.ToFloat64(m.errors.WithLabelValues(op)); got != 1 {
					t.Errorf("errors_total{op=%s} = %v, want 1", op, got)
				}
			}
		})
	}
}

func TestLimiterCancelledContextIsNotAnOutage(t *testing.T) {
	_, rdb := testredis.Mini(t)
	m := NewMetrics(prometheus.NewPedanticRegistry())
	l := NewLimiter(rdb, LimiterOptions{Metrics: m})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Allow(ctx, testKey, Limit{Rate: 1, Burst: 1}, PriorityLow)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Allow with a cancelled context: %v, want context.Canceled and not ErrUnavailable", err)
	}
	if got := testutil.ToFloat64(m.errors.WithLabelValues("limiter")); got != 0 {
		t.Errorf("errors_total = %v, want 0", got)
	}
}

func TestLimiterLocalSmoothing(t *testing.T) {
	mr, rdb := testredis.Mini(t)
	mr.SetTime(epoch)
	c := &fakeClock{t: epoch, set: mr.SetTime}
	hooks := &testHooks{now: c.Now, sleep: c.Sleep}
	smooth := NewLimiter(rdb, LimiterOptions{LocalSmoothing: true, hooks: hooks})
	other := NewLimiter(rdb, LimiterOptions{hooks: hooks}) // another process
	lim := Limit{Rate: 1, Burst: 2}
	ctx := context.Background()

	t.Run("refuses locally once the process used the budget", func(t *testing.T) {
		for range 2 {
			if r, _ := smooth.Allow(ctx, testKey, lim, PriorityLow); !r.Allowed {
				t.Fatalf("Allow = %+v, want allowed", r)
			}
		}
		before := mr.CommandCount()
		r, err := smooth.Allow(ctx, testKey, lim, PriorityLow)
		if err != nil || r.Allowed || r.RetryAfter != time.Second {
			t.Errorf("Allow = %+v, %v; want denied, retry after 1s", r, err)
		}
		if n := mr.CommandCount() - before; n != 0 {
			t.Errorf("%d Redis commands for a locally refused token, want 0", n)
		}
	})
	t.Run("never grants on its own", func(t *testing.T) {
		c.Advance(time.Hour)
		for range 2 {
			if r, _ := other.Allow(ctx, testKey, lim, PriorityLow); !r.Allowed {
				t.Fatalf("other process: Allow = %+v, want allowed", r)
			}
		}
		// The local limiter is full again, but Redis has nothing left.
		if r, err := smooth.Allow(ctx, testKey, lim, PriorityLow); err != nil || r.Allowed {
			t.Errorf("Allow = %+v, %v; want denied by Redis", r, err)
		}
	})
}

// grantLog collects the Redis-clock instants at which tokens become usable.
type grantLog struct {
	mu    sync.Mutex
	slots []int64 // µs
	high  []int64 // waits of high-priority bookings, µs
}

func (g *grantLog) record(p Priority, now, wait int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.slots = append(g.slots, now+wait)
	if p == PriorityHigh {
		g.high = append(g.high, wait)
	}
}

// runWorkers runs pods×workers goroutines that take tokens with Wait on the real clock until
// total tokens have been granted. Each pod is its own Limiter and client.
func runWorkers(t *testing.T, newClient func() *redis.Client, lim Limit, opts LimiterOptions, pods, workers, total int, prio func(worker int) Priority) *grantLog {
	t.Helper()
	log := &grantLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range pods {
		l := NewLimiter(newClient(), opts)
		l.onGrant = log.record
		for w := range workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					r, err := l.Wait(ctx, testKey, lim, prio(w), 300*time.Millisecond)
					if err != nil {
						if ctx.Err() == nil {
							t.Errorf("Wait: %v", err)
						}
						return
					}
					if r.Allowed && granted.Add(1) >= int64(total) {
						cancel()
					}
				}
			})
		}
	}
	wg.Wait()
	if granted.Load() < int64(total) {
		t.Fatalf("only %d of %d tokens granted before the timeout", granted.Load(), total)
	}
	slices.Sort(log.slots)
	return log
}

func TestLimiterNeverExceedsCap(t *testing.T) {
	tests := []struct {
		name  string
		lim   Limit
		total int
	}{
		{"burst 1: strict spacing", Limit{Rate: 200, Burst: 1}, 150},
		{"burst 5", Limit{Rate: 100, Burst: 5}, 130},
	}
	for _, bk := range realTimeBackends {
		t.Run(bk.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					newClient := bk.open(t)
					log := runWorkers(t, newClient, tt.lim, LimiterOptions{Reserve: 0.2}, 4, 6, tt.total,
						func(w int) Priority { return Priority(w % 3) })
					T := tt.lim.intervalMicros()
					tol := int64(tt.lim.Burst-1) * T
					// At most ⌈(L+τ)/T⌉ tokens in any window of length L; with burst 1, spacing ≥ T.
					perSecond := int(math.Ceil(float64(1_000_000+tol) / float64(T)))
					for i := range log.slots {
						if tt.lim.Burst == 1 && i > 0 && log.slots[i]-log.slots[i-1] < T {
							t.Fatalf("tokens %d and %d are %dµs apart, less than the interval %dµs", i-1, i, log.slots[i]-log.slots[i-1], T)
						}
						if j := i + perSecond; j < len(log.slots) && log.slots[j]-log.slots[i] < 1_000_000 {
							t.Fatalf("%d tokens within one second (from token %d), at most %d allowed", perSecond+1, i, perSecond)
						}
					}
					if tt.lim.Burst == 1 && perSecond != int(tt.lim.Rate) {
						t.Fatalf("bound per second = %d, want the rate %v", perSecond, tt.lim.Rate)
					}
				})
			}
		})
	}
}

func TestLimiterHighPriorityServedPromptlyUnderLoad(t *testing.T) {
	for _, bk := range realTimeBackends {
		t.Run(bk.name, func(t *testing.T) {
			lim := Limit{Rate: 100, Burst: 1}
			// 10 bulk workers saturate the rate; one verify worker competes with them.
			log := runWorkers(t, bk.open(t), lim, LimiterOptions{}, 1, 11, 150,
				func(w int) Priority {
					if w == 0 {
						return PriorityHigh
					}
					return PriorityLow
				})
			if len(log.high) == 0 {
				t.Fatal("the verify worker got no token")
			}
			limit := 2 * lim.intervalMicros()
			for _, w := range log.high {
				if w > limit {
					t.Errorf("verify booked a token %dµs ahead behind bulk, want at most 2 intervals (%dµs)", w, limit)
				}
			}
		})
	}
}

func BenchmarkAllow(b *testing.B) {
	if testing.Short() {
		b.Skip("needs the real Redis")
	}
	_, rdb := testredis.Real(b)
	l := NewLimiter(rdb, LimiterOptions{Reserve: 0.2})
	lim := Limit{Rate: 1e6, Burst: 1000}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Allow(ctx, testKey, lim, PriorityNormal); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Allow(ctx, testKey, lim, PriorityNormal); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
