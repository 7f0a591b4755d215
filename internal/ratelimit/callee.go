package ratelimit

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// CalleeCap allows at most Max calls to one number within any sliding Window.
type CalleeCap struct {
	Max    int
	Window time.Duration
}

// maxCalleeWindow bounds a cap's window (and so how long a callee's log is kept).
const maxCalleeWindow = 366 * 24 * time.Hour

// String formats the cap as ParseCalleeCaps reads it, e.g. "3/24h".
func (c CalleeCap) String() string { return strconv.Itoa(c.Max) + "/" + formatWindow(c.Window) }

// Reason names the cap in a Decision and in metrics, e.g. "callee_cap_3_per_24h".
func (c CalleeCap) Reason() string {
	return "callee_cap_" + strconv.Itoa(c.Max) + "_per_" + formatWindow(c.Window)
}

func formatWindow(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d > 0 && d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// DefaultCalleeCaps are the provider's guidance per job kind: notify and bulk at most 3 calls
// per number per 24 h and 10 per 30 days; verify at most 1 per 60 s and 5 per hour;
// click2call none. The map is new on every call.
func DefaultCalleeCaps() map[string][]CalleeCap {
	long := func() []CalleeCap { return []CalleeCap{{3, 24 * time.Hour}, {10, 30 * 24 * time.Hour}} }
	return map[string][]CalleeCap{
		"notify":     long(),
		"bulk":       long(),
		"verify":     {{1, time.Minute}, {5, time.Hour}},
		"click2call": {},
	}
}

// ParseCalleeCaps reads a comma-separated list of MAX/WINDOW caps, e.g. "3/24h,10/720h". A
// window is a Go duration ("90s", "24h") or a whole number of days ("30d"). "" and "none" mean
// no caps. Windows must lie between 1 ms and 366 days.
func ParseCalleeCaps(s string) ([]CalleeCap, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return []CalleeCap{}, nil
	}
	var caps []CalleeCap
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		maxStr, winStr, ok := strings.Cut(item, "/")
		if !ok {
			return nil, fmt.Errorf("ratelimit: parse callee cap %q: want MAX/WINDOW, e.g. 3/24h", item)
		}
		n, err := strconv.Atoi(strings.TrimSpace(maxStr))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("ratelimit: parse callee cap %q: max must be a whole number ≥ 1", item)
		}
		w, err := parseWindowDuration(strings.TrimSpace(winStr))
		if err != nil {
			return nil, fmt.Errorf("ratelimit: parse callee cap %q: %w", item, err)
		}
		caps = append(caps, CalleeCap{Max: n, Window: w})
	}
	slices.SortStableFunc(caps, func(a, b CalleeCap) int { return cmp.Compare(a.Window, b.Window) })
	return caps, nil
}

func parseWindowDuration(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 366 {
			return 0, fmt.Errorf("window %q: want 1d to 366d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("window %q: want a duration like 60s, 24h or 30d", s)
		}
	}
	if d < time.Millisecond || d > maxCalleeWindow {
		return 0, fmt.Errorf("window %q: must be between 1ms and 366d", s)
	}
	return d, nil
}

// Decision is the outcome of CalleeLimiter.Check.
type Decision struct {
	Allowed bool
	// Reason names the cap that refused the call (CalleeCap.Reason), "" when allowed.
	Reason string
	// RetryAfter, when refused, is when every cap admits one more call.
	RetryAfter time.Duration
}

// CalleeOptions configures a CalleeLimiter. The zero value works.
type CalleeOptions struct {
	KeyPrefix string       // default DefaultKeyPrefix
	Logger    *slog.Logger // nil: discard
	Metrics   *Metrics     // nil: no metrics (only Redis errors are counted here)

	hooks *testHooks
}

// CalleeLimiter enforces per-callee frequency caps with a sliding-window log in Redis, one log
// per (group, number). The group is the counting scope: pass the same group for kinds that
// should count together.
type CalleeLimiter struct {
	rdb     redis.UniversalClient
	hashKey []byte
	prefix  string
	hooks   *testHooks
	fail    *failure
}

// NewCalleeLimiter returns a CalleeLimiter on rdb. hashKey keys the HMAC that hides numbers in
// Redis keys; keep it secret and stable (changing it forgets every callee's history). An empty
// hashKey makes every Check fail with ErrInvalid. Only the first opts is used.
func NewCalleeLimiter(rdb redis.UniversalClient, hashKey []byte, opts ...CalleeOptions) *CalleeLimiter {
	var o CalleeOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	c := &CalleeLimiter{
		rdb:     rdb,
		hashKey: slices.Clone(hashKey),
		prefix:  prefixOrDefault(o.KeyPrefix),
		hooks:   o.hooks,
	}
	c.fail = newFailure(orDiscard(o.Logger).With("component", "ratelimit"), o.Metrics, "callee")
	return c
}

