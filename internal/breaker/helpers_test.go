package breaker

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// Test options: a small threshold and round cool-downs.
const (
	threshold   = 3
	cooldown    = 10 * time.Second
	maxCooldown = 40 * time.Second
	cacheTTL    = 100 * time.Millisecond
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// backend is a Redis the behaviour suite runs on. advance moves the breakers' clock and ages the
// keys' TTLs by the same amount.
type backend struct {
	rdb   *redis.Client
	clock *fakeClock
	age   func(t *testing.T, d time.Duration)
}

func (b *backend) advance(t *testing.T, d time.Duration) {
	t.Helper()
	b.clock.advance(d)
	b.age(t, d)
}

// backends: miniredis ages keys with FastForward; the real server's clock can't be moved, so
// every key's PTTL is shortened by d (deleted when it would have expired).
var backends = []struct {
	name string
	open func(t *testing.T) *backend
}{
	{"miniredis", func(t *testing.T) *backend {
		t.Helper()
		mr, rdb := testredis.Mini(t)
		return &backend{rdb: rdb, clock: &fakeClock{t: epoch}, age: func(_ *testing.T, d time.Duration) { mr.FastForward(d) }}
	}},
	{"redis", func(t *testing.T) *backend {
		t.Helper()
		_, rdb := testredis.Real(t)
		return &backend{rdb: rdb, clock: &fakeClock{t: epoch}, age: func(t *testing.T, d time.Duration) { ageKeys(t, rdb, d) }}
	}},
}

func eachBackend(t *testing.T, f func(t *testing.T, bk *backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

func ageKeys(t *testing.T, rdb *redis.Client, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("pttl %s: %v", k, err)
		}
		switch {
		case ttl < 0:
		case ttl <= d:
			err = rdb.Del(ctx, k).Err()
		default:
			err = rdb.PExpire(ctx, k, ttl-d).Err()
		}
		if err != nil {
			t.Fatalf("age %s: %v", k, err)
		}
	}
}

// newBreaker is one "worker" on the backend's Redis.
func (b *backend) newBreaker(o Options) *Breaker {
	return newTestBreaker(b.rdb, b.clock, o)
}

func newTestBreaker(rdb redis.UniversalClient, clock *fakeClock, o Options) *Breaker {
	if o.Threshold == 0 {
		o.Threshold = threshold
	}
	if o.Cooldown == 0 {
		o.Cooldown = cooldown
	}
	if o.MaxCooldown == 0 {
		o.MaxCooldown = maxCooldown
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = cacheTTL
	}
	o.Now = clock.Now
	return New(rdb, o)
}

func fail(b *Breaker, n int) {
	for range n {
		b.Failure(context.Background())
	}
}

// mustAllow asserts Allow's answer; a refusal's retryAfter must be in (wantWait-1s, wantWait]
// (the real server's TTLs move on in real time).
func mustAllow(t *testing.T, b *Breaker, want bool, wantWait time.Duration) {
	t.Helper()
	ok, wait := b.Allow(context.Background())
	if ok != want {
		t.Fatalf("Allow = %v (retry after %v), want %v; state %s", ok, wait, want, b.State())
	}
	if ok && wait != 0 {
		t.Errorf("Allow = true with retryAfter %v", wait)
	}
	if !ok && (wait > wantWait || wait <= wantWait-time.Second) {
		t.Errorf("retryAfter = %v, want about %v", wait, wantWait)
	}
}

func mustState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("State = %s, want %s", got, want)
	}
}

// deadRedis is a client for an address where nothing listens.
func deadRedis(t *testing.T) *redis.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// messages returns the logged messages that contain substr.
func (h *logRecorder) messages(substr string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.recs {
		if strings.Contains(r.Message, substr) {
			out = append(out, r)
		}
	}
	return out
}

func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}
