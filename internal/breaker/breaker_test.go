package breaker

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

func TestTripsAfterThreshold(t *testing.T) {
	tests := []struct {
		name     string
		reports  string // F failure, S success
		wantOpen bool
	}{
		{"below the threshold", "FF", false},
		{"at the threshold", "FFF", true},
		{"a success resets the count", "FFSFF", false},
		{"a run after a success", "FFSFFF", true},
		{"many successes", "SSSS", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, bk *backend) {
				a, b := bk.newBreaker(Options{}), bk.newBreaker(Options{})
				for _, r := range tt.reports {
					if r == 'F' {
						a.Failure(context.Background())
					} else {
						a.Success(context.Background())
					}
				}
				if !tt.wantOpen {
					mustState(t, a, StateClosed)
					mustAllow(t, a, true, 0)
					mustAllow(t, b, true, 0)
					return
				}
				mustState(t, a, StateOpen)
				mustAllow(t, a, false, cooldown)
				// The other worker reads the shared state: paused too.
				mustAllow(t, b, false, cooldown)
				mustState(t, b, StateOpen)
				bk.advance(t, 4*time.Second)
				mustAllow(t, b, false, cooldown-4*time.Second)
				checkKeys(t, bk.rdb)
			})
		})
	}
}

// Half-open: of two workers sharing Redis exactly one gets the probe; its success closes the
// breaker for both.
func TestHalfOpenSingleProbeAcrossWorkers(t *testing.T) {
	eachBackend(t, func(t *testing.T, bk *backend) {
		a, b := bk.newBreaker(Options{}), bk.newBreaker(Options{})
		fail(a, threshold)
		mustAllow(t, b, false, cooldown)
		bk.advance(t, cooldown)

		mustAllow(t, b, true, 0) // b takes the probe
		mustState(t, b, StateHalfOpen)
		mustAllow(t, a, false, cooldown) // a waits for the probe's window
		mustState(t, a, StateHalfOpen)
		mustAllow(t, b, false, cooldown) // one probe, even for its holder
		bk.advance(t, cacheTTL)
		mustAllow(t, a, false, cooldown-cacheTTL)

		b.Success(context.Background())
		mustState(t, b, StateClosed)
		mustAllow(t, b, true, 0)
		bk.advance(t, cacheTTL) // a's cached view expires
		mustAllow(t, a, true, 0)
		mustState(t, a, StateClosed)
		if n, err := bk.rdb.Exists(context.Background(), newKeys(DefaultKey).all()...).Result(); err != nil || n != 0 {
			t.Errorf("%d breaker keys left after closing (%v), want 0", n, err)
		}
	})
}

// A probe that is never reported (its worker died) frees the slot after one cool-down.
func TestAbandonedProbeExpires(t *testing.T) {
	eachBackend(t, func(t *testing.T, bk *backend) {
		a, b := bk.newBreaker(Options{}), bk.newBreaker(Options{})
		fail(a, threshold)
		bk.advance(t, cooldown)
		mustAllow(t, a, true, 0) // a's probe, never reported
		mustAllow(t, b, false, cooldown)
		bk.advance(t, cooldown)
		mustAllow(t, b, true, 0)
	})
}

func TestFailedProbeDoublesCooldown(t *testing.T) {
	eachBackend(t, func(t *testing.T, bk *backend) {
		workers := []*Breaker{bk.newBreaker(Options{}), bk.newBreaker(Options{})}
		fail(workers[0], threshold)
		// Each round: the cool-down passes, a worker probes and fails, the other sees the new
		// cool-down. Capped at maxCooldown.
		rounds := []struct {
			before, after time.Duration
		}{
			{cooldown, 2 * cooldown},
			{2 * cooldown, 4 * cooldown},
			{4 * cooldown, maxCooldown},
			{maxCooldown, maxCooldown},
		}
		for i, r := range rounds {
			prober, other := workers[i%2], workers[(i+1)%2]
			bk.advance(t, r.before)
			mustAllow(t, prober, true, 0)
			prober.Failure(context.Background())
			mustState(t, prober, StateOpen)
			mustAllow(t, prober, false, r.after)
			bk.advance(t, cacheTTL)
			mustAllow(t, other, false, r.after-cacheTTL)
			mustState(t, other, StateOpen)
		}
		// Recovery resets the cool-down.
		bk.advance(t, maxCooldown)
		mustAllow(t, workers[0], true, 0)
		workers[0].Success(context.Background())
		mustState(t, workers[0], StateClosed)
		fail(workers[0], threshold)
		mustAllow(t, workers[0], false, cooldown)
	})
}

