// Package breaker is the circuit breaker that pauses dialling during a provider outage.
//
// After Threshold consecutive transient failures (5xx replies, refused connections) seen by one
// process, the breaker opens for a cool-down: Allow says no, with the time left, and the worker
// reschedules the job without using an attempt instead of burning every job's attempts on a
// platform that is down. When the cool-down is over the breaker is half-open: one probe call per
// cool-down window is let through; its success closes the breaker, its failure opens it again
// with double the cool-down, up to MaxCooldown.
//
// The state is shared by every worker through three Redis keys (keys.go): a trip by one worker
// pauses them all, and the half-open probe is taken with SET NX, so one worker in the whole
// deployment probes. Allow reads Redis at most once per CacheTTL (and not at all while the
// breaker is known to be open), so the closed path costs no round trip per job. The consecutive
// failure count is per process. When Redis is unreachable the breaker falls back to this
// process's own state, and Allow never returns an error.
//
// Each process logs the transitions it sees and exports them as metrics.
package breaker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is a breaker state; the values are metric label values.
type State string

// States.
const (
	StateClosed   State = "closed"    // dialling
	StateOpen     State = "open"      // cooling down: no dialling
	StateHalfOpen State = "half_open" // one probe call per cool-down window
)

var states = []State{StateClosed, StateOpen, StateHalfOpen}

// Defaults of Options.
const (
	DefaultKey          = "provider"
	DefaultThreshold    = 10
	DefaultCooldown     = 10 * time.Second
	DefaultMaxCooldown  = 2 * time.Minute
	DefaultCacheTTL     = 100 * time.Millisecond
	DefaultRedisTimeout = 200 * time.Millisecond
)

// forgetFactor × MaxCooldown is how long the trip key outlives its cool-down: a half-open
// breaker that nobody probes for that long is closed.
const forgetFactor = 10

// Options configures a breaker. Zero values take the defaults.
type Options struct {
	// Key names the breaker in its Redis keys (default "provider"); breakers with the same Key on
	// the same Redis share their state. No braces: it is the keys' hash tag.
	Key string
	// Threshold is the number of consecutive transient failures in one process that opens the
	// breaker (default 10).
	Threshold int
	// Cooldown is the first cool-down (default 10 s); each failed probe doubles it up to
	// MaxCooldown (default 2 min).
	Cooldown, MaxCooldown time.Duration
	// CacheTTL is how long Allow trusts the last read of the shared state (default 100 ms).
	CacheTTL time.Duration
	// RedisTimeout bounds each Redis call (default 200 ms): a slow Redis must not stall dialling.
	RedisTimeout time.Duration
	Logger       *slog.Logger
	Metrics      *Metrics
	Now          func() time.Time
}

// Validate reports options that New would have to replace.
func (o Options) Validate() error {
	var errs []error
	if strings.ContainsAny(o.Key, "{}") {
		errs = append(errs, fmt.Errorf("breaker key %q contains a brace", o.Key))
	}
	if o.Threshold < 0 {
		errs = append(errs, fmt.Errorf("breaker threshold %d is negative", o.Threshold))
	}
	if o.Cooldown < 0 || o.MaxCooldown < 0 || o.CacheTTL < 0 || o.RedisTimeout < 0 {
		errs = append(errs, errors.New("breaker durations must not be negative"))
	}
	if o.Cooldown > 0 && o.MaxCooldown > 0 && o.MaxCooldown < o.Cooldown {
		errs = append(errs, fmt.Errorf("breaker max cool-down %s is below the cool-down %s", o.MaxCooldown, o.Cooldown))
	}
	return errors.Join(errs...)
}

