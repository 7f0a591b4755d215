package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"github.com/voicequeue/voicequeue/internal/redisstats"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

func newTestCapacity(t *testing.T, b *backend, opts CapacityOptions) *Capacity {
	t.Helper()
	opts.hooks = b.hooks
	c, err := NewCapacity(b.rdb, opts)
	if err != nil {
		t.Fatalf("NewCapacity: %v", err)
	}
	return c
}

// mustTake calls Take and fails the test on an error.
func mustTake(t *testing.T, c *Capacity, cl Claim, maxWait time.Duration) ClaimResult {
	t.Helper()
	r, err := c.Take(context.Background(), testKey, cl, maxWait)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return r
}

func TestCapacityTakesTokenAndSlotTogether(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		c := newTestCapacity(t, b, CapacityOptions{})
		slots := newTestSlots(b, SlotsOptions{})
		claim := func(holder string) Claim {
			return Claim{Rate: Limit{Rate: 10, Burst: 1}, Slots: 2, Holder: holder, Lease: time.Minute}
		}
		if r := mustTake(t, c, claim("job-1"), 0); !r.Allowed {
			t.Fatalf("first claim = %+v, want allowed", r)
		}
		if n := mustInUse(t, slots); n != 1 {
			t.Fatalf("slots in use after one claim = %d, want 1", n)
		}
		// The next token is 100 ms away: without a wait the claim is refused for the rate, and
		// takes no slot.
		r := mustTake(t, c, claim("job-2"), 0)
		if r.Allowed || r.Short != ShortRate || r.RetryAfter != 100*time.Millisecond {
			t.Fatalf("claim before the next token = %+v, want refused for the rate, retry after 100ms", r)
		}
		if n := mustInUse(t, slots); n != 1 {
			t.Fatalf("a refused claim changed the slots: %d in use, want 1", n)
		}
		// With a wait it books the token, due 100 ms from now, and holds a slot.
		before := b.clock.Now()
		r = mustTake(t, c, claim("job-2"), time.Second)
		if !r.Allowed {
			t.Fatalf("claim with a wait = %+v, want allowed", r)
		}
		if due := r.Due.Sub(before); due != 100*time.Millisecond {
			t.Errorf("token due %v from now, want 100ms", due)
		}
		if n := mustInUse(t, slots); n != 2 {
			t.Fatalf("slots in use = %d, want 2", n)
		}
		checkKeys(t, b.rdb)
	})
}

func TestCapacityFullSlotsSpendNoToken(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		c := newTestCapacity(t, b, CapacityOptions{SlotPoll: 10 * time.Millisecond})
		rate := Limit{Rate: 1000, Burst: 1}
		claim := func(holder string, lease time.Duration) Claim {
			return Claim{Rate: rate, Slots: 1, Holder: holder, Lease: lease}
		}
		if r := mustTake(t, c, claim("job-1", 50*time.Millisecond), 0); !r.Allowed {
			t.Fatalf("first claim = %+v, want allowed", r)
		}
		b.clock.Advance(time.Millisecond) // the next token is due now
		r := mustTake(t, c, claim("job-2", time.Minute), 5*time.Millisecond)
		if r.Allowed || r.Short != ShortSlots || r.RetryAfter != 10*time.Millisecond {
			t.Fatalf("claim on full slots = %+v, want refused for slots, retry after the poll", r)
		}
		// Had the refused claim spent the token due now, a claim for a token alone would be
		// refused until the next one.
		if r := mustTake(t, c, Claim{Rate: rate}, 0); !r.Allowed {
			t.Errorf("token-only claim after a claim refused for slots = %+v: the refused claim spent the token", r)
		}
		// Within a longer wait it polls until job-1's lease runs out (49 ms from now).
		start := b.clock.Now()
		if r := mustTake(t, c, claim("job-2", time.Minute), 100*time.Millisecond); !r.Allowed {
			t.Fatalf("claim while a lease runs out = %+v, want allowed", r)
		}
		if waited := b.clock.Now().Sub(start); waited < 49*time.Millisecond || waited > 60*time.Millisecond {
			t.Errorf("waited %v for the slot, want 49–60ms (polls of 10ms)", waited)
		}
	})
}

func TestCapacitySpacing(t *testing.T) {
	tests := []struct {
		name     string
		margin   float64
		decrease bool
		want     time.Duration
	}{
		{"configured rate", 0, false, 10 * time.Millisecond},
		{"under a margin", 0.03, false, 10310 * time.Microsecond}, // 1/97 s, rounded up to a µs
		{"after a provider rate reply", 0, true, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b *backend) {
				m := NewMetrics(prometheus.NewPedanticRegistry())
				c := newTestCapacity(t, b, CapacityOptions{Margin: tt.margin, Metrics: m})
				rate := Limit{Rate: 100, Burst: 1}
				if tt.decrease {
					a := newTestAdaptive(b, AdaptiveOptions{Factor: 0.5})
					if err := a.Decrease(context.Background(), testKey, rate); err != nil {
						t.Fatalf("Decrease: %v", err)
					}
				}
				var grants []time.Time
				for range 5 {
					r := mustTake(t, c, Claim{Rate: rate}, time.Second)
					if !r.Allowed {
						t.Fatalf("claim = %+v, want allowed", r)
					}
					grants = append(grants, r.Due)
				}
				for i := 1; i < len(grants); i++ {
					if d := grants[i].Sub(grants[i-1]); d != tt.want {
						t.Errorf("grant %d came %v after the one before, want %v", i, d, tt.want)
					}
				}
				wantRate := 1e6 / float64(tt.want.Microseconds())
				if got := testutil.ToFloat64(m.effective); got < wantRate-0.01 || got > wantRate+0.5 {
					t.Errorf("effective rate metric = %v, want about %v", got, wantRate)
				}
				if got := testutil.ToFloat64(m.tokens.WithLabelValues("low", "granted")); got != 5 {
					t.Errorf("tokens granted = %v, want 5", got)
				}
			})
		})
	}
}

