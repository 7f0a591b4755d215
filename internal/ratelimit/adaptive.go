package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// AdaptiveOptions configures Adaptive. Zero fields take the defaults shown.
type AdaptiveOptions struct {
	KeyPrefix string       // default DefaultKeyPrefix
	Logger    *slog.Logger // nil: discard
	Metrics   *Metrics     // nil: no metrics

	Factor float64 // multiplicative decrease on a rate reply, in (0, 1); default 0.5
	Floor  float64 // lowest effective rate as a fraction of the cap, in (0, 1]; default 0.1
	// Cooldown is how long a lowered rate holds before it starts to climb; default 60 s, the
	// provider's minimum back-off after a rate-class reply.
	Cooldown time.Duration
	Step     float64       // additive increase per IncreaseEvery, as a fraction of the cap; default 0.1
	Every    time.Duration // period of the additive increase; default 5 s
	// HoldOff is the least time between two decreases, default 1 s: the replies to calls that
	// were already under way when the rate dropped do not lower it again.
	HoldOff time.Duration

	hooks *testHooks
}

func (o AdaptiveOptions) withDefaults() AdaptiveOptions {
	if o.Factor == 0 {
		o.Factor = 0.5
	}
	if o.Floor == 0 {
		o.Floor = 0.1
	}
	if o.Cooldown == 0 {
		o.Cooldown = time.Minute
	}
	if o.Step == 0 {
		o.Step = 0.1
	}
	if o.Every == 0 {
		o.Every = 5 * time.Second
	}
	if o.HoldOff == 0 {
		o.HoldOff = time.Second
	}
	return o
}

// Validate reports options that NewAdaptive would have to replace by defaults.
func (o AdaptiveOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case !(o.Factor > 0 && o.Factor < 1):
		return fmt.Errorf("ratelimit: adaptive factor %v outside (0, 1): %w", o.Factor, ErrInvalid)
	case !(o.Floor > 0 && o.Floor <= 1):
		return fmt.Errorf("ratelimit: adaptive floor %v outside (0, 1]: %w", o.Floor, ErrInvalid)
	case !(o.Step > 0 && o.Step <= 1):
		return fmt.Errorf("ratelimit: adaptive step %v outside (0, 1]: %w", o.Step, ErrInvalid)
	case o.Cooldown < time.Millisecond || o.Every < time.Millisecond || o.HoldOff < time.Millisecond:
		return fmt.Errorf("ratelimit: adaptive durations must be at least 1ms: %w", ErrInvalid)
	}
	return nil
}

// Adaptive is the AIMD back-off on provider feedback, shared by every process through Redis:
// Decrease after a rate-class reply, Effective before taking tokens.
type Adaptive struct {
	rdb     redis.UniversalClient
	prefix  string
	log     *slog.Logger
	metrics *Metrics
	o       AdaptiveOptions
	fail    *failure
}

// NewAdaptive returns an Adaptive on rdb. Invalid options are replaced by defaults (see Validate).
func NewAdaptive(rdb redis.UniversalClient, opts AdaptiveOptions) *Adaptive {
	log := orDiscard(opts.Logger).With("component", "ratelimit")
	if err := opts.Validate(); err != nil {
		log.Warn("adaptive options replaced by the defaults", "err", err)
		opts = AdaptiveOptions{KeyPrefix: opts.KeyPrefix, Logger: opts.Logger, Metrics: opts.Metrics, hooks: opts.hooks}
	}
	return &Adaptive{
		rdb:     rdb,
		prefix:  prefixOrDefault(opts.KeyPrefix),
		log:     log,
		metrics: opts.Metrics,
		o:       opts.withDefaults(),
		fail:    newFailure(log, opts.Metrics, "adaptive"),
	}
}

// aimdScript reads, and on "decrease" lowers, an account's effective rate.
//
//	KEYS[1]  the state, a hash: r = rate set by the last decrease (calls/s), cool = end of its
//	         cool-down (ms, Redis clock), dec = time of that decrease (ms). Absent: at the cap.
//	         Its TTL runs out when the rate is back at the cap.
//	ARGV[1]  "get" or "decrease"
//	ARGV[2]  cap (calls/s)   ARGV[3] floor (calls/s)   ARGV[4] factor
//	ARGV[5]  cool-down (ms)  ARGV[6] step (calls/s)    ARGV[7] step period (ms)
//	ARGV[8]  hold-off (ms)   ARGV[9] now in ms or "" (Redis TIME)
//
// The effective rate is r during the cool-down, then r + step for each period begun since it
// ended, never above the cap. A decrease sets r = max(effective × factor, floor), unless the
// last one was less than the hold-off ago. It returns {effective rate, lowered (0 or 1)}, the
// rate as a string (a Lua number would be truncated to an integer).
var aimdScript = redis.NewScript(nowLua + aimdLua + `
local cap, floor, factor = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cooldown, step, every, holdoff = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local now = clock(ARGV[9], 1000)

local cur, dec = aimd_rate(KEYS[1], cap, step, every, now)
if ARGV[1] == 'decrease' and (not dec or now - dec >= holdoff) then
  -- a decrease restarts the cool-down even at the floor
  local new = math.max(cur * factor, floor)
  if new > cur then new = cur end
  redis.call('HSET', KEYS[1], 'r', new, 'cool', now + cooldown, 'dec', now)
  redis.call('PEXPIRE', KEYS[1], cooldown + math.ceil((cap - new) / step) * every + every + ttl_slack_ms)
  local lowered = 0
  if new < cur then lowered = 1 end
  return {tostring(new), lowered}
end
return {tostring(cur), 0}
`)

