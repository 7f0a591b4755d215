package voicesim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// dice is a seeded, lock-guarded random source, so that a run with the same seed and the same
// requests in the same order draws the same faults and outcomes.
type dice struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newDice(seed int64) *dice {
	if seed == 0 {
		seed = 1
	}
	return &dice{r: rand.New(rand.NewPCG(uint64(seed), 0x766f696365))}
}

// chance is true with probability p (never for p ≤ 0, always for p ≥ 1, without a draw).
func (d *dice) chance(p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	return d.float() < p
}

// float returns a number in [0, 1).
func (d *dice) float() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r.Float64()
}

// duration returns a duration in [0, limit].
func (d *dice) duration(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Duration(d.r.Int64N(int64(limit) + 1))
}

// OutageMode returns the outage in force now: OutageRefuse, Outage503 or "" for none. A refuse
// outage wins over a 503 one; runtime switches (SetOutage) and scheduled windows both count.
// cmd/voicesim polls it to close its listener during refuse outages.
func (s *Simulator) OutageMode() string {
	elapsed := s.cfg.Now().Sub(s.started)
	s.mu.Lock()
	refuse, down := s.runtimeOutage[OutageRefuse], s.runtimeOutage[Outage503]
	s.mu.Unlock()
	for _, o := range s.cfg.Faults.Outages {
		if elapsed >= o.Start && elapsed < o.End {
			refuse = refuse || o.Mode == OutageRefuse
			down = down || o.Mode == Outage503
		}
	}
	switch {
	case refuse:
		return OutageRefuse
	case down:
		return Outage503
	}
	return ""
}

// SetOutage switches an outage on or off at run time, for chaos tests. Mode is Outage503 (every
// API request gets a plain HTTP 503) or OutageRefuse (every API connection is dropped without a
// reply; in-process that is a reset after the request was read, so the client cannot tell
// whether it arrived — true refused connections need cmd/voicesim, which closes its listener).
// An unknown mode is ignored and logged.
func (s *Simulator) SetOutage(mode string, on bool) {
	if err := s.setOutage(mode, on); err != nil {
		s.log.Warn("ignored outage switch", "error", err)
	}
}

func (s *Simulator) setOutage(mode string, on bool) error {
	if mode != Outage503 && mode != OutageRefuse {
		return fmt.Errorf("outage mode %q is not %q or %q", mode, Outage503, OutageRefuse)
	}
	s.mu.Lock()
	s.runtimeOutage[mode] = on
	if t := s.offTimers[mode]; t != nil && !on {
		t.Stop()
		delete(s.offTimers, mode)
	}
	s.mu.Unlock()
	s.log.Info("outage switched", "mode", mode, "on", on)
	return nil
}

// ParseOutages parses a comma-separated list of outage windows "START+LENGTH:MODE", e.g.
// "30s+10s:503,2m+30s:refuse": a 503 outage from 30 s to 40 s after start and a refuse outage
// from 2 min to 2 min 30 s. An empty string gives no outages.
func ParseOutages(spec string) ([]Outage, error) {
	var out []Outage
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		window, mode, ok := strings.Cut(item, ":")
		startStr, lengthStr, ok2 := strings.Cut(window, "+")
		if !ok || !ok2 {
			return nil, fmt.Errorf("parse outage %q: want START+LENGTH:MODE", item)
		}
		start, err := time.ParseDuration(startStr)
		if err != nil {
			return nil, fmt.Errorf("parse outage %q start: %w", item, err)
		}
		length, err := time.ParseDuration(lengthStr)
		if err != nil {
			return nil, fmt.Errorf("parse outage %q length: %w", item, err)
		}
		if mode != Outage503 && mode != OutageRefuse {
			return nil, fmt.Errorf("parse outage %q: mode must be %q or %q", item, Outage503, OutageRefuse)
		}
		if start < 0 || length <= 0 {
			return nil, fmt.Errorf("parse outage %q: start must be ≥ 0 and length > 0", item)
		}
		out = append(out, Outage{Start: start, End: start + length, Mode: mode})
	}
	return out, nil
}

// ParseRandom parses a random-mode spec "busy=P,no-answer=P,rejected=P,powered-off=P,
// network-failure=P,seed=N" (any subset, in any order). An empty string gives nil: deterministic
// outcomes.
func ParseRandom(spec string) (*RandomMode, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	rm := &RandomMode{}
	probs := map[string]*float64{
		"busy": &rm.Busy, "no-answer": &rm.NoAnswer, "rejected": &rm.Rejected,
		"powered-off": &rm.PoweredOff, "network-failure": &rm.NetworkFailure,
	}
	for item := range strings.SplitSeq(spec, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("parse random %q: want KEY=VALUE", item)
		}
		if key == "seed" {
			seed, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse random seed: %w", err)
			}
			rm.Seed = seed
			continue
		}
		p, ok := probs[key]
		if !ok {
			return nil, fmt.Errorf("parse random: unknown outcome %q (busy, no-answer, rejected, powered-off, network-failure, seed)", key)
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || f < 0 || f > 1 {
			return nil, fmt.Errorf("parse random %s: %q is not a probability", key, val)
		}
		*p = f
	}
	return rm, nil
}