// Reports from calls admitted before the breaker opened change nothing while it is open.
func TestReportsWhileOpenIgnored(t *testing.T) {
	eachBackend(t, func(t *testing.T, bk *backend) {
		a, b := bk.newBreaker(Options{}), bk.newBreaker(Options{})
		fail(a, threshold)
		mustAllow(t, b, false, cooldown)
		bk.advance(t, time.Second)
		a.Success(context.Background())
		b.Success(context.Background())
		fail(a, 5)
		fail(b, 5)
		mustState(t, a, StateOpen)
		mustAllow(t, a, false, cooldown-time.Second)
		bk.advance(t, cacheTTL)
		mustAllow(t, b, false, cooldown-time.Second-cacheTTL)
	})
}

// A worker still closed in its own view that reaches the threshold while another already opened
// the breaker adopts the shared cool-down instead of restarting it.
func TestLateTripAdoptsSharedCooldown(t *testing.T) {
	eachBackend(t, func(t *testing.T, bk *backend) {
		a, b := bk.newBreaker(Options{}), bk.newBreaker(Options{})
		mustAllow(t, b, true, 0)
		fail(a, threshold)
		bk.advance(t, 3*time.Second)
		fail(b, threshold)
		mustState(t, b, StateOpen)
		mustAllow(t, b, false, cooldown-3*time.Second)
	})
}

func TestRedisUnreachableFallsBackToLocal(t *testing.T) {
	tests := []struct {
		name string
		rdb  func(t *testing.T) redis.UniversalClient
	}{
		{"nothing listening", func(t *testing.T) redis.UniversalClient { return deadRedis(t) }},
		{"server stopped", func(t *testing.T) redis.UniversalClient {
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1})
			t.Cleanup(func() { _ = rdb.Close() })
			mr.Close()
			return rdb
		}},
		{"no Redis configured", func(*testing.T) redis.UniversalClient { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: epoch}
			logs := &logRecorder{}
			b := newTestBreaker(tt.rdb(t), clock, Options{Logger: slog.New(logs)})
			mustAllow(t, b, true, 0)
			fail(b, threshold)
			mustAllow(t, b, false, cooldown)
			clock.advance(cooldown)
			mustAllow(t, b, true, 0) // the local probe
			mustState(t, b, StateHalfOpen)
			mustAllow(t, b, false, cooldown)
			b.Failure(context.Background())
			mustAllow(t, b, false, 2*cooldown)
			clock.advance(2 * cooldown)
			mustAllow(t, b, true, 0)
			b.Success(context.Background())
			mustState(t, b, StateClosed)
			mustAllow(t, b, true, 0)
			want := 1
			if tt.name == "no Redis configured" {
				want = 0
			}
			if got := len(logs.messages("Redis unreachable")); got != want {
				t.Errorf("%d warnings about Redis, want %d (once per outage)", got, want)
			}
		})
	}
}

