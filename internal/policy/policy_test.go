package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/ratelimit"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

func newGate(t *testing.T, rdb redis.UniversalClient, now time.Time, mod func(*Config)) *Gate {
	t.Helper()
	c := Config{
		Key: "app", HashKey: []byte("k"), Now: func() time.Time { return now },
		Windows:    ratelimit.DefaultWindows(),
		CalleeCaps: map[string][]ratelimit.CalleeCap{},
	}
	if mod != nil {
		mod(&c)
	}
	g, err := New(rdb, c)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func job(id string, kind queue.Kind, to string, now time.Time) queue.Job {
	q := queue.QueueNotify
	if kind == queue.KindVerify {
		q = queue.QueueVerify
	}
	return queue.Job{ID: id, Kind: kind, Queue: q, To: to, CreatedAt: now, DispatchBy: now.Add(24 * time.Hour)}
}

// TestCallingWindowAcrossZones: notify jobs dial only within 08:00–21:00 in the callee's zone.
func TestCallingWindowAcrossZones(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	tests := []struct {
		name      string
		utc       string
		kind      queue.Kind
		to        string
		zone      string
		wantDefer time.Duration // 0 = admitted now
	}{
		{"beijing 23:00 deferred to 08:00", "2026-11-25T15:00:00Z", queue.KindNotify, "+8613800000001", "", 9 * time.Hour},
		{"beijing 10:00 open", "2026-11-25T02:00:00Z", queue.KindNotify, "+8613800000001", "", 0},
		{"beijing 07:59 deferred one minute", "2026-11-24T23:59:00Z", queue.KindNotify, "+8613800000001", "", time.Minute},
		{"verify exempt at night", "2026-11-25T15:00:00Z", queue.KindVerify, "+8613800000001", "", 0},
		{"new york 10:00 open", "2026-11-25T15:00:00Z", queue.KindNotify, "+12125550111", "", 0},
		{"new york 21:30 deferred to 08:00", "2026-11-26T02:30:00Z", queue.KindNotify, "+12125550111", "", 10*time.Hour + 30*time.Minute},
		{"london 22:00 deferred to 08:00", "2026-11-25T22:00:00Z", queue.KindNotify, "+442071838750", "", 10 * time.Hour},
		{"sydney 06:00 (DST, UTC+11) deferred 2h", "2026-11-25T19:00:00Z", queue.KindNotify, "+61291234567", "", 2 * time.Hour},
		{"per-job zone overrides the number", "2026-11-25T15:00:00Z", queue.KindNotify, "+8613800000001", "America/New_York", 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now, err := time.Parse(time.RFC3339, tt.utc)
			if err != nil {
				t.Fatal(err)
			}
			g := newGate(t, rdb, now, nil)
			j := job("j_w"+string(rune('a'+i)), tt.kind, tt.to, now)
			j.Timezone = tt.zone
			adm, err := g.Admit(t.Context(), j, 1)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantDefer == 0 && adm.Verdict != queue.Admit:
				t.Errorf("verdict %v (%+v), want admit", adm.Verdict, adm)
			case tt.wantDefer != 0 && (adm.Verdict != queue.Defer || adm.Delay != tt.wantDefer || adm.Reason != "window"):
				t.Errorf("admission %+v, want defer %s for window", adm, tt.wantDefer)
			}
		})
	}
}

func TestCalleeCaps(t *testing.T) {
	t.Parallel()
	mr, rdb := testredis.Mini(t)
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC) // 11:00 in Beijing
	mr.SetTime(now)
	g := newGate(t, rdb, now, func(c *Config) {
		c.CalleeCaps = map[string][]ratelimit.CalleeCap{
			"verify": {{Max: 1, Window: time.Minute}},
			"notify": {{Max: 2, Window: 24 * time.Hour}},
		}
	})
	ctx := t.Context()
	// Verify: the second job to the same number within a minute is throttled; a retry of the
	// same attempt is not double counted.
	v1 := job("j_v1", queue.KindVerify, "+8613800000001", now)
	for range 2 {
		if adm, err := g.Admit(ctx, v1, 1); err != nil || adm.Verdict != queue.Admit {
			t.Fatalf("first verify: %+v %v", adm, err)
		}
	}
	adm, err := g.Admit(ctx, job("j_v2", queue.KindVerify, "+8613800000001", now), 1)
	if err != nil || adm.Verdict != queue.Throttle || !strings.HasPrefix(adm.Reason, "callee_cap_1_per_1m") {
		t.Fatalf("second verify: %+v %v, want throttled by callee_cap_1_per_1m", adm, err)
	}
	if adm, _ := g.Admit(ctx, job("j_v3", queue.KindVerify, "+8613800000002", now), 1); adm.Verdict != queue.Admit {
		t.Errorf("another number throttled: %+v", adm)
	}
	// Notify: over the cap a job is deferred while its deadline allows, else throttled.
	for _, id := range []string{"j_n1", "j_n2"} {
		if adm, _ := g.Admit(ctx, job(id, queue.KindNotify, "+8613800000003", now), 1); adm.Verdict != queue.Admit {
			t.Fatalf("%s: %+v", id, adm)
		}
	}
	long := job("j_n3", queue.KindNotify, "+8613800000003", now)
	long.DispatchBy = now.Add(48 * time.Hour)
	if adm, _ := g.Admit(ctx, long, 1); adm.Verdict != queue.Defer || adm.Reason != "callee_cap" {
		t.Errorf("third notify with a long deadline: %+v, want defer", adm)
	}
	short := job("j_n4", queue.KindNotify, "+8613800000003", now)
	short.DispatchBy = now.Add(time.Hour)
	if adm, _ := g.Admit(ctx, short, 1); adm.Verdict != queue.Throttle {
		t.Errorf("third notify with a short deadline: %+v, want throttle", adm)
	}
	// Numbers never appear in Redis keys.
	for _, k := range mr.Keys() {
		if strings.Contains(k, "8613800000") {
			t.Errorf("key %q holds a phone number", k)
		}
	}
}

