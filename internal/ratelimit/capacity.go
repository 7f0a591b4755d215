package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// CapacityOptions configures Capacity. The zero value works.
type CapacityOptions struct {
	KeyPrefix string       // default DefaultKeyPrefix
	Logger    *slog.Logger // nil: discard
	Metrics   *Metrics     // nil: no metrics
	// Reserve is the share of the burst that PriorityLow leaves for higher priorities (see
	// LimiterOptions.Reserve). In [0, 1).
	Reserve float64
	// Margin runs the rate that share under the effective rate, in [0, 0.5). Tokens are spaced
	// exactly in Redis, but the provider counts calls as they arrive, after delays that vary.
	Margin float64
	// Adaptive must match the options of the Adaptive that lowers the rate (only Step and Every
	// are read here: they say how the rate climbs back after a decrease).
	Adaptive AdaptiveOptions
	// SlotPoll is how often a claim that found every call slot taken looks again within its
	// wait (default 10 ms): calls end every few milliseconds at the account's cap.
	SlotPoll time.Duration

	hooks *testHooks
}

// Capacity takes what one call needs from the account's shared capacity — a token of the
// global rate and a concurrent-call slot — together, in one script and one round trip. It reads
// the rate that Adaptive has lowered in the same script. Taking both at once means a call never
// holds a slot while it waits for a token, and a token is never spent by a call that then waits
// for a slot: the call goes out right after its token is due, which is what keeps arrivals at
// the provider as evenly spaced as the tokens.
//
// The keys are Limiter's, Slots' and Adaptive's own (one hash tag), so Slots.Release frees a slot
// that Capacity took, and Adaptive.Decrease lowers the rate that Capacity enforces.
type Capacity struct {
	rdb     redis.UniversalClient
	prefix  string
	metrics *Metrics
	reserve float64
	margin  float64
	aimd    AdaptiveOptions
	poll    time.Duration
	hooks   *testHooks
	fail    *failure

	mu    sync.Mutex
	turns map[string]*turn
}

// turn lets one of a process's low- and normal-priority claims on a key ask Redis at a time;
// the others wait for it in the process. Without it every waiting worker would wake and run
// the script each time a token came due: scripts per call would grow with the number of
// workers, and their load would delay the calls themselves. PriorityHigh never waits for a turn.
type turn struct {
	ch   chan struct{}
	last atomic.Value // Shortage: what the last refused claim lacked
	// next is a lower bound of when this priority's next token is due, from the last script
	// reply (the bucket's schedule only ever moves on). The holder of the turn reads and writes
	// it; with it a claim that could not be served within its wait is refused without a script.
	next time.Time
}

func (c *Capacity) turn(key string) *turn {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.turns[key]
	if !ok {
		t = &turn{ch: make(chan struct{}, 1)}
		t.last.Store(ShortRate)
		c.turns[key] = t
	}
	return t
}