// Redis goes away while the breaker is open and comes back: the process keeps its own state
// meanwhile and then follows Redis again.
func TestRedisOutageAndRecovery(t *testing.T) {
	mr, rdb := testredis.Mini(t)
	clock := &fakeClock{t: epoch}
	logs := &logRecorder{}
	a := newTestBreaker(rdb, clock, Options{Logger: slog.New(logs)})
	b := newTestBreaker(rdb, clock, Options{Logger: slog.New(logs)})
	fail(a, threshold)
	mr.Close()
	mustAllow(t, a, false, cooldown) // local open, no Redis needed
	mustAllow(t, b, true, 0)         // b never heard: it falls back to its own (closed) state
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	mr.FastForward(cacheTTL)
	clock.advance(cacheTTL)
	mustAllow(t, b, false, cooldown-cacheTTL) // the trip survived in Redis
	if got := len(logs.messages("reachable again")); got != 1 {
		t.Errorf("%d 'reachable again' lines, want 1", got)
	}
}

func TestTransitionsLogged(t *testing.T) {
	mr, rdb := testredis.Mini(t)
	bk := &backend{rdb: rdb, clock: &fakeClock{t: epoch}, age: func(_ *testing.T, d time.Duration) { mr.FastForward(d) }}
	logs := &logRecorder{}
	b := bk.newBreaker(Options{Logger: slog.New(logs)})
	fail(b, threshold)
	bk.advance(t, cooldown)
	b.Allow(context.Background())
	b.Failure(context.Background())
	bk.advance(t, 2*cooldown)
	b.Allow(context.Background())
	b.Success(context.Background())

	type line struct {
		level slog.Level
		msg   string
	}
	want := []line{
		{slog.LevelWarn, "provider circuit breaker open"},
		{slog.LevelInfo, "provider circuit breaker half-open"},
		{slog.LevelWarn, "provider circuit breaker open"},
		{slog.LevelInfo, "provider circuit breaker half-open"},
		{slog.LevelInfo, "provider circuit breaker closed"},
	}
	got := logs.messages("circuit breaker")
	if len(got) != len(want) {
		for _, r := range got {
			t.Logf("%s %s", r.Level, r.Message)
		}
		t.Fatalf("%d transition lines, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Level != w.level || !strings.HasPrefix(got[i].Message, w.msg) {
			t.Errorf("line %d = %s %q, want %s %q…", i, got[i].Level, got[i].Message, w.level, w.msg)
		}
	}
	first := got[0]
	if v := attr(first, "cooldown"); v.Duration() != cooldown {
		t.Errorf("first open line cooldown = %v, want %v", v, cooldown)
	}
	if v := attr(first, "consecutive_failures"); v.Int64() != threshold {
		t.Errorf("first open line consecutive_failures = %v, want %d", v, threshold)
	}
	if v := attr(got[2], "cause"); v.String() != "probe call failed" {
		t.Errorf("second open line cause = %q", v.String())
	}
	if v := attr(got[2], "cooldown"); v.Duration() != 2*cooldown {
		t.Errorf("second open line cooldown = %v, want %v", v, 2*cooldown)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	mr, rdb := testredis.Mini(t)
	bk := &backend{rdb: rdb, clock: &fakeClock{t: epoch}, age: func(_ *testing.T, d time.Duration) { mr.FastForward(d) }}
	b := bk.newBreaker(Options{Metrics: m})
	check := func(step string, open, half, closed, toOpen, toHalf, toClosed, rejections float64) {
		t.Helper()
		vals := []struct {
			name      string
			got, want float64
		}{
			{"state{open}", testutil.ToFloat64(m.state.WithLabelValues("open")), open},
			{"state{half_open}", testutil.ToFloat64(m.state.WithLabelValues("half_open")), half},
			{"state{closed}", testutil.ToFloat64(m.state.WithLabelValues("closed")), closed},
			{"transitions{open}", testutil.ToFloat64(m.transitions.WithLabelValues("open")), toOpen},
			{"transitions{half_open}", testutil.ToFloat64(m.transitions.WithLabelValues("half_open")), toHalf},
			{"transitions{closed}", testutil.ToFloat64(m.transitions.WithLabelValues("closed")), toClosed},
			{"rejections", testutil.ToFloat64(m.rejections), rejections},
		}
		for _, v := range vals {
			if v.got != v.want {
				t.Errorf("%s: %s = %v, want %v", step, v.name, v.got, v.want)
			}
		}
	}
	check("new", 0, 0, 1, 0, 0, 0, 0)
	fail(b, threshold)
	b.Allow(context.Background())
	b.Allow(context.Background())
	check("tripped", 1, 0, 0, 1, 0, 0, 2)
	bk.advance(t, cooldown)
	b.Allow(context.Background())
	check("probing", 0, 1, 0, 1, 1, 0, 2)
	b.Success(context.Background())
	check("closed", 0, 0, 1, 1, 1, 1, 2)
	if n := testutil.CollectAndCount(m.state); n != 3 {
		t.Errorf("%d state series, want 3", n)
	}
}

// Many goroutines in two workers report and ask at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	eachBackend(t, func(t *testing.T, bk *backend) {
		workers := []*Breaker{bk.newBreaker(Options{}), bk.newBreaker(Options{})}
		var wg sync.WaitGroup
		for g := range 16 {
			w := workers[g%2]
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 1))
				for range 50 {
					if ok, _ := w.Allow(context.Background()); !ok {
						continue
					}
					if r.IntN(3) == 0 {
						w.Success(context.Background())
					} else {
						w.Failure(context.Background())
					}
				}
			})
		}
		wg.Wait()
		// Whatever happened, a run of failures leaves both workers paused.
		bk.advance(t, maxCooldown+cacheTTL)
		for _, w := range workers {
			if ok, _ := w.Allow(context.Background()); ok && w.State() == StateHalfOpen {
				w.Failure(context.Background())
			} else if ok {
				fail(w, threshold)
			}
		}
		bk.advance(t, cacheTTL)
		for i, w := range workers {
			if ok, _ := w.Allow(context.Background()); ok {
				t.Errorf("worker %d allowed after the failures (state %s)", i, w.State())
			}
		}
	})
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		wantErr bool
	}{
		{"zero: defaults", Options{}, false},
		{"explicit", Options{Key: "app-1", Threshold: 5, Cooldown: time.Second, MaxCooldown: time.Minute}, false},
		{"brace in key", Options{Key: "a{b}"}, true},
		{"negative threshold", Options{Threshold: -1}, true},
		{"negative cool-down", Options{Cooldown: -time.Second}, true},
		{"max below cool-down", Options{Cooldown: time.Minute, MaxCooldown: time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.o.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, want error %v", err, tt.wantErr)
			}
			b := New(nil, tt.o)
			if b.o.Threshold <= 0 || b.o.Cooldown <= 0 || b.o.MaxCooldown < b.o.Cooldown || strings.ContainsAny(b.o.Key, "{}") {
				t.Errorf("New kept invalid options: %+v", b.o)
			}
		})
	}
	d := New(nil, Options{})
	if d.o.Threshold != DefaultThreshold || d.o.Cooldown != DefaultCooldown || d.o.MaxCooldown != DefaultMaxCooldown || d.o.Key != DefaultKey {
		t.Errorf("defaults = %+v", d.o)
	}
}

// checkKeys asserts that every key has a TTL and exactly one hash tag.
func checkKeys(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	if len(keys) == 0 {
		t.Fatal("no keys written")
	}
	for _, k := range keys {
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Errorf("key %s: TTL %v (%v), want one", k, ttl, err)
		}
		if strings.Count(k, "{") != 1 || strings.Count(k, "}") != 1 {
			t.Errorf("key %s does not have exactly one hash tag", k)
		}
	}
}

func BenchmarkAllowClosed(b *testing.B) {
	_, rdb := testredis.Real(b)
	br := New(rdb, Options{})
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _ := br.Allow(ctx); !ok {
				b.Error("closed breaker refused")
				return
			}
		}
	})
}
