package app

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/policy"
	"github.com/voicequeue/voicequeue/internal/ratelimit"
)

// PolicyConfig turns the configuration into the call policies' settings.
func (c *Config) PolicyConfig() (policy.Config, error) {
	pc := policy.Config{
		Key:           c.AppKey,
		Rate:          ratelimit.Limit{Rate: c.CallRate, Burst: max(c.CallBurst, 1)},
		Reserve:       c.RateReserve,
		Margin:        c.RateMargin,
		Decrease:      c.RateDecrease,
		MaxConcurrent: c.MaxConcurrentCalls,
		SlotLease:     c.SlotLease,
		MaxWait:       c.LimitMaxWait,
		CalleeCaps:    map[string][]ratelimit.CalleeCap{},
		Windows:       map[string]ratelimit.Window{},
		HashKey:       c.Keys().Callee,
	}
	if pc.Key == "" {
		pc.Key = "default"
	}
	if c.CallRate < 0 || c.MaxConcurrentCalls < 0 {
		return pc, fmt.Errorf("VOICEQUEUE_CALL_RATE and VOICEQUEUE_MAX_CONCURRENT_CALLS must not be negative")
	}
	if c.LimitMaxWait > time.Second {
		return pc, fmt.Errorf("VOICEQUEUE_LIMIT_MAX_WAIT must be at most 1s: a worker must not sit on a slot waiting for a token")
	}
	for group, s := range c.CalleeCaps {
		if s == nil || *s == "" || strings.EqualFold(*s, "off") {
			continue
		}
		caps, err := ratelimit.ParseCalleeCaps(*s)
		if err != nil {
			return pc, fmt.Errorf("VOICEQUEUE_CALLEE_CAPS_%s: %w", strings.ToUpper(group), err)
		}
		pc.CalleeCaps[group] = caps
	}
	for group, s := range c.Windows {
		if s == nil || *s == "" || strings.EqualFold(*s, "off") {
			continue
		}
		w, err := ratelimit.ParseWindow(*s)
		if err != nil {
			return pc, fmt.Errorf("VOICEQUEUE_CALLING_WINDOW_%s: %w", strings.ToUpper(group), err)
		}
		pc.Windows[group] = w
	}
	return pc, nil
}

// newGate builds the call-policy gate shared by the worker (admission) and the gateway (slot
// release when a push ends a call).
func newGate(c *Config, rdb redis.UniversalClient, m *ratelimit.Metrics, log *slog.Logger, now func() time.Time) (*policy.Gate, error) {
	pc, err := c.PolicyConfig()
	if err != nil {
		return nil, err
	}
	pc.Metrics, pc.Logger, pc.Now = m, log, now
	return policy.New(rdb, pc)
}
