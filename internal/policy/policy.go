// Package policy decides, for each job the worker is about to dial, whether the call may go now:
// the calling window of the callee's time zone, the per-callee frequency caps, the account's
// concurrent-call cap and its global call rate. It composes the Redis-backed primitives of
// internal/ratelimit and implements queue.Gate.
package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/ratelimit"
)

// Config configures the call policies.
type Config struct {
	// Key scopes the shared limits; use the provider app key so that every worker of one account
	// shares them, and only them.
	Key string
	// Rate is the account's call rate shared by all workers; Rate.Rate 0 disables it.
	Rate ratelimit.Limit
	// Reserve is the share of the burst that bulk leaves for verify (see ratelimit.LimiterOptions).
	Reserve float64
	// Margin runs the limiter that share under Rate (default 0.03). Our tokens are spaced exactly
	// 1/rate apart in Redis, but the platform counts calls as they arrive, after a dial record, a
	// signature and a TCP connect whose delays vary: without a margin, one call delayed more than
	// the next hundred puts N+1 arrivals in one second and the platform refuses it (1013001).
	// A margin m tolerates a delay of about m seconds; half of it is given to this process: a
	// request not sent within Margin/2 s of its token's instant is put back (Admission.SendBy),
	// the other half is for the network and the provider.
	Margin float64
	// Decrease is the factor the effective rate is multiplied by after a rate-class provider
	// reply (default 0.95), recovering after a 10 s cool-down. With the margin above, a refusal is
	// an isolated jitter accident, not a sign that the cap is wrong: a gentle step keeps the
	// account's capacity used; repeated refusals still walk the rate down.
	Decrease float64
	// MaxConcurrent is the account's concurrent-call cap; 0 disables it.
	MaxConcurrent int
	// SlotLease bounds how long a call slot is held if its end is never reported (default 30 min;
	// click-to-call jobs hold max_duration + 5 min when longer).
	SlotLease time.Duration
	// MaxWait is the longest a worker waits for a rate token before rescheduling the job instead
	// (default 500 ms, at most 1 s).
	MaxWait time.Duration
	// CalleeCaps are the per-callee frequency caps by group ("verify", "notify", "bulk",
	// "click2call"); a missing or empty group has none.
	CalleeCaps map[string][]ratelimit.CalleeCap
	// Windows are the calling windows by group; a missing group is exempt.
	Windows map[string]ratelimit.Window
	// HashKey keys the hashes that stand for phone numbers in Redis keys.
	HashKey []byte
	Metrics *ratelimit.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Gate is the queue.Gate of the worker.
type Gate struct {
	c        Config
	capacity *ratelimit.Capacity
	adaptive *ratelimit.Adaptive
	slots    *ratelimit.Slots
	callees  *ratelimit.CalleeLimiter
	log      *slog.Logger
}

var _ queue.Gate = (*Gate)(nil)

// New returns the gate.
func New(rdb redis.UniversalClient, c Config) (*Gate, error) {
	if c.Key == "" {
		return nil, errors.New("new policy gate: empty key")
	}
	if c.Rate.Rate < 0 || c.MaxConcurrent < 0 {
		return nil, errors.New("new policy gate: negative rate or concurrency")
	}
	if c.Rate.Rate > 0 {
		if err := c.Rate.Validate(); err != nil {
			return nil, fmt.Errorf("new policy gate: %w", err)
		}
	}
	if c.SlotLease <= 0 {
		c.SlotLease = 30 * time.Minute
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.Margin == 0 {
		c.Margin = 0.03
	}
	if c.Margin < 0 || c.Margin >= 0.5 {
		return nil, fmt.Errorf("new policy gate: rate margin %v outside [0, 0.5)", c.Margin)
	}
	if c.Decrease == 0 {
		c.Decrease = 0.95
	}
	c.MaxWait = min(c.MaxWait, time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.HashKey) == 0 {
		return nil, errors.New("new policy gate: empty hash key")
	}
	log := c.Logger.With("component", "policy")
	// The back-off and the capacity claim must agree on how the rate climbs back.
	aimd := ratelimit.AdaptiveOptions{Logger: log, Metrics: c.Metrics, Factor: c.Decrease, Cooldown: 10 * time.Second}
	capacity, err := ratelimit.NewCapacity(rdb, ratelimit.CapacityOptions{
		Logger: log, Metrics: c.Metrics, Reserve: c.Reserve, Margin: c.Margin, Adaptive: aimd,
		SlotPoll: slotPoll,
	})
	if err != nil {
		return nil, fmt.Errorf("new policy gate: %w", err)
	}
	g := &Gate{
		c:        c,
		capacity: capacity,
		adaptive: ratelimit.NewAdaptive(rdb, aimd),
		slots:    ratelimit.NewSlots(rdb, ratelimit.SlotsOptions{Logger: log, Metrics: c.Metrics}),
		callees:  ratelimit.NewCalleeLimiter(rdb, c.HashKey, ratelimit.CalleeOptions{Logger: log, Metrics: c.Metrics}),
		log:      log,
	}
	if c.Metrics != nil {
		c.Metrics.KnowCalleeCaps(c.CalleeCaps)
		c.Metrics.SetMaxConcurrent(c.MaxConcurrent)
	}
	return g, nil
}

// group is the policy group of a job: its kind, or "bulk" for the bulk queue.
func group(job queue.Job) string {
	if job.Queue == queue.QueueBulk {
		return "bulk"
	}
	return string(job.Kind)
}

func priority(job queue.Job) ratelimit.Priority {
	switch {
	case job.Kind == queue.KindVerify:
		return ratelimit.PriorityHigh
	case job.Queue == queue.QueueBulk:
		return ratelimit.PriorityLow
	default:
		return ratelimit.PriorityNormal
	}
}

// Admit applies, in order: the calling window (defer to its next opening), the per-callee caps
// (throttle, or defer a notify job when the cap frees up before its deadline), a rate token
// within MaxWait, then a concurrent-call slot within the rest of MaxWait (defer otherwise).
func (g *Gate) Admit(ctx context.Context, job queue.Job, attempt int) (queue.Admission, error) {
	grp := group(job)
	now := g.c.Now()

	if w, ok := g.c.Windows[grp]; ok && !w.Always() {
		zones, err := ratelimit.ZonesFor(job.To, job.Timezone)
		if err != nil {
			zones = ratelimit.ZonesForNumber(job.To)
		}
		if open, at := w.NextOpen(now, zones); !open {
			if at.IsZero() {
				// The callee's zones never share an open moment (a number spanning many zones
				// with a short window): only a per-job time zone can make this call possible.
				g.throttled("window_never_open")
				return queue.Admission{Verdict: queue.Throttle, Reason: "window_never_open"}, nil
			}
			g.deferred(ratelimit.DeferWindow)
			return queue.Admission{Verdict: queue.Defer, Delay: max(at.Sub(now), time.Second), Reason: "window"}, nil
		}
	}

	if caps := g.c.CalleeCaps[grp]; len(caps) > 0 {
		d, err := g.callees.Check(ctx, grp, job.To, caps, job.ID+":"+strconv.Itoa(attempt))
		if err != nil {
			return queue.Admission{}, fmt.Errorf("check callee caps: %w", err)
		}
		if !d.Allowed {
			if (grp == "notify" || grp == "bulk") && now.Add(d.RetryAfter).Before(job.DispatchBy) {
				g.deferred("callee_cap")
				return queue.Admission{Verdict: queue.Defer, Delay: d.RetryAfter, Reason: "callee_cap"}, nil
			}
			g.throttled(d.Reason)
			return queue.Admission{Verdict: queue.Throttle, Reason: d.Reason}, nil
		}
	}

	// The rate token and a call slot together, in one script: a job never holds a slot while
	// it waits for a token (a port would sit idle), never spends a token and then waits for a
	// slot (its call would reach the provider late, out of the tokens' even spacing), and the
	// call goes out as soon as its token is due.
	if g.c.Rate.Rate > 0 || g.c.MaxConcurrent > 0 {
		cl := ratelimit.Claim{Priority: priority(job)}
		if g.c.Rate.Rate > 0 {
			cl.Rate = g.c.Rate
		}
		if g.c.MaxConcurrent > 0 {
			cl.Slots, cl.Holder, cl.Lease = g.c.MaxConcurrent, job.ID, g.c.SlotLease
			if job.Kind == queue.KindClick2Call && job.MaxDuration > 0 {
				cl.Lease = max(cl.Lease, time.Duration(job.MaxDuration)*time.Minute+5*time.Minute)
			}
		}
		res, err := g.capacity.Take(ctx, g.c.Key, cl, g.c.MaxWait)
		if err != nil {
			return queue.Admission{}, fmt.Errorf("claim rate token and call slot: %w", err)
		}
		if res.Allowed && !res.Due.IsZero() {
			return queue.Admission{Verdict: queue.Admit, SendAt: res.Due, SendBy: res.Due.Add(g.sendWithin())}, nil
		}
		if !res.Allowed {
			if res.Short == ratelimit.ShortSlots {
				// Calls end all the time, but which one ends first is unknown (a lease says only
				// when it would be given up): come back soon.
				g.deferred(ratelimit.DeferSlots)
				return queue.Admission{Verdict: queue.Defer, Delay: slotsRetry, Reason: "slots"}, nil
			}
			g.deferred(ratelimit.DeferRate)
			return queue.Admission{Verdict: queue.Defer, Delay: clampDelay(res.RetryAfter), Reason: "rate_limit"}, nil
		}
	}
	return queue.Admission{Verdict: queue.Admit}, nil
}

// sendWithin is how late after its token's instant a request may still leave: half the delay
// the rate margin tolerates (a margin m spreads N tokens over N/(1−m)·1/rate ≈ (1+m) s).
func (g *Gate) sendWithin() time.Duration {
	return time.Duration(g.c.Margin / 2 * float64(time.Second))
}

// slotPoll is how often a job waiting for a call slot looks again within its short wait, and
// slotsRetry how long a job that found none within that wait steps aside.
const (
	slotPoll   = 10 * time.Millisecond
	slotsRetry = 250 * time.Millisecond
)

// clampDelay keeps a reschedule delay within sane bounds: at least 10 ms, at most a minute.
func clampDelay(d time.Duration) time.Duration {
	return min(max(d, 10*time.Millisecond), time.Minute)
}

func (g *Gate) deferred(reason string) {
	if g.c.Metrics != nil {
		g.c.Metrics.JobDeferred(reason)
	}
}

func (g *Gate) throttled(reason string) {
	if g.c.Metrics != nil {
		g.c.Metrics.JobThrottled(reason)
	}
}

// Release frees the job's call slot. Releasing a slot that is not held is a no-op.
func (g *Gate) Release(ctx context.Context, jobID string) error {
	if g.c.MaxConcurrent <= 0 {
		return nil
	}
	_, err := g.slots.Release(ctx, g.c.Key, jobID)
	return err
}

// ProviderRate lowers the effective rate after a rate-class provider reply.
func (g *Gate) ProviderRate(ctx context.Context) error {
	if g.c.Rate.Rate <= 0 {
		return nil
	}
	return g.adaptive.Decrease(ctx, g.c.Key, g.c.Rate)
}
