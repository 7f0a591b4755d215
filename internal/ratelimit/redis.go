package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// ErrUnavailable is wrapped by every error caused by Redis being unreachable or failing. The
// policies fail closed: with this error no token, slot or callee check is granted, so the
// caller must not place the call (reschedule it instead).
var ErrUnavailable = errors.New("ratelimit: redis unavailable")

// ErrInvalid is wrapped by errors about arguments that can never succeed (a zero rate, an
// empty holder, a malformed name). Retrying does not help; it is a configuration or
// programming error.
var ErrInvalid = errors.New("ratelimit: invalid argument")

// ErrNotHeld is returned by Slots.Extend when the holder has no live lease (it expired or was
// released): the slot may already be someone else's.
var ErrNotHeld = errors.New("ratelimit: slot not held")

// testHooks lets tests control time. Production code never sets it: times then come from
// time.Now for waiting and from Redis TIME inside every script.
type testHooks struct {
	now   func() time.Time                                 // nil: time.Now
	sleep func(ctx context.Context, d time.Duration) error // nil: a timer that selects on ctx
	// scriptNow passes now() to the scripts instead of letting them read Redis TIME. The real
	// Redis suite uses it to run with a controlled clock; miniredis needs no such help because
	// its TIME follows (*miniredis.Miniredis).SetTime.
	scriptNow bool
}

func (h *testHooks) timeNow() time.Time {
	if h != nil && h.now != nil {
		return h.now()
	}
	return time.Now()
}

func (h *testHooks) wait(ctx context.Context, d time.Duration) error {
	if h != nil && h.sleep != nil {
		return h.sleep(ctx, d)
	}
	return sleepCtx(ctx, d)
}

// nowArg is the "now" argument of a script: empty (read Redis TIME) unless a test clock is
// passed in. unit is time.Microsecond or time.Millisecond.
func (h *testHooks) nowArg(unit time.Duration) string {
	if h == nil || !h.scriptNow {
		return ""
	}
	return strconv.FormatInt(h.timeNow().UnixNano()/int64(unit), 10)
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// nowLua is the preamble every script uses to learn the time: clock(arg, per_second) reads
// Redis' own clock, unless the caller passed a time in arg (tests only).
//
// A passed-in clock is not the one Redis expires keys by, so then every TTL gets ttl_slack_ms
// added, lest a key vanish early by Redis' clock while it is still live by the test's. The
// scripts never need a TTL for correctness (stale state reads as expired); TTLs only clean up.
//
// redis.replicate_commands() lets a script write after reading TIME on Redis < 5 (it is a
// no-op from 5 on, where effect replication is the default).
const nowLua = `
redis.replicate_commands()
local ttl_slack_ms = 0
local function clock(arg, per_second)
  if arg ~= nil and arg ~= '' then
    ttl_slack_ms = 3600000
    return tonumber(arg)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * per_second + math.floor(tonumber(t[2]) * per_second / 1000000)
end
`

// failure turns a Redis error into the package's error and reports it: once the caller's
// context has ended, the context's error is returned (the caller gave up, Redis may be fine);
// anything else, including a reply the script cannot have sent, wraps ErrUnavailable and is
// counted and logged, throttled.
type failure struct {
	log     *slog.Logger
	metrics *Metrics
	op      string
	every   rate.Sometimes
}

func newFailure(log *slog.Logger, m *Metrics, op string) *failure {
	return &failure{log: log, metrics: m, op: op, every: rate.Sometimes{First: 1, Interval: 30 * time.Second}}
}

func (f *failure) wrap(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	f.metrics.limiterError(f.op)
	f.every.Do(func() {
		f.log.Error("redis unavailable: failing closed", "op", f.op, "err", err)
	})
	return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
}

// ints converts a script's array reply of integers.
func ints(v any, n int) ([]int64, error) {
	arr, ok := v.([]any)
	if !ok || len(arr) != n {
		return nil, fmt.Errorf("unexpected script reply %v", v)
	}
	out := make([]int64, n)
	for i, x := range arr {
		xi, ok := x.(int64)
		if !ok {
			return nil, fmt.Errorf("unexpected script reply %v", v)
		}
		out[i] = xi
	}
	return out, nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// runScript runs s by its SHA, loading it first if Redis does not have it yet.
func runScript(ctx context.Context, rdb redis.Scripter, s *redis.Script, keys []string, args ...any) (any, error) {
	return s.Run(ctx, rdb, keys, args...).Result()
}
