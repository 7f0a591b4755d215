package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

func newTestSlots(b *backend, opts SlotsOptions) *Slots {
	opts.hooks = b.hooks
	return NewSlots(b.rdb, opts)
}

func mustAcquire(t *testing.T, s *Slots, holder string, limit int, lease time.Duration) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := s.Acquire(context.Background(), testKey, holder, limit, lease)
	if err != nil {
		t.Fatalf("Acquire(%s): %v", holder, err)
	}
	return ok, retry
}

func mustInUse(t *testing.T, s *Slots) int {
	t.Helper()
	n, err := s.InUse(context.Background(), testKey)
	if err != nil {
		t.Fatalf("InUse: %v", err)
	}
	return n
}

func TestSlotsAcquireRelease(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		m := NewMetrics(prometheus.NewPedanticRegistry())
		s := newTestSlots(b, SlotsOptions{Metrics: m, MaxRetryAfter: 2 * time.Second})
		ctx := context.Background()
		lease := time.Minute

		for i := range 3 {
			if ok, _ := mustAcquire(t, s, fmt.Sprintf("job-%d", i), 3, lease); !ok {
				t.Fatalf("Acquire job-%d: refused, want a slot", i)
			}
			b.clock.Advance(time.Second)
		}
		if got := testutil.ToFloat64(m.inFlight); got != 3 {
			t.Errorf("calls_in_flight = %v, want 3", got)
		}
		t.Run("full", func(t *testing.T) {
			if ok, retry := mustAcquire(t, s, "job-x", 3, lease); ok || retry != 2*time.Second {
				t.Errorf("Acquire on a full set = %v, retry %v; want refused, retry capped at 2s", ok, retry)
			}
		})
		t.Run("same holder renews without a second slot", func(t *testing.T) {
			if ok, _ := mustAcquire(t, s, "job-1", 3, lease); !ok {
				t.Error("Acquire again by the holder: refused, want ok")
			}
			if ok, _ := mustAcquire(t, s, "job-1", 1, lease); !ok {
				t.Error("Acquire again by the holder after the limit dropped: refused, want ok")
			}
			if n := mustInUse(t, s); n != 3 {
				t.Errorf("InUse = %d, want 3", n)
			}
		})
		t.Run("release frees a slot, once", func(t *testing.T) {
			if released, err := s.Release(ctx, testKey, "job-0"); err != nil || !released {
				t.Fatalf("Release = %v, %v; want true", released, err)
			}
			if released, err := s.Release(ctx, testKey, "job-0"); err != nil || released {
				t.Errorf("second Release = %v, %v; want false", released, err)
			}
			if ok, _ := mustAcquire(t, s, "job-x", 3, lease); !ok {
				t.Error("Acquire after a release: refused, want ok")
			}
		})
		checkKeys(t, b.rdb)
	})
}

func TestSlotsLeaseExpiry(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		s := newTestSlots(b, SlotsOptions{MaxRetryAfter: time.Hour})
		ctx := context.Background()
		mustAcquire(t, s, "lost-push", 2, 30*time.Second)
		b.clock.Advance(10 * time.Second)
		mustAcquire(t, s, "alive", 2, 30*time.Second)

		if ok, retry := mustAcquire(t, s, "waiting", 2, 30*time.Second); ok || retry != 20*time.Second {
			t.Fatalf("Acquire = %v, retry %v; want refused until the earliest lease ends in 20s", ok, retry)
		}
		b.clock.Advance(15 * time.Second)
		if err := s.Extend(ctx, testKey, "alive", 30*time.Second); err != nil { // t=25 s
			t.Fatalf("Extend alive: %v", err)
		}
		b.clock.Advance(5 * time.Second) // t=30 s: lost-push's lease ends now
		if n := mustInUse(t, s); n != 1 {
			t.Fatalf("InUse after a lease ended = %d, want 1", n)
		}
		if err := s.Extend(ctx, testKey, "lost-push", time.Minute); !errors.Is(err, ErrNotHeld) {
			t.Errorf("Extend of an expired lease: %v, want ErrNotHeld", err)
		}
		if ok, _ := mustAcquire(t, s, "waiting", 2, 30*time.Second); !ok {
			t.Error("Acquire after a lease ended: refused, want ok")
		}
		b.clock.Advance(20 * time.Second) // t=50 s: alive is held to 55 s, waiting to 60 s
		if n := mustInUse(t, s); n != 2 {
			t.Errorf("InUse = %d, want 2", n)
		}
		b.clock.Advance(time.Minute)
		if n := mustInUse(t, s); n != 0 {
			t.Errorf("InUse after every lease ended = %d, want 0", n)
		}
	})
}

func TestSlotsInvalidArguments(t *testing.T) {
	_, rdb := testredis.Mini(t)
	s := NewSlots(rdb, SlotsOptions{})
	ctx := context.Background()
	tests := []struct {
		name   string
		key    string
		holder string
		limit  int
		lease  time.Duration
	}{
		{"zero limit", testKey, "h", 0, time.Second},
		{"empty holder", testKey, "", 1, time.Second},
		{"no lease", testKey, "h", 1, 0},
		{"brace in key", "{x", "h", 1, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ok, _, err := s.Acquire(ctx, tt.key, tt.holder, tt.limit, tt.lease); !errors.Is(err, ErrInvalid) || ok {
				t.Errorf("Acquire = %v, %v; want ErrInvalid", ok, err)
			}
		})
	}
}

func TestSlotsConcurrentAcquireNeverOverfills(t *testing.T) {
	for _, bk := range realTimeBackends {
		t.Run(bk.name, func(t *testing.T) {
			newClient := bk.open(t)
			const limit, workers = 5, 40
			var got atomic.Int64
			var wg sync.WaitGroup
			for p := range 4 { // four pods
				s := NewSlots(newClient(), SlotsOptions{})
				for w := range workers / 4 {
					wg.Go(func() {
						ok, _, err := s.Acquire(context.Background(), testKey, fmt.Sprintf("job-%d-%d", p, w), limit, time.Minute)
						if err != nil {
							t.Errorf("Acquire: %v", err)
						}
						if ok {
							got.Add(1)
						}
					})
				}
			}
			wg.Wait()
			if got.Load() != limit {
				t.Errorf("%d of %d workers got a slot, want exactly %d", got.Load(), workers, limit)
			}
		})
	}
}