// calleeScript checks every cap against the callee's call log and records the call if all admit it.
//
//	KEYS[1]  the log: a sorted set, member = holder (job ID and attempt), score = call time in
//	         ms (Redis clock). Its TTL is the longest window: older calls no longer count.
//	ARGV[1]  holder   ARGV[2] now in ms or "" (Redis TIME)
//	ARGV[3], ARGV[4], …  the caps as pairs: max, window in ms
//
// A call at time s counts in a window w while s > now − w. It returns {allowed, cap, retry ms}:
// allowed=1 and cap=0 when the call is recorded, or was already recorded for this holder;
// allowed=0 with the 1-based index of the cap that needs the longest wait, and that wait.
var calleeScript = redis.NewScript(nowLua + `
local now = clock(ARGV[2], 1000)
local longest = 0
for i = 3, #ARGV, 2 do longest = math.max(longest, tonumber(ARGV[i + 1])) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {1, 0, 0} end

local deny, retry = 0, 0
for i = 3, #ARGV, 2 do
  local max, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local from = '(' .. string.format('%d', now - window)
  local n = redis.call('ZCOUNT', KEYS[1], from, '+inf')
  if n >= max then
    -- one more call fits once the (n-max+1)-th oldest call in the window has left it
    local e = redis.call('ZRANGEBYSCORE', KEYS[1], from, '+inf', 'WITHSCORES', 'LIMIT', n - max, 1)
    local r = tonumber(e[2]) + window - now
    if r > retry then deny, retry = (i - 1) / 2, r end
  end
end
if deny > 0 then return {0, deny, retry} end

redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], longest + ttl_slack_ms)
return {1, 0, 0}
`)

// Check records a call to e164 in group if every cap admits it, atomically. holder identifies
// the attempt (job ID and attempt number): checking again with the same holder is allowed and
// not counted twice. With no caps every call is allowed and Redis is not asked. On a Redis
// failure the call is refused: Allowed is false and the error wraps ErrUnavailable.
func (c *CalleeLimiter) Check(ctx context.Context, group, e164 string, caps []CalleeCap, holder string) (Decision, error) {
	if err := checkName("callee group", group); err != nil {
		return Decision{}, fmt.Errorf("ratelimit: check callee: %w: %w", ErrInvalid, err)
	}
	switch {
	case len(c.hashKey) == 0:
		return Decision{}, fmt.Errorf("ratelimit: check callee: no hash key configured: %w", ErrInvalid)
	case e164 == "":
		return Decision{}, fmt.Errorf("ratelimit: check callee: empty number: %w", ErrInvalid)
	case holder == "":
		return Decision{}, fmt.Errorf("ratelimit: check callee: empty holder: %w", ErrInvalid)
	}
	if len(caps) == 0 {
		return Decision{Allowed: true}, nil
	}
	args := make([]any, 0, 2+2*len(caps))
	args = append(args, holder, c.hooks.nowArg(time.Millisecond))
	for _, cp := range caps {
		if cp.Max < 1 || cp.Window < time.Millisecond || cp.Window > maxCalleeWindow {
			return Decision{}, fmt.Errorf("ratelimit: check callee: cap %s: %w", cp, ErrInvalid)
		}
		args = append(args, cp.Max, cp.Window.Milliseconds())
	}
	const what = "ratelimit: check callee"
	v, err := runScript(ctx, c.rdb, calleeScript, []string{calleeKey(c.prefix, group, c.hashNumber(e164))}, args...)
	if err != nil {
		return Decision{}, c.fail.wrap(ctx, what, err)
	}
	n, err := ints(v, 3)
	if err != nil {
		return Decision{}, c.fail.wrap(ctx, what, err)
	}
	if n[0] == 1 {
		return Decision{Allowed: true}, nil
	}
	if n[1] < 1 || int(n[1]) > len(caps) {
		return Decision{}, c.fail.wrap(ctx, what, fmt.Errorf("unexpected script reply %v", v))
	}
	return Decision{Reason: caps[n[1]-1].Reason(), RetryAfter: time.Duration(n[2]) * time.Millisecond}, nil
}

// hashNumber is the number's name in keys: HMAC-SHA256 under the configured key, first 128 bits,
// base64url. Without the key a leaked key space does not reveal who was called.
func (c *CalleeLimiter) hashNumber(e164 string) string {
	h := hmac.New(sha256.New, c.hashKey)
	h.Write([]byte(e164))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}
