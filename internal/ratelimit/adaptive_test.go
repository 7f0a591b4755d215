package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestAdaptive(b *backend, opts AdaptiveOptions) *Adaptive {
	opts.hooks = b.hooks
	return NewAdaptive(b.rdb, opts)
}

func TestAdaptiveDecreaseAndRecovery(t *testing.T) {
	configured := Limit{Rate: 100, Burst: 10}
	eachBackend(t, func(t *testing.T, b *backend) {
		m := NewMetrics(prometheus.NewPedanticRegistry())
		podA := newTestAdaptive(b, AdaptiveOptions{Metrics: m}) // defaults: ×0.5, 60 s cool-down, +10% per 5 s
		podB := newTestAdaptive(b, AdaptiveOptions{})
		ctx := context.Background()
		effective := func(a *Adaptive) Limit {
			t.Helper()
			lim, err := a.Effective(ctx, testKey, configured)
			if err != nil {
				t.Fatalf("Effective: %v", err)
			}
			return lim
		}
		decrease := func(a *Adaptive) {
			t.Helper()
			if err := a.Decrease(ctx, testKey, configured); err != nil {
				t.Fatalf("Decrease: %v", err)
			}
		}
		start := b.clock.Now()
		at := func(d time.Duration) { t.Helper(); b.clock.Advance(start.Add(d).Sub(b.clock.Now())) }

		if got := effective(podA); got != configured {
			t.Fatalf("Effective before any rate reply = %v, want %v", got, configured)
		}
		decrease(podA)
		steps := []struct {
			at   time.Duration
			want Limit
		}{
			{0, Limit{50, 5}},
			{59 * time.Second, Limit{50, 5}},   // cool-down
			{60 * time.Second, Limit{60, 6}},   // first step
			{64 * time.Second, Limit{60, 6}},   //
			{65 * time.Second, Limit{70, 7}},   // one step per 5 s
			{80 * time.Second, Limit{100, 10}}, // back at the cap
			{time.Hour, Limit{100, 10}},
		}
		for _, s := range steps {
			at(s.at)
			if got := effective(podB); got != s.want { // the other pod sees it too
				t.Errorf("Effective %v after the decrease = %v, want %v", s.at, got, s.want)
			}
		}
		if got := testutil.ToFloat64(m.configured); got != 100 {
			t.Errorf("configured rate gauge = %v, want 100", got)
		}
		if got := testutil.ToFloat64(m.effective); got != 50 {
			t.Errorf("effective rate gauge of pod A = %v, want 50 (its last reading)", got)
		}
	})
}

func TestAdaptiveHoldOffAndFloor(t *testing.T) {
	configured := Limit{Rate: 100, Burst: 1}
	eachBackend(t, func(t *testing.T, b *backend) {
		var logs bytes.Buffer
		a := newTestAdaptive(b, AdaptiveOptions{Floor: 0.15, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		ctx := context.Background()
		for i, want := range []float64{50, 50, 25, 25, 15, 15} { // a reply every 500 ms
			if err := a.Decrease(ctx, testKey, configured); err != nil {
				t.Fatalf("Decrease: %v", err)
			}
			lim, err := a.Effective(ctx, testKey, configured)
			if err != nil {
				t.Fatalf("Effective: %v", err)
			}
			if lim.Rate != want || lim.Burst != 1 {
				t.Errorf("after reply %d: Effective = %v, want %v/s burst 1", i, lim, want)
			}
			b.clock.Advance(500 * time.Millisecond)
		}
		if n := strings.Count(logs.String(), "call rate lowered"); n != 3 {
			t.Errorf("logged %d decreases, want 3 (to 50, 25 and 15):\n%s", n, logs.String())
		}
		// The state expires once the rate would be back at the cap.
		ttl, err := b.rdb.PTTL(ctx, aimdKey(DefaultKeyPrefix, testKey)).Result()
		if err != nil {
			t.Fatal(err)
		}
		// cool-down 60 s + ⌈(100−15)/10⌉ steps of 5 s + one step, from the last decrease.
		want := 60*time.Second + 45*time.Second + 5*time.Second
		if b.hooks.scriptNow {
			want += time.Hour // ttl_slack_ms: the test's clock is not the one Redis expires keys by
		}
		if ttl <= 0 || ttl > want {
			t.Errorf("TTL = %v, want at most %v", ttl, want)
		}
		if b.mr != nil {
			b.clock.Advance(2 * time.Minute)
			if b.mr.Exists(aimdKey(DefaultKeyPrefix, testKey)) {
				t.Error("state still there after recovery")
			}
		}
	})
}

func TestAdaptiveOptions(t *testing.T) {
	tests := []struct {
		name string
		o    AdaptiveOptions
		ok   bool
	}{
		{"defaults", AdaptiveOptions{}, true},
		{"factor 1", AdaptiveOptions{Factor: 1}, false},
		{"negative floor", AdaptiveOptions{Floor: -0.1}, false},
		{"step above 1", AdaptiveOptions{Step: 2}, false},
		{"negative cool-down", AdaptiveOptions{Cooldown: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