func (o *Options) setDefaults() {
	o.Key = strings.NewReplacer("{", "", "}", "").Replace(o.Key)
	if o.Key == "" {
		o.Key = DefaultKey
	}
	if o.Threshold <= 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Cooldown <= 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.MaxCooldown <= 0 {
		o.MaxCooldown = DefaultMaxCooldown
	}
	o.MaxCooldown = max(o.MaxCooldown, o.Cooldown)
	if o.CacheTTL <= 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.RedisTimeout <= 0 {
		o.RedisTimeout = DefaultRedisTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Breaker is a circuit breaker shared through Redis. Its methods are safe for concurrent use.
type Breaker struct {
	rdb   redis.UniversalClient // nil: this process's state only
	o     Options
	keys  keys
	token string // this instance's probe token
	log   *slog.Logger

	mu         sync.Mutex
	state      State
	failures   int           // consecutive transient failures seen here while closed
	cooldown   time.Duration // the current cool-down
	openUntil  time.Time     // open: the end of the cool-down
	probeUntil time.Time     // half-open: the probe slot is taken until then
	checkedAt  time.Time     // last read of the shared state (zero: never)
	refreshing bool          // a read of the shared state is under way
	redisDown  bool          // the last Redis call failed: this process's state decides
}

// New returns a breaker on rdb (nil: not shared, this process's state only). Invalid options
// are replaced by their defaults (see Options.Validate).
func New(rdb redis.UniversalClient, o Options) *Breaker {
	o.setDefaults()
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	return &Breaker{
		rdb:      rdb,
		o:        o,
		keys:     newKeys(o.Key),
		token:    hex.EncodeToString(tok[:]),
		log:      o.Logger.With("component", "breaker", "breaker", o.Key),
		state:    StateClosed,
		cooldown: o.Cooldown,
	}
}

// State returns the state as this process last saw it.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Allow reports whether a call may be placed now; if not, retryAfter is when to ask again.
// In the half-open state it says yes to one caller per cool-down window, the probe, whose
// result must be reported with Success or Failure. It never fails: when Redis is unreachable,
// this process's own state decides.
func (b *Breaker) Allow(ctx context.Context) (ok bool, retryAfter time.Duration) {
	ok, retryAfter = b.allow(ctx)
	if !ok {
		b.o.Metrics.rejected()
	}
	return ok, retryAfter
}

func (b *Breaker) allow(ctx context.Context) (bool, time.Duration) {
	now := b.o.Now()
	b.mu.Lock()
	if now.Before(b.openUntil) {
		wait := b.openUntil.Sub(now)
		b.mu.Unlock()
		return false, wait
	}
	fresh := !b.checkedAt.IsZero() && now.Sub(b.checkedAt) < b.o.CacheTTL
	switch {
	case b.rdb == nil || (fresh && b.redisDown):
		defer b.mu.Unlock()
		return b.localLocked(now)
	case b.state == StateClosed && (fresh || b.refreshing):
		b.mu.Unlock()
		return true, 0
	case b.state == StateHalfOpen && fresh && now.Before(b.probeUntil):
		wait := b.probeUntil.Sub(now)
		b.mu.Unlock()
		return false, wait
	}
	b.refreshing = true
	b.mu.Unlock()

	res, err := b.run(ctx, allowScript, b.token, b.o.Cooldown.Milliseconds())

	now = b.o.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshing = false
	b.checkedAt = now
	if err != nil {
		b.redisFailedLocked(err)
		return b.localLocked(now)
	}
	b.redisBackLocked()
	ttl, cd := ms(res[1]), ms(res[2])
	switch res[0] {
	case 0: // closed
		if b.state != StateClosed {
			b.closeLocked("closed by another worker's probe")
		}
		return true, 0
	case 1: // open
		b.cooldown, b.openUntil = cd, now.Add(ttl)
		if b.state != StateOpen {
			b.setLocked(StateOpen)
			b.log.Warn("provider circuit breaker open: dialling paused", "cooldown", cd, "retry_after", ttl, "cause", "opened by another worker")
		}
		return false, ttl
	case 2: // half-open, the probe is ours
		b.cooldown, b.probeUntil = cd, now.Add(cd)
		b.halfOpenLocked()
		return true, 0
	default: // half-open, someone else probes
		b.cooldown, b.probeUntil = cd, now.Add(ttl)
		b.halfOpenLocked()
		return false, ttl
	}
}

// localLocked decides from this process's state alone.
func (b *Breaker) localLocked(now time.Time) (bool, time.Duration) {
	switch b.state {
	case StateOpen:
		if now.Before(b.openUntil) {
			return false, b.openUntil.Sub(now)
		}
		b.halfOpenLocked()
		fallthrough
	case StateHalfOpen:
		if now.Before(b.probeUntil) {
			return false, b.probeUntil.Sub(now)
		}
		b.probeUntil = now.Add(b.cooldown)
		return true, 0
	default:
		return true, 0
	}
}

// Success reports a call the provider answered (accepted, or refused for a reason that is not
// an outage). It resets the failure count and, after a probe, closes the breaker.
func (b *Breaker) Success(ctx context.Context) {
	b.mu.Lock()
	b.failures = 0
	if b.state != StateHalfOpen {
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()

	closed, ttl := true, time.Duration(0)
	var err error
	if b.rdb != nil {
		var res []int64
		res, err = b.run(context.WithoutCancel(ctx), closeScript)
		if err == nil {
			closed, ttl = res[0] == 1, ms(res[1])
		}
	}

	now := b.o.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.redisFailedLocked(err)
	} else if b.rdb != nil {
		b.redisBackLocked()
		b.checkedAt = now
	}
	if b.state != StateHalfOpen {
		return // changed meanwhile
	}
	if !closed {
		// Another worker's probe failed and opened it again: a later success decides.
		b.openUntil = now.Add(ttl)
		b.setLocked(StateOpen)
		b.log.Warn("provider circuit breaker open: dialling paused", "cooldown", b.cooldown, "retry_after", ttl, "cause", "opened by another worker")
		return
	}
	b.closeLocked("probe call succeeded")
}

// Failure reports a transient-class failure: a 5xx reply, a refused connection, a timeout. Not
// permanent, rate or account replies: those show the provider is up (report Success). A
// failure while the breaker is open came from a call admitted before it opened and is ignored.
func (b *Breaker) Failure(ctx context.Context) {
	now := b.o.Now()
	b.mu.Lock()
	from := b.state
	switch from {
	case StateOpen:
		b.mu.Unlock()
		return
	case StateClosed:
		b.failures++
		if b.failures < b.o.Threshold {
			b.mu.Unlock()
			return
		}
		b.cooldown = b.o.Cooldown
	case StateHalfOpen:
		b.cooldown = min(2*b.cooldown, b.o.MaxCooldown)
	}
	failures := b.failures
	// Open here at once, so this process stops dialling even if Redis can't be told.
	b.openUntil = now.Add(b.cooldown)
	b.setLocked(StateOpen)
	b.mu.Unlock()

	var res []int64
	var err error
	if b.rdb != nil {
		res, err = b.run(context.WithoutCancel(ctx), tripScript,
			b.o.Cooldown.Milliseconds(), b.o.MaxCooldown.Milliseconds(), forgetFactor*b.o.MaxCooldown.Milliseconds())
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	cause := "consecutive transient failures"
	if from == StateHalfOpen {
		cause = "probe call failed"
	}
	attrs := []any{"cause", cause, "consecutive_failures", failures}
	switch {
	case b.rdb == nil:
	case err != nil:
		b.redisFailedLocked(err)
		attrs = append(attrs, "shared", false)
	default:
		b.redisBackLocked()
		b.checkedAt = b.o.Now()
		if b.state == StateOpen {
			// Redis has the deployment-wide cool-down: longer if this was a half-open failure
			// another worker saw too, the rest of it if another worker opened it first.
			b.cooldown, b.openUntil = ms(res[2]), now.Add(ms(res[1]))
		}
		attrs = append(attrs, "shared", true)
	}
	b.log.Warn("provider circuit breaker open: dialling paused", append([]any{"cooldown", b.cooldown, "retry_after", b.openUntil.Sub(now)}, attrs...)...)
}

// setLocked changes the state and its metrics; it reports whether it changed.
func (b *Breaker) setLocked(to State) bool {
	if b.state == to {
		return false
	}
	b.state = to
	b.o.Metrics.transition(to)
	return true
}

func (b *Breaker) halfOpenLocked() {
	if b.setLocked(StateHalfOpen) {
		b.log.Info("provider circuit breaker half-open: letting one probe call through", "cooldown", b.cooldown)
	}
}

func (b *Breaker) closeLocked(cause string) {
	b.failures = 0
	b.cooldown = b.o.Cooldown
	b.openUntil, b.probeUntil = time.Time{}, time.Time{}
	if b.setLocked(StateClosed) {
		b.log.Info("provider circuit breaker closed: dialling resumed", "cause", cause)
	}
}

func (b *Breaker) redisFailedLocked(err error) {
	if !b.redisDown {
		b.redisDown = true
		b.log.Warn("circuit breaker state in Redis unreachable: using this process's state", "err", err)
	}
}

func (b *Breaker) redisBackLocked() {
	if b.redisDown {
		b.redisDown = false
		b.log.Info("circuit breaker state in Redis reachable again")
	}
}

// run runs one of the scripts on the breaker's keys with a short deadline and returns its
// integer array.
func (b *Breaker) run(ctx context.Context, s *redis.Script, args ...any) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.RedisTimeout)
	defer cancel()
	v, err := s.Run(ctx, b.rdb, b.keys.all(), args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("run breaker script: %w", err)
	}
	if len(v) < 2 {
		return nil, fmt.Errorf("run breaker script: %d values in the reply", len(v))
	}
	if len(v) == 2 {
		v = append(v, 0)
	}
	return v, nil
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