func TestCapacityReserveKeepsTokensForVerify(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		c := newTestCapacity(t, b, CapacityOptions{Reserve: 0.5})
		rate := Limit{Rate: 10, Burst: 10}
		bulk := 0
		for range 10 {
			if mustTake(t, c, Claim{Rate: rate, Priority: PriorityLow}, 0).Allowed {
				bulk++
			}
		}
		if bulk != 5 {
			t.Errorf("bulk took %d of a burst of 10 with half reserved, want 5", bulk)
		}
		verify := 0
		for range 10 {
			if mustTake(t, c, Claim{Rate: rate, Priority: PriorityHigh}, 0).Allowed {
				verify++
			}
		}
		if verify != 5 {
			t.Errorf("verify took %d of the reserve, want 5", verify)
		}
	})
}

func TestCapacitySlotsOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		c := newTestCapacity(t, b, CapacityOptions{})
		for i := range 3 {
			r := mustTake(t, c, Claim{Slots: 2, Holder: fmt.Sprintf("job-%d", i), Lease: time.Minute}, 0)
			if want := i < 2; r.Allowed != want {
				t.Errorf("claim %d = %+v, want allowed %v", i, r, want)
			}
		}
		// A holder that has a slot renews it even when all are taken.
		if r := mustTake(t, c, Claim{Slots: 2, Holder: "job-0", Lease: time.Minute}, 0); !r.Allowed {
			t.Errorf("renewing a held slot = %+v, want allowed", r)
		}
		if _, err := NewSlots(b.rdb, SlotsOptions{}).Release(context.Background(), testKey, "job-0"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if r := mustTake(t, c, Claim{Slots: 2, Holder: "job-2", Lease: time.Minute}, 0); !r.Allowed {
			t.Errorf("claim after a release = %+v, want allowed", r)
		}
	})
}

func TestCapacityRejectsBadClaims(t *testing.T) {
	_, rdb := testredis.Mini(t)
	c, err := NewCapacity(rdb, CapacityOptions{})
	if err != nil {
		t.Fatalf("NewCapacity: %v", err)
	}
	tests := []struct {
		name string
		key  string
		cl   Claim
	}{
		{"empty key", "", Claim{Rate: Limit{Rate: 1, Burst: 1}}},
		{"brace in key", "a{b", Claim{Rate: Limit{Rate: 1, Burst: 1}}},
		{"negative rate", testKey, Claim{Rate: Limit{Rate: -1, Burst: 1}}},
		{"zero burst", testKey, Claim{Rate: Limit{Rate: 1, Burst: 0}}},
		{"bad priority", testKey, Claim{Rate: Limit{Rate: 1, Burst: 1}, Priority: 7}},
		{"slot without holder", testKey, Claim{Slots: 1, Lease: time.Second}},
		{"slot without lease", testKey, Claim{Slots: 1, Holder: "job-1"}},
		{"negative slots", testKey, Claim{Slots: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.Take(context.Background(), tt.key, tt.cl, time.Second)
			if !errors.Is(err, ErrInvalid) || r.Allowed {
				t.Errorf("Take = %+v, %v; want refused with ErrInvalid", r, err)
			}
		})
	}
	for _, o := range []CapacityOptions{{Reserve: 1}, {Margin: 0.5}, {Margin: -0.1}, {Adaptive: AdaptiveOptions{Factor: 2}}} {
		if _, err := NewCapacity(rdb, o); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewCapacity(%+v) = %v, want ErrInvalid", o, err)
		}
	}
}

func TestCapacityFailsClosed(t *testing.T) {
	mr, _ := testredis.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	mr.Close()
	m := NewMetrics(prometheus.NewPedanticRegistry())
	c, err := NewCapacity(rdb, CapacityOptions{Metrics: m})
	if err != nil {
		t.Fatalf("NewCapacity: %v", err)
	}
	r, err := c.Take(context.Background(), testKey, Claim{Rate: Limit{Rate: 10, Burst: 1}, Slots: 1, Holder: "job-1", Lease: time.Second}, time.Second)
	if !errors.Is(err, ErrUnavailable) || r.Allowed {
		t.Errorf("Take = %+v, %v; want refused with ErrUnavailable", r, err)
	}
	if got := testutil.ToFloat64(m.errors.WithLabelValues("capacity")); got != 1 {
		t.Errorf("errors_total{op=capacity} = %v, want 1", got)
	}
}