// aimdLua reads the AIMD state, for aimdScript and capacityScript. Times are ms.
//
//	aimd_rate(key, cap, step, every, now) → the effective rate now (calls/s), and the time of
//	                                        the last decrease (nil if none is recorded).
const aimdLua = `
local function aimd_rate(key, cap, step, every, now)
  local state = redis.call('HMGET', key, 'r', 'cool', 'dec')
  local r, cool = tonumber(state[1]), tonumber(state[2])
  local cur = cap
  if r and cool then
    cur = r
    if now >= cool then cur = r + step * (math.floor((now - cool) / every) + 1) end
    if cur > cap then cur = cap end
  end
  return cur, tonumber(state[3])
end
`

// Effective returns the limit to enforce now for key: the configured limit while there has been no rate reply,
// lower after one. The burst shrinks in proportion, never below 1. On a Redis failure it
// returns an error wrapping ErrUnavailable (fail closed: do not call).
func (a *Adaptive) Effective(ctx context.Context, key string, configured Limit) (Limit, error) {
	lim, _, err := a.run(ctx, "get", key, configured)
	return lim, err
}

// Decrease lowers key's effective rate after a rate-class reply from the provider (all
// processes see it), unless it was lowered less than HoldOff ago.
func (a *Adaptive) Decrease(ctx context.Context, key string, configured Limit) error {
	lim, lowered, err := a.run(ctx, "decrease", key, configured)
	if err != nil {
		return err
	}
	if lowered {
		a.log.Info("call rate lowered after a provider rate reply", "key", key,
			"effective_rate", lim.Rate, "configured_rate", configured.Rate)
	}
	return nil
}

func (a *Adaptive) run(ctx context.Context, mode, key string, configured Limit) (lim Limit, lowered bool, err error) {
	what := "ratelimit: adaptive " + mode
	if err := checkName("adaptive key", key); err != nil {
		return Limit{}, false, fmt.Errorf("%s: %w: %w", what, ErrInvalid, err)
	}
	if err := configured.Validate(); err != nil {
		return Limit{}, false, fmt.Errorf("%s %s: %w", what, key, err)
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	v, err := runScript(ctx, a.rdb, aimdScript, []string{aimdKey(a.prefix, key)}, mode,
		f(configured.Rate), f(configured.Rate*a.o.Floor), f(a.o.Factor),
		a.o.Cooldown.Milliseconds(), f(configured.Rate*a.o.Step), a.o.Every.Milliseconds(),
		a.o.HoldOff.Milliseconds(), a.hooks().nowArg(time.Millisecond))
	if err != nil {
		return Limit{}, false, a.fail.wrap(ctx, what+" "+key, err)
	}
	r, lowered, ok := parseAIMDReply(v)
	if !ok {
		return Limit{}, false, a.fail.wrap(ctx, what+" "+key, fmt.Errorf("unexpected script reply %v", v))
	}
	r = math.Min(r, configured.Rate)
	lim = Limit{Rate: r, Burst: configured.Burst}
	if r < configured.Rate {
		lim.Burst = int(math.Max(1, math.Floor(float64(configured.Burst)*r/configured.Rate)))
	}
	a.metrics.setConfiguredRate(configured.Rate)
	a.metrics.setEffectiveRate(lim.Rate)
	return lim, lowered, nil
}

func parseAIMDReply(v any) (rate float64, lowered, ok bool) {
	arr, isArr := v.([]any)
	if !isArr || len(arr) != 2 {
		return 0, false, false
	}
	s, isStr := arr[0].(string)
	flag, isInt := arr[1].(int64)
	r, err := strconv.ParseFloat(s, 64)
	if !isStr || !isInt || err != nil || !(r > 0) {
		return 0, false, false
	}
	return r, flag == 1, true
}

func (a *Adaptive) hooks() *testHooks { return a.o.hooks }
