package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// SlotsOptions configures Slots. The zero value works.
type SlotsOptions struct {
	KeyPrefix string       // default DefaultKeyPrefix
	Logger    *slog.Logger // nil: discard
	Metrics   *Metrics     // nil: no metrics
	// MaxRetryAfter caps the retry hint of a refused Acquire (default 1 s). Without it the hint
	// would be the earliest lease expiry, minutes away, while calls usually end much sooner.
	MaxRetryAfter time.Duration

	hooks *testHooks
}

// Slots is the concurrent-call cap: a number of slots per key, each held by a holder (the job
// ID) under a lease, shared by every process through Redis.
type Slots struct {
	rdb      redis.UniversalClient
	prefix   string
	metrics  *Metrics
	maxRetry time.Duration
	hooks    *testHooks
	fail     *failure
}

// NewSlots returns Slots on rdb.
func NewSlots(rdb redis.UniversalClient, opts SlotsOptions) *Slots {
	s := &Slots{
		rdb:      rdb,
		prefix:   prefixOrDefault(opts.KeyPrefix),
		metrics:  opts.Metrics,
		maxRetry: opts.MaxRetryAfter,
		hooks:    opts.hooks,
	}
	if s.maxRetry <= 0 {
		s.maxRetry = time.Second
	}
	s.fail = newFailure(orDiscard(opts.Logger).With("component", "ratelimit"), opts.Metrics, "slots")
	return s
}

// slotsLua holds the steps every slots script shares (capacityScript too). Times are ms.
//
//	slots_purge(key, now)                 drops expired leases (score ≤ now).
//	slots_expire(key, now)                sets the key's TTL to its latest lease.
//	slots_check(key, holder, limit, now)  purges, then → held (the holder's lease or false),
//	                                      slots in use, and when every slot is taken and the
//	                                      holder has none, ms until the earliest lease ends.
//	slots_hold(key, holder, held, n, lease, now)  takes or renews the holder's slot → in use.
const slotsLua = `
local function slots_purge(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
end
local function slots_expire(key, now)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIRE', key, tonumber(last[2]) - now + ttl_slack_ms) end
end
local function slots_check(key, holder, limit, now)
  slots_purge(key, now)
  local held = redis.call('ZSCORE', key, holder)
  local n = redis.call('ZCARD', key)
  if not held and n >= limit then
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return held, n, tonumber(first[2]) - now
  end
  return held, n, nil
end
local function slots_hold(key, holder, held, n, lease, now)
  redis.call('ZADD', key, now + lease, holder)
  slots_expire(key, now)
  if not held then return n + 1 end
  return n
end
`

// acquireScript takes a slot, or renews the holder's lease if it already has one.
//
//	KEYS[1]  the slots: a sorted set, member = holder, score = lease expiry in ms (Redis clock).
//	         Its TTL is the latest lease, so the key goes when the last lease has run out.
//	ARGV[1]  holder   ARGV[2] limit   ARGV[3] lease in ms   ARGV[4] now in ms or "" (Redis TIME)
//
// It returns {ok, retry ms, slots in use}; when refused, retry is when the earliest lease ends.
var acquireScript = redis.NewScript(nowLua + slotsLua + `
local now = clock(ARGV[4], 1000)
local held, n, full = slots_check(KEYS[1], ARGV[1], tonumber(ARGV[2]), now)
if full then return {0, full, n} end
return {1, 0, slots_hold(KEYS[1], ARGV[1], held, n, tonumber(ARGV[3]), now)}
`)

// extendScript renews a live lease.
//
//	KEYS[1]  the slots (see acquireScript)
//	ARGV[1]  holder   ARGV[2] lease in ms   ARGV[3] now in ms or "" (Redis TIME)
//
// It returns {renewed, slots in use}; renewed=0 when the holder has no live lease.
var extendScript = redis.NewScript(nowLua + slotsLua + `
local now = clock(ARGV[3], 1000)
slots_purge(KEYS[1], now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {0, redis.call('ZCARD', KEYS[1])} end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
slots_expire(KEYS[1], now)
return {1, redis.call('ZCARD', KEYS[1])}
`)

// releaseScript gives a slot back (a no-op if the holder has none).
//
//	KEYS[1]  the slots (see acquireScript)
//	ARGV[1]  holder   ARGV[2] now in ms or "" (Redis TIME)
//
// It returns {released, slots in use}; released=0 when the lease had expired or never existed.
var releaseScript = redis.NewScript(nowLua + slotsLua + `
local now = clock(ARGV[2], 1000)
slots_purge(KEYS[1], now)
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
return {removed, redis.call('ZCARD', KEYS[1])}
`)

