package ratelimit

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// epoch is where every controlled clock starts: a Saturday, on no DST boundary.
var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a controlled clock. Sleeping on it advances it at once, so Wait's sleeps cost
// no real time. set, if not nil, mirrors every change (miniredis' SetTime).
type fakeClock struct {
	mu  sync.Mutex
	t   time.Time
	set func(time.Time)
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	if c.set != nil {
		c.set(c.t)
	}
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// backend is one Redis the behaviour suite runs on, with a controlled clock.
type backend struct {
	rdb   *redis.Client
	mr    *miniredis.Miniredis // nil on the real Redis
	clock *fakeClock
	hooks *testHooks
}

// backends are the Redis servers every behaviour test runs on:
//
//   - miniredis: the scripts read Redis TIME, which follows mr.SetTime (TestMiniredisTimeFollowsSetTime);
//     ClockTTL makes key expiry follow the same clock.
//   - redis: the real server at REDIS_URL. Its clock cannot be moved, so the controlled time is
//     passed to the scripts as an argument (testHooks.scriptNow); the real-time tests
//     (TestLimiterNeverExceedsCap and others) cover the TIME path there.
var backends = []struct {
	name string
	open func(t *testing.T) *backend
}{
	{"miniredis", func(t *testing.T) *backend {
		t.Helper()
		mr, rdb := testredis.Mini(t)
		mr.SetTime(epoch)
		mr.ClockTTL(true)
		c := &fakeClock{t: epoch, set: mr.SetTime}
		return &backend{rdb: rdb, mr: mr, clock: c, hooks: &testHooks{now: c.Now, sleep: c.Sleep}}
	}},
	{"redis", func(t *testing.T) *backend {
		t.Helper()
		_, rdb := testredis.Real(t)
		c := &fakeClock{t: epoch}
		return &backend{rdb: rdb, clock: c, hooks: &testHooks{now: c.Now, sleep: c.Sleep, scriptNow: true}}
	}},
}

// eachBackend runs f as a subtest on every backend.
func eachBackend(t *testing.T, f func(t *testing.T, b *backend)) {
	t.Helper()
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) { f(t, bk.open(t)) })
	}
}

// realTimeBackends are the servers for tests on the real clock (the scripts read Redis TIME).
// open returns a function that makes a new client for each simulated pod.
var realTimeBackends = []struct {
	name string
	open func(t *testing.T) func() *redis.Client
}{
	{"miniredis", func(t *testing.T) func() *redis.Client {
		t.Helper()
		mr, _ := testredis.Mini(t)
		return func() *redis.Client { return newClient(t, &redis.Options{Addr: mr.Addr()}) }
	}},
	{"redis", func(t *testing.T) func() *redis.Client {
		t.Helper()
		opts, _ := testredis.Real(t)
		return func() *redis.Client { return newClient(t, opts) }
	}},
}

func newClient(t *testing.T, opts *redis.Options) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestMiniredisTimeFollowsSetTime(t *testing.T) {
	mr, rdb := testredis.Mini(t)
	ctx := context.Background()
	luaTime := func() time.Time {
		t.Helper()
		v, err := rdb.Eval(ctx, nowLua+"return clock(ARGV[1], 1000000)", nil, "").Int64()
		if err != nil {
			t.Fatalf("eval: %v", err)
		}
		return time.UnixMicro(v).UTC()
	}
	mr.SetTime(epoch)
	if got := luaTime(); !got.Equal(epoch) {
		t.Fatalf("TIME in Lua after SetTime = %v, want %v", got, epoch)
	}
	mr.SetTime(epoch.Add(1500 * time.Microsecond))
	if got := luaTime(); !got.Equal(epoch.Add(1500 * time.Microsecond)) {
		t.Fatalf("TIME in Lua after SetTime = %v, want %v", got, epoch.Add(1500*time.Microsecond))
	}
	// FastForward only ages TTLs: TIME stays put, which is why the suite moves time with SetTime.
	mr.FastForward(time.Hour)
	if got := luaTime(); !got.Equal(epoch.Add(1500 * time.Microsecond)) {
		t.Fatalf("TIME in Lua after FastForward = %v, want it unchanged", got)
	}
}

// checkKeys asserts that every key in the database has a TTL and exactly one hash tag.
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
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("pttl %s: %v", k, err)
		}
		if ttl <= 0 {
			t.Errorf("key %s has no TTL (%v)", k, ttl)
		}
		if strings.Count(k, "{") != 1 || strings.Count(k, "}") != 1 || strings.Index(k, "{") > strings.Index(k, "}") {
			t.Errorf("key %s does not have exactly one hash tag", k)
		}
	}
}
