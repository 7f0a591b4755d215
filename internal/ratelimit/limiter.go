package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Limit is a call rate shared by every process that uses the same key.
type Limit struct {
	Rate  float64 // calls per second, > 0
	Burst int     // calls that may start together, ≥ 1; 1 means strict spacing
}

// Validate reports whether the limit can be enforced.
func (l Limit) Validate() error {
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
		return fmt.Errorf("ratelimit: rate %v is not a positive number: %w", l.Rate, ErrInvalid)
	}
	if l.Burst < 1 {
		return fmt.Errorf("ratelimit: burst %d is below 1: %w", l.Burst, ErrInvalid)
	}
	return nil
}

// Interval is the emission interval 1/Rate, rounded up to a microsecond so that rounding only
// ever makes the limiter stricter.
func (l Limit) Interval() time.Duration {
	return time.Duration(l.intervalMicros()) * time.Microsecond
}

func (l Limit) intervalMicros() int64 {
	t := math.Ceil(1e6 / l.Rate)
	if t < 1 {
		return 1
	}
	return int64(t)
}

func (l Limit) String() string {
	return strconv.FormatFloat(l.Rate, 'g', -1, 64) + "/s burst " + strconv.Itoa(l.Burst)
}

// Priority orders the kinds of jobs that share one rate. The zero value is PriorityLow.
type Priority int

const (
	PriorityLow    Priority = iota // bulk
	PriorityNormal                 // notify, click2call
	PriorityHigh                   // verify
)

var priorityNames = [...]string{PriorityLow: "low", PriorityNormal: "normal", PriorityHigh: "high"}

func (p Priority) valid() bool { return p >= PriorityLow && p <= PriorityHigh }

func (p Priority) String() string {
	if !p.valid() {
		return "Priority(" + strconv.Itoa(int(p)) + ")"
	}
	return priorityNames[p]
}

// Result is the outcome of Allow or Wait.
type Result struct {
	Allowed bool
	// RetryAfter, when not Allowed, is how long until a token is expected at this priority,
	// given what has been handed out so far: a good delay for rescheduling the job.
	RetryAfter time.Duration
	// Remaining is how many more tokens this priority could take right now.
	Remaining int
}

// LimiterOptions configures a Limiter. The zero value works.
type LimiterOptions struct {
	KeyPrefix string       // default DefaultKeyPrefix
	Logger    *slog.Logger // nil: discard
	Metrics   *Metrics     // nil: no metrics
	// Reserve is the fraction of the burst that PriorityLow leaves for higher priorities
	// (PriorityNormal leaves half as much), rounded up to whole tokens and never more than
	// Burst−1. 0 reserves nothing; then only booking order favours PriorityHigh. In [0, 1).
	Reserve float64
	// LocalSmoothing puts an in-process x/time/rate limiter at the same rate in front of Redis.
	// It only saves Redis round trips once this process alone has used the whole budget; it
	// never grants a token by itself.
	LocalSmoothing bool

	hooks *testHooks
}

// Validate reports options that NewLimiter would have to correct.
func (o LimiterOptions) Validate() error {
	if !(o.Reserve >= 0 && o.Reserve < 1) {
		return fmt.Errorf("ratelimit: reserve %v outside [0, 1): %w", o.Reserve, ErrInvalid)
	}
	return nil
}

// Limiter is the global call rate: GCRA in Redis, shared by every process that uses the same
// Redis and key. See the package documentation for the algorithm and how priorities share it.
type Limiter struct {
	rdb     redis.UniversalClient
	prefix  string
	metrics *Metrics
	reserve float64
	hooks   *testHooks
	fail    *failure
	local   *localSmoother // nil unless LimiterOptions.LocalSmoothing

	// onGrant (tests only) sees every token granted: its priority, the script's now and the
	// wait until the token is due, both in µs on Redis' clock.
	onGrant func(p Priority, nowMicros, waitMicros int64)
}

// NewLimiter returns a Limiter on rdb. A Reserve outside [0, 1) is clamped (see Validate).
func NewLimiter(rdb redis.UniversalClient, opts LimiterOptions) *Limiter {
	l := &Limiter{
		rdb:     rdb,
		prefix:  prefixOrDefault(opts.KeyPrefix),
		metrics: opts.Metrics,
		reserve: math.Min(math.Max(opts.Reserve, 0), 0.99),
		hooks:   opts.hooks,
	}
	if math.IsNaN(opts.Reserve) {
		l.reserve = 0
	}
	log := orDiscard(opts.Logger).With("component", "ratelimit")
	if err := opts.Validate(); err != nil {
		log.Warn("limiter options corrected", "err", err, "reserve", l.reserve)
	}
	l.fail = newFailure(log, opts.Metrics, "limiter")
	if opts.LocalSmoothing {
		l.local = &localSmoother{m: make(map[string]*rate.Limiter)}
	}
	return l
}