// wait takes the turn within maxWait; it reports false if the wait ran out first.
func (t *turn) wait(ctx context.Context, maxWait time.Duration) (bool, error) {
	select {
	case t.ch <- struct{}{}:
		return true, nil
	default:
	}
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	select {
	case t.ch <- struct{}{}:
		return true, nil
	case <-timer.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (t *turn) done(short Shortage) {
	if short != "" {
		t.last.Store(short)
	}
	<-t.ch
}

// NewCapacity returns a Capacity on rdb.
func NewCapacity(rdb redis.UniversalClient, opts CapacityOptions) (*Capacity, error) {
	if !(opts.Reserve >= 0 && opts.Reserve < 1) {
		return nil, fmt.Errorf("ratelimit: reserve %v outside [0, 1): %w", opts.Reserve, ErrInvalid)
	}
	if !(opts.Margin >= 0 && opts.Margin < 0.5) {
		return nil, fmt.Errorf("ratelimit: margin %v outside [0, 0.5): %w", opts.Margin, ErrInvalid)
	}
	if err := opts.Adaptive.Validate(); err != nil {
		return nil, err
	}
	if opts.SlotPoll <= 0 {
		opts.SlotPoll = 10 * time.Millisecond
	}
	log := orDiscard(opts.Logger).With("component", "ratelimit")
	return &Capacity{
		rdb:     rdb,
		prefix:  prefixOrDefault(opts.KeyPrefix),
		metrics: opts.Metrics,
		reserve: opts.Reserve,
		margin:  opts.Margin,
		aimd:    opts.Adaptive.withDefaults(),
		poll:    opts.SlotPoll,
		hooks:   opts.hooks,
		fail:    newFailure(log, opts.Metrics, "capacity"),
		turns:   make(map[string]*turn),
	}, nil
}

// Claim is what a call asks of the account's capacity.
type Claim struct {
	// Rate is the configured call rate; Rate.Rate 0 claims no token.
	Rate     Limit
	Priority Priority
	// Slots is the concurrent-call cap; 0 claims no slot. Holder (the job ID) holds the slot
	// for Lease, or until Slots.Release.
	Slots  int
	Holder string
	Lease  time.Duration
}

// Shortage names what a refused claim lacked.
type Shortage string

const (
	ShortRate  Shortage = "rate"  // no token within the wait
	ShortSlots Shortage = "slots" // every call slot stayed taken
)

// ClaimResult is Take's answer.
type ClaimResult struct {
	Allowed bool
	// Short and RetryAfter, when not Allowed: what was missing and when to try again (for a
	// token, when one is due at this priority; for a slot, a short poll interval).
	Short      Shortage
	RetryAfter time.Duration
	// Due, when Allowed with a rate, is when the booked token may be used, by this process's
	// clock: when the script was sent plus the wait it booked, so never later than the token's
	// true instant (the script ran after it was sent). Take does not sleep until then: the
	// caller does what it can before (record the dial) and starts the call at Due. The provider
	// counts calls as they arrive, so a call should also leave soon after Due, or it bunches
	// up with the calls after it.
	Due time.Time
}

// Take claims a rate token and a call slot for one call, waiting for at most maxWait (never past
// ctx's deadline). Both are taken in the same script, or neither: when the slots are full no
// token is spent, and the claim looks again every SlotPoll within maxWait. A token due within
// the wait is booked and its instant returned as ClaimResult.Due, which the caller waits for
// (PriorityHigh books as far ahead as maxWait, lower priorities one emission interval, as
// Limiter.Wait does). When nothing comes within maxWait it returns Allowed=false at once, so the
// caller reschedules the job instead of holding a worker. Within one Capacity, lower-priority
// claims on a key ask Redis one at a time (the others wait their turn in the process), so the
// scripts per call stay few however many workers wait.
//
// On a Redis failure it returns an error wrapping ErrUnavailable: fail closed, do not call.
func (c *Capacity) Take(ctx context.Context, key string, cl Claim, maxWait time.Duration) (ClaimResult, error) {
	if err := c.check(key, cl); err != nil {
		return ClaimResult{}, fmt.Errorf("ratelimit: claim capacity: %w", err)
	}
	if cl.Rate.Rate == 0 && cl.Slots == 0 {
		return ClaimResult{Allowed: true}, nil
	}
	maxWait = max(maxWait, 0)
	if d, ok := ctx.Deadline(); ok {
		maxWait = min(maxWait, max(time.Until(d), 0))
	}
	start := c.hooks.timeNow()
	if cl.Priority != PriorityHigh {
		t := c.turn(key + "\x00" + cl.Priority.String())
		ok, err := t.wait(ctx, maxWait)
		if err != nil {
			return ClaimResult{}, fmt.Errorf("ratelimit: wait for a turn: %w", err)
		}
		if !ok {
			// The workers ahead in this process used up the wait: capacity is short, of
			// whatever the last refusal lacked.
			short := t.last.Load().(Shortage)
			c.done(cl, start, c.hooks.timeNow(), false)
			return ClaimResult{Short: short, RetryAfter: maxWait}, nil
		}
		res, err := c.take(ctx, key, cl, start, start.Add(maxWait), t)
		t.done(res.Short)
		return res, err
	}
	return c.take(ctx, key, cl, start, start.Add(maxWait), nil)
}

// take runs the claim's script until it is granted, or refused for longer than deadline allows.
// t is the turn the caller holds (nil for PriorityHigh).
func (c *Capacity) take(ctx context.Context, key string, cl Claim, start, deadline time.Time, t *turn) (ClaimResult, error) {
	for {
		now := c.hooks.timeNow()
		budget := max(deadline.Sub(now), 0)
		lookahead := budget
		if cl.Priority != PriorityHigh && cl.Rate.Rate > 0 {
			lookahead = min(lookahead, Limit{Rate: cl.Rate.Rate * (1 - c.margin)}.Interval())
		}
		if t != nil && cl.Rate.Rate > 0 {
			// What the last reply said about the schedule, without asking Redis again.
			switch ahead := t.next.Sub(now); {
			case ahead > budget:
				c.done(cl, start, now, false)
				return ClaimResult{Short: ShortRate, RetryAfter: ahead}, nil
			case ahead > lookahead:
				if err := c.hooks.wait(ctx, ahead-lookahead); err != nil {
					return ClaimResult{}, fmt.Errorf("ratelimit: wait for capacity: %w", err)
				}
				continue
			}
		}
		sent := c.hooks.timeNow()
		r, err := c.run(ctx, key, cl, lookahead)
		if err != nil {
			return ClaimResult{}, err
		}
		if t != nil {
			t.next = sent.Add(r.next)
		}
		if r.allowed {
			res := ClaimResult{Allowed: true}
			if cl.Rate.Rate > 0 {
				res.Due = sent.Add(r.wait)
			}
			c.done(cl, start, sent.Add(r.wait), true)
			return res, nil
		}
		var pause time.Duration
		switch {
		case r.wait > budget:
			c.done(cl, start, c.hooks.timeNow(), false)
			return ClaimResult{Short: ShortRate, RetryAfter: r.wait}, nil
		case r.slotsFull:
			if budget < c.poll {
				c.done(cl, start, c.hooks.timeNow(), false)
				return ClaimResult{Short: ShortSlots, RetryAfter: c.poll}, nil
			}
			pause = c.poll
		default:
			// A token is due within the budget but too far ahead for this priority to book:
			// come back when it can be booked.
			pause = r.wait - lookahead
		}
		if err := c.hooks.wait(ctx, max(pause, time.Microsecond)); err != nil {
			return ClaimResult{}, fmt.Errorf("ratelimit: wait for capacity: %w", err)
		}
	}
}

func (c *Capacity) check(key string, cl Claim) error {
	if err := checkName("capacity key", key); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !cl.Priority.valid() {
		return fmt.Errorf("priority %d: %w", int(cl.Priority), ErrInvalid)
	}
	if cl.Rate.Rate != 0 {
		if err := cl.Rate.Validate(); err != nil {
			return err
		}
	}
	if cl.Slots < 0 {
		return fmt.Errorf("slot limit %d below 0: %w", cl.Slots, ErrInvalid)
	}
	if cl.Slots > 0 {
		if cl.Holder == "" {
			return fmt.Errorf("empty holder: %w", ErrInvalid)
		}
		if cl.Lease < time.Millisecond {
			return fmt.Errorf("lease %v below 1ms: %w", cl.Lease, ErrInvalid)
		}
	}
	return nil
}

// done records the end of one Take: the token's metrics (a claim without a rate counts no
// token) and the time it waited, until the token is due or until it gave up.
func (c *Capacity) done(cl Claim, start, end time.Time, granted bool) {
	if cl.Rate.Rate == 0 {
		return
	}
	c.metrics.token(cl.Priority, granted)
	c.metrics.waited(cl.Priority, end.Sub(start))
}

// capacityScript claims a rate token and a call slot together.
//
//	KEYS[1]  the slots (see acquireScript)   KEYS[2] the GCRA bucket (see gcraScript)
//	KEYS[3]  the AIMD state (see aimdScript)
//	ARGV[1]  configured rate (calls/s; "0": no token)   ARGV[2] configured burst
//	ARGV[3]  margin: the share under the effective rate that is enforced
//	ARGV[4]  reserve: the share of the burst this priority leaves to higher ones
//	ARGV[5]  AIMD step (calls/s)   ARGV[6] AIMD step period (ms)
//	ARGV[7]  lookahead (µs): a token due within it is booked
//	ARGV[8]  holder   ARGV[9] slot limit ("0": no slot)   ARGV[10] lease (ms)
//	ARGV[11] now in µs or "" (Redis TIME)
//
// The effective rate is Adaptive's (its burst shrinks in proportion, never below 1), times
// (1 − margin); the token follows gcraScript with that interval. It returns {allowed, wait µs,
// slots full (0/1), slots in use, remaining tokens, enforced rate as a string, next µs}.
// allowed=1: the token is booked (usable after wait) and the slot is held. allowed=0: nothing
// changed; wait is when a token is due at this priority (0 if now). next is when the token
// after this reply is due at this priority, as things stand (others can only push it later).
var capacityScript = redis.NewScript(nowLua + gcraLua + aimdLua + slotsLua + `
local cap, burst, margin, share = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lookahead, holder, slots = tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
local now_us = clock(ARGV[11], 1000000)
local now = math.floor(now_us / 1000)

local enforced, T, limit, tat, wait = 0, 0, 0, 0, 0
if cap > 0 then
  local eff = aimd_rate(KEYS[3], cap, tonumber(ARGV[5]), tonumber(ARGV[6]), now)
  if eff < cap then burst = math.max(1, math.floor(burst * eff / cap)) end
  enforced = eff * (1 - margin)
  T = math.max(1, math.ceil(1000000 / enforced))
  local reserve = 0
  if share > 0 and burst >= 2 then reserve = math.min(math.ceil(share * burst - 1e-9), burst - 1) end
  limit = (burst - 1 - reserve) * T
  tat, wait = gcra_due(KEYS[2], limit, now_us)
end
local held, n, full = false, 0, nil
if slots > 0 then held, n, full = slots_check(KEYS[1], holder, slots, now) end

if wait < 0 then wait = 0 end
if full or wait > lookahead then
  local f = 0
  if full then f = 1 end
  return {0, wait, f, n, 0, tostring(enforced), wait}
end
local remaining, nextwait = 0, 0
if cap > 0 then
  remaining = gcra_book(KEYS[2], tat, T, limit, now_us)
  nextwait = math.max(tat + T - now_us - limit, 0)
end
if slots > 0 then n = slots_hold(KEYS[1], holder, held, n, tonumber(ARGV[10]), now) end
return {1, wait, 0, n, remaining, tostring(enforced), nextwait}
`)

type capacityReply struct {
	allowed   bool
	wait      time.Duration
	slotsFull bool
	next      time.Duration // until the token after this reply is due at this priority
}

func (c *Capacity) run(ctx context.Context, key string, cl Claim, lookahead time.Duration) (capacityReply, error) {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	share := 0.0
	switch cl.Priority {
	case PriorityLow:
		share = c.reserve
	case PriorityNormal:
		share = c.reserve / 2
	}
	burst := max(cl.Rate.Burst, 1)
	v, err := runScript(ctx, c.rdb, capacityScript,
		[]string{slotsKey(c.prefix, key), gcraKey(c.prefix, key), aimdKey(c.prefix, key)},
		f(cl.Rate.Rate), burst, f(c.margin), f(share),
		f(cl.Rate.Rate*c.aimd.Step), c.aimd.Every.Milliseconds(), lookahead.Microseconds(),
		cl.Holder, cl.Slots, leaseMillis(cl.Lease), c.hooks.nowArg(time.Microsecond))
	if err != nil {
		return capacityReply{}, c.fail.wrap(ctx, "ratelimit: claim capacity "+key, err)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != 7 {
		return capacityReply{}, c.fail.wrap(ctx, "ratelimit: claim capacity "+key, fmt.Errorf("unexpected script reply %v", v))
	}
	n, err := ints(append(arr[:5:5], arr[6]), 6)
	enforced, perr := strconv.ParseFloat(fmt.Sprint(arr[5]), 64)
	if err != nil || perr != nil || math.IsNaN(enforced) {
		return capacityReply{}, c.fail.wrap(ctx, "ratelimit: claim capacity "+key, fmt.Errorf("unexpected script reply %v", v))
	}
	if cl.Rate.Rate > 0 {
		c.metrics.setConfiguredRate(cl.Rate.Rate)
		c.metrics.setEffectiveRate(enforced)
	}
	if cl.Slots > 0 {
		c.metrics.setInFlight(n[3])
	}
	return capacityReply{
		allowed: n[0] == 1, wait: time.Duration(n[1]) * time.Microsecond, slotsFull: n[2] == 1,
		next: time.Duration(n[5]) * time.Microsecond,
	}, nil
}