func TestSlotsAndRate(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"miniredis", "real"} {
		t.Run(backend, func(t *testing.T) {
			var rdb redis.UniversalClient
			if backend == "real" {
				_, rdb = testredis.Real(t)
			} else {
				_, rdb = testredis.Mini(t)
			}
			now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
			ctx := t.Context()
			g := newGate(t, rdb, now, func(c *Config) { c.MaxConcurrent = 2; c.Windows = nil })
			for _, id := range []string{"j_s1", "j_s2"} {
				if adm, err := g.Admit(ctx, job(id, queue.KindNotify, "+8613800000001", now), 1); err != nil || adm.Verdict != queue.Admit {
					t.Fatalf("%s: %+v %v", id, adm, err)
				}
			}
			adm, err := g.Admit(ctx, job("j_s3", queue.KindNotify, "+8613800000001", now), 1)
			if err != nil || adm.Verdict != queue.Defer || adm.Reason != "slots" || adm.Delay <= 0 {
				t.Fatalf("third call: %+v %v, want defer for slots", adm, err)
			}
			if err := g.Release(ctx, "j_s1"); err != nil {
				t.Fatal(err)
			}
			if adm, _ := g.Admit(ctx, job("j_s3", queue.KindNotify, "+8613800000001", now), 1); adm.Verdict != queue.Admit {
				t.Errorf("after a release: %+v", adm)
			}

			// A rate of 1/s: the second call within the short wait is deferred, not slept on,
			// and gives its slot back.
			r := newGate(t, rdb, now, func(c *Config) {
				c.Key = "rated"
				c.Windows = nil
				c.Rate = ratelimit.Limit{Rate: 1, Burst: 1}
				c.MaxWait = 50 * time.Millisecond
				c.MaxConcurrent = 5
			})
			if adm, _ := r.Admit(ctx, job("j_r1", queue.KindNotify, "+8613800000001", now), 1); adm.Verdict != queue.Admit {
				t.Fatalf("first rated call: %+v", adm)
			}
			adm, err = r.Admit(ctx, job("j_r2", queue.KindNotify, "+8613800000001", now), 1)
			if err != nil || adm.Verdict != queue.Defer || adm.Reason != "rate_limit" || adm.Delay <= 0 || adm.Delay > 1100*time.Millisecond {
				t.Fatalf("second rated call: %+v %v, want defer for rate_limit within 1.1s (1/rate with the 3%% margin)", adm, err)
			}
			if n, _ := r.slots.InUse(ctx, "rated"); n != 1 {
				t.Errorf("%d slots in use after a deferred call, want 1", n)
			}
		})
	}
}

func TestFailsClosed(t *testing.T) {
	t.Parallel()
	mr, rdb := testredis.Mini(t)
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	g := newGate(t, rdb, now, func(c *Config) { c.Rate = ratelimit.Limit{Rate: 10, Burst: 1}; c.Windows = nil })
	mr.Close()
	if _, err := g.Admit(t.Context(), job("j_x", queue.KindVerify, "+8613800000001", now), 1); err == nil {
		t.Fatal("Admit with Redis down admitted the call; want an error (fail closed)")
	}
}

// TestAdmitSetsSendBy: with a rate, an admitted job must leave within half the rate margin of
// its token's instant; without a rate there is no such limit.
func TestAdmitSetsSendBy(t *testing.T) {
	t.Parallel()
	_, rdb := testredis.Mini(t)
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	g := newGate(t, rdb, now, func(c *Config) {
		c.Key = "app-sendby"
		c.Rate = ratelimit.Limit{Rate: 100, Burst: 1}
		c.Margin = 0.04
		c.MaxConcurrent = 5
	})
	before := time.Now()
	adm, err := g.Admit(t.Context(), job("j_sendby", queue.KindVerify, "+8613800000001", now), 1)
	if err != nil {
		t.Fatal(err)
	}
	if adm.Verdict != queue.Admit {
		t.Fatalf("admission %+v, want admit", adm)
	}
	if lo, hi := before.Add(20*time.Millisecond), time.Now().Add(20*time.Millisecond); adm.SendBy.Before(lo) || adm.SendBy.After(hi) {
		t.Errorf("SendBy %v, want 20ms (half the 4%% margin) after the token, within [%v, %v]", adm.SendBy, lo, hi)
	}

	g = newGate(t, rdb, now, func(c *Config) { c.Key = "app-slots-only"; c.MaxConcurrent = 5 })
	adm, err = g.Admit(t.Context(), job("j_sendby2", queue.KindVerify, "+8613800000001", now), 1)
	if err != nil || adm.Verdict != queue.Admit || !adm.SendBy.IsZero() {
		t.Errorf("slots only: admission %+v, %v; want admit without SendBy", adm, err)
	}
}