// Allow takes a token for key at priority p if one is available now.
//
// On a Redis failure it returns Allowed=false and an error wrapping ErrUnavailable.
func (l *Limiter) Allow(ctx context.Context, key string, lim Limit, p Priority) (Result, error) {
	r, err := l.take(ctx, key, lim, p, 0)
	if err != nil {
		return Result{}, err
	}
	l.metrics.token(p, r.allowed)
	if !r.allowed {
		return Result{RetryAfter: r.wait}, nil
	}
	return Result{Allowed: true, Remaining: r.remaining}, nil
}

// Wait takes a token for key at priority p, waiting for at most maxWait (and never past ctx's
// deadline). If a token comes within that time Wait books it, sleeps until it is due and
// returns Allowed=true. Otherwise it returns at once with Allowed=false and RetryAfter, so the
// caller reschedules the job instead of holding a worker.
//
// PriorityHigh books as far ahead as maxWait allows; lower priorities book at most one emission
// interval ahead and poll until then, which keeps them from queueing in front of verify calls.
// If ctx ends while Wait sleeps on a booked token, the token is forfeited and ctx's error is
// returned.
func (l *Limiter) Wait(ctx context.Context, key string, lim Limit, p Priority, maxWait time.Duration) (Result, error) {
	maxWait = max(maxWait, 0)
	if d, ok := ctx.Deadline(); ok {
		maxWait = min(maxWait, max(time.Until(d), 0)) // fail fast, like x/time/rate's WaitN
	}
	start := l.hooks.timeNow()
	deadline := start.Add(maxWait)
	interval := lim.Interval()
	for {
		budget := max(deadline.Sub(l.hooks.timeNow()), 0)
		lookahead := budget
		if p != PriorityHigh {
			lookahead = min(lookahead, interval)
		}
		r, err := l.take(ctx, key, lim, p, lookahead)
		if err != nil {
			return Result{}, err
		}
		if r.allowed {
			if err := l.hooks.wait(ctx, r.wait); err != nil {
				return Result{}, fmt.Errorf("ratelimit: wait for booked token: %w", err)
			}
			l.metrics.token(p, true)
			l.metrics.waited(p, l.hooks.timeNow().Sub(start))
			return Result{Allowed: true, Remaining: r.remaining}, nil
		}
		if r.wait > budget {
			l.metrics.token(p, false)
			l.metrics.waited(p, l.hooks.timeNow().Sub(start))
			return Result{RetryAfter: r.wait}, nil
		}
		// A token is due within the budget but too far ahead for this priority to book:
		// come back when it can be booked (the local smoother's estimate is a full wait).
		pause := r.wait - lookahead
		if r.local {
			pause = r.wait
		}
		if err := l.hooks.wait(ctx, max(pause, time.Microsecond)); err != nil {
			return Result{}, fmt.Errorf("ratelimit: wait for token: %w", err)
		}
	}
}

// gcraScript takes one token from a GCRA bucket, now or booked up to a lookahead ahead.
//
//	KEYS[1]  the bucket: its theoretical arrival time TAT, in µs on Redis' clock: the instant
//	         it is full again. A missing key means full now; the TTL removes it right then.
//	ARGV[1]  T, the emission interval in µs (1/rate, rounded up).
//	ARGV[2]  limit in µs: how far ahead of now the schedule may already run for this request
//	         to be admitted: the GCRA tolerance (burst−1)·T minus this priority's reserve.
//	ARGV[3]  lookahead in µs: a token due within it is booked (0: only a token due now).
//	ARGV[4]  now in µs, or "" to read Redis TIME (tests pass their own clock).
//
// It returns {allowed, wait, remaining, now}. allowed=1: TAT moved on by T and the token may
// be used after wait µs (0: at once); remaining is how many more this priority could take now.
// allowed=0: nothing changed; at this priority a token is due in wait µs.
var gcraScript = redis.NewScript(nowLua + gcraLua + `
local T = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local lookahead = tonumber(ARGV[3])
local now = clock(ARGV[4], 1000000)

local tat, wait = gcra_due(KEYS[1], limit, now)
if wait > lookahead then return {0, wait, 0, now} end
if wait < 0 then wait = 0 end
return {1, wait, gcra_book(KEYS[1], tat, T, limit, now), now}
`)