// TestCapacityNeverExceedsCaps runs several "pods" (clients) of several workers each on the
// real clock: the grants never exceed the rate in any one-second window, and never more calls
// hold slots than the cap.
func TestCapacityNeverExceedsCaps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about a second")
	}
	for _, bk := range realTimeBackends {
		t.Run(bk.name, func(t *testing.T) {
			newClient := bk.open(t)
			const rate, slots, pods, workers = 50, 5, 3, 4
			var (
				mu     sync.Mutex
				grants []time.Time
				held   int
				most   int
			)
			deadline := time.Now().Add(1200 * time.Millisecond)
			var wg sync.WaitGroup
			for p := range pods {
				c, err := NewCapacity(newClient(), CapacityOptions{})
				if err != nil {
					t.Fatalf("NewCapacity: %v", err)
				}
				release := NewSlots(newClient(), SlotsOptions{})
				for w := range workers {
					wg.Go(func() {
						for i := 0; time.Now().Before(deadline); i++ {
							holder := fmt.Sprintf("p%d-w%d-%d", p, w, i)
							r, err := c.Take(context.Background(), testKey, Claim{
								Rate: Limit{Rate: rate, Burst: 1}, Slots: slots, Holder: holder, Lease: time.Minute,
							}, 200*time.Millisecond)
							if err != nil {
								t.Errorf("Take: %v", err)
								return
							}
							if !r.Allowed {
								continue
							}
							time.Sleep(time.Until(r.Due))
							mu.Lock()
							grants = append(grants, time.Now())
							held++
							most = max(most, held)
							mu.Unlock()
							time.Sleep(30 * time.Millisecond) // the call
							mu.Lock()
							held--
							mu.Unlock()
							if _, err := release.Release(context.Background(), testKey, holder); err != nil {
								t.Errorf("Release: %v", err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			if most > slots {
				t.Errorf("%d calls held slots at once, cap %d", most, slots)
			}
			// Grants are seen after the script's reply, so allow for scheduling jitter in the
			// window: the script itself spaces them 20 ms apart.
			for i := range grants {
				n := 0
				for j := i; j < len(grants) && grants[j].Sub(grants[i]) < 950*time.Millisecond; j++ {
					n++
				}
				if n > rate {
					t.Fatalf("%d grants within 950ms from grant %d, cap %d/s", n, i, rate)
				}
			}
			if len(grants) < rate/2 {
				t.Errorf("only %d grants in 1.2 s at %d/s", len(grants), rate)
			}
		})
	}
}

// TestCapacityWaitersTakeTurns: many workers of one process waiting for tokens do not all run
// the script each time a token comes due; they take turns, so the scripts per granted call stay
// a small constant.
func TestCapacityWaitersTakeTurns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for half a second")
	}
	opts, _ := testredis.Real(t)
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	var trips redisstats.RoundTrips // the test sends nothing but the claims' scripts
	rdb.AddHook(&trips)
	c, err := NewCapacity(rdb, CapacityOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var granted atomic.Int64
	deadline := time.Now().Add(500 * time.Millisecond)
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				r, err := c.Take(context.Background(), testKey, Claim{Rate: Limit{Rate: 100, Burst: 1}}, 100*time.Millisecond)
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				if r.Allowed {
					granted.Add(1)
					time.Sleep(time.Until(r.Due))
				}
			}
		})
	}
	wg.Wait()
	n, _ := trips.Count()
	g := granted.Load()
	if g < 20 {
		t.Fatalf("only %d calls granted in 0.5 s at 100/s", g)
	}
	if perCall := float64(n) / float64(g); perCall > 3 {
		t.Errorf("%d scripts for %d granted calls (%.1f per call) with 40 workers waiting; want at most 3", n, g, perCall)
	}
}

// BenchmarkCapacityTake is the worker's whole capacity claim (token and slot, one script) at a
// cap that never binds, with the slot given back as a call's end would.
func BenchmarkCapacityTake(b *testing.B) {
	if testing.Short() {
		b.Skip("needs the real Redis")
	}
	_, rdb := testredis.Real(b)
	c, err := NewCapacity(rdb, CapacityOptions{Reserve: 0.5, Margin: 0.03})
	if err != nil {
		b.Fatal(err)
	}
	slots := NewSlots(rdb, SlotsOptions{})
	ctx := context.Background()
	var n atomic.Int64
	claim := func(p Priority) error {
		holder := fmt.Sprintf("job-%d", n.Add(1))
		r, err := c.Take(ctx, testKey, Claim{
			Rate: Limit{Rate: 1e6, Burst: 1000}, Priority: p, Slots: 1e6, Holder: holder, Lease: time.Minute,
		}, 500*time.Millisecond)
		if err != nil {
			return err
		}
		if !r.Allowed {
			return fmt.Errorf("claim refused: %+v", r)
		}
		_, err = slots.Release(ctx, testKey, holder)
		return err
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := claim(PriorityLow); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := claim(PriorityHigh); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