// inUseScript counts live leases.
//
//	KEYS[1]  the slots (see acquireScript)
//	ARGV[1]  now in ms or "" (Redis TIME)
//
// It returns {slots in use}.
var inUseScript = redis.NewScript(nowLua + slotsLua + `
local now = clock(ARGV[1], 1000)
slots_purge(KEYS[1], now)
return {redis.call('ZCARD', KEYS[1])}
`)

// Acquire takes one of limit slots for holder, leased for lease. Acquiring again with the same
// holder renews its lease and succeeds even if the limit has since been lowered. When every
// slot is taken, ok is false and retryAfter says when to try again (at most
// SlotsOptions.MaxRetryAfter). On a Redis failure ok is false and err wraps ErrUnavailable.
func (s *Slots) Acquire(ctx context.Context, key, holder string, limit int, lease time.Duration) (ok bool, retryAfter time.Duration, err error) {
	if err := s.check(key, holder, lease); err != nil {
		return false, 0, fmt.Errorf("ratelimit: acquire slot: %w", err)
	}
	if limit < 1 {
		return false, 0, fmt.Errorf("ratelimit: acquire slot: limit %d below 1: %w", limit, ErrInvalid)
	}
	n, err := s.run(ctx, "ratelimit: acquire slot", acquireScript, 3, key, holder, limit, leaseMillis(lease), s.hooks.nowArg(time.Millisecond))
	if err != nil {
		return false, 0, err
	}
	s.metrics.setInFlight(n[2])
	if n[0] == 1 {
		return true, 0, nil
	}
	return false, min(max(time.Duration(n[1])*time.Millisecond, time.Millisecond), s.maxRetry), nil
}

// Extend renews holder's lease to lease from now. It returns ErrNotHeld if the holder has no
// live lease: the slot has expired or been released and may be someone else's by now.
func (s *Slots) Extend(ctx context.Context, key, holder string, lease time.Duration) error {
	if err := s.check(key, holder, lease); err != nil {
		return fmt.Errorf("ratelimit: extend slot: %w", err)
	}
	n, err := s.run(ctx, "ratelimit: extend slot", extendScript, 2, key, holder, leaseMillis(lease), s.hooks.nowArg(time.Millisecond))
	if err != nil {
		return err
	}
	s.metrics.setInFlight(n[1])
	if n[0] == 0 {
		return fmt.Errorf("ratelimit: extend slot of %s: %w", holder, ErrNotHeld)
	}
	return nil
}

// Release gives holder's slot back. released is false when there was nothing to release (the
// lease had expired, or it was released before): releasing is idempotent.
func (s *Slots) Release(ctx context.Context, key, holder string) (released bool, err error) {
	if err := s.check(key, holder, time.Millisecond); err != nil {
		return false, fmt.Errorf("ratelimit: release slot: %w", err)
	}
	n, err := s.run(ctx, "ratelimit: release slot", releaseScript, 2, key, holder, s.hooks.nowArg(time.Millisecond))
	if err != nil {
		return false, err
	}
	s.metrics.setInFlight(n[1])
	return n[0] == 1, nil
}

// InUse counts the slots held under live leases.
func (s *Slots) InUse(ctx context.Context, key string) (int, error) {
	if err := checkName("slots key", key); err != nil {
		return 0, fmt.Errorf("ratelimit: count slots: %w: %w", ErrInvalid, err)
	}
	n, err := s.run(ctx, "ratelimit: count slots", inUseScript, 1, key, s.hooks.nowArg(time.Millisecond))
	if err != nil {
		return 0, err
	}
	s.metrics.setInFlight(n[0])
	return int(n[0]), nil
}

func (s *Slots) check(key, holder string, lease time.Duration) error {
	if err := checkName("slots key", key); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if holder == "" {
		return fmt.Errorf("empty holder: %w", ErrInvalid)
	}
	if lease < time.Millisecond {
		return fmt.Errorf("lease %v below 1ms: %w", lease, ErrInvalid)
	}
	return nil
}

func (s *Slots) run(ctx context.Context, what string, script *redis.Script, replyLen int, key string, args ...any) ([]int64, error) {
	v, err := runScript(ctx, s.rdb, script, []string{slotsKey(s.prefix, key)}, args...)
	if err != nil {
		return nil, s.fail.wrap(ctx, what, err)
	}
	n, err := ints(v, replyLen)
	if err != nil {
		return nil, s.fail.wrap(ctx, what, err)
	}
	return n, nil
}

// leaseMillis rounds a lease up to whole milliseconds.
func leaseMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