// gcraLua holds the GCRA steps that gcraScript and capacityScript share. Times are µs.
//
//	gcra_due(key, limit, now)          → TAT (never before now), and how long until a token is
//	                                     due at this priority's limit (≤ 0: now). Reads only.
//	gcra_book(key, tat, T, limit, now) → takes the token: TAT moves on by T. Returns how many
//	                                     more this priority could take now.
const gcraLua = `
local function gcra_due(key, limit, now)
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end            -- a full bucket does not save up more
  return tat, tat - now - limit              -- > 0: too early for this priority by that much
end
local function gcra_book(key, tat, T, limit, now)
  local newtat = tat + T
  redis.call('SET', key, newtat, 'PX', math.ceil((newtat - now) / 1000) + ttl_slack_ms)
  if newtat - now <= limit then return math.floor((limit - (newtat - now)) / T) + 1 end
  return 0
end
`

type takeReply struct {
	allowed   bool
	wait      time.Duration
	remaining int
	local     bool // refused by the local smoother, Redis not asked
}

// reserveTokens is how many tokens priority p must leave in the bucket for higher priorities.
func (l *Limiter) reserveTokens(burst int, p Priority) int {
	if l.reserve == 0 || p == PriorityHigh || burst < 2 {
		return 0
	}
	f := l.reserve
	if p == PriorityNormal {
		f /= 2
	}
	return min(int(math.Ceil(f*float64(burst)-1e-9)), burst-1) // 1e-9: 0.3×10 is 3.0000000000000004
}

func (l *Limiter) take(ctx context.Context, key string, lim Limit, p Priority, lookahead time.Duration) (takeReply, error) {
	if err := checkName("limiter key", key); err != nil {
		return takeReply{}, fmt.Errorf("ratelimit: allow: %w: %w", ErrInvalid, err)
	}
	if err := lim.Validate(); err != nil {
		return takeReply{}, fmt.Errorf("ratelimit: allow %s: %w", key, err)
	}
	if !p.valid() {
		return takeReply{}, fmt.Errorf("ratelimit: allow %s: priority %d: %w", key, int(p), ErrInvalid)
	}
	l.metrics.setEffectiveRate(lim.Rate)

	var local *rate.Limiter
	if l.local != nil {
		now := l.hooks.timeNow()
		local = l.local.get(key, lim, now)
		if tokens := local.TokensAt(now); tokens < 1 {
			return takeReply{wait: time.Duration((1 - tokens) / lim.Rate * float64(time.Second)), local: true}, nil
		}
	}

	t := lim.intervalMicros()
	limit := int64(lim.Burst-1-l.reserveTokens(lim.Burst, p)) * t
	v, err := runScript(ctx, l.rdb, gcraScript, []string{gcraKey(l.prefix, key)},
		t, limit, lookahead.Microseconds(), l.hooks.nowArg(time.Microsecond))
	if err != nil {
		return takeReply{}, l.fail.wrap(ctx, "ratelimit: allow "+key, err)
	}
	n, err := ints(v, 4)
	if err != nil {
		return takeReply{}, l.fail.wrap(ctx, "ratelimit: allow "+key, err)
	}
	r := takeReply{allowed: n[0] == 1, wait: time.Duration(n[1]) * time.Microsecond, remaining: int(n[2])}
	if r.allowed {
		if local != nil {
			local.ReserveN(l.hooks.timeNow(), 1)
		}
		if l.onGrant != nil {
			l.onGrant(p, n[3], n[1])
		}
	}
	return r, nil
}

// localSmoother holds one in-process limiter per key, kept at the key's current Limit.
type localSmoother struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func (s *localSmoother) get(key string, lim Limit, now time.Time) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[key]
	if !ok {
		r = rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst)
		s.m[key] = r
		return r
	}
	if r.Limit() != rate.Limit(lim.Rate) {
		r.SetLimitAt(now, rate.Limit(lim.Rate))
	}
	if r.Burst() != lim.Burst {
		r.SetBurstAt(now, lim.Burst)
	}
	return r
}
