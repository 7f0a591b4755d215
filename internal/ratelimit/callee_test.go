package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

const testNumber = "+8613800000001"

var testHashKey = []byte("test-hash-key-0123456789abcdef")

func TestDefaultCalleeCaps(t *testing.T) {
	want := map[string][]CalleeCap{
		"notify":     {{Max: 3, Window: 24 * time.Hour}, {Max: 10, Window: 720 * time.Hour}},
		"bulk":       {{Max: 3, Window: 24 * time.Hour}, {Max: 10, Window: 720 * time.Hour}},
		"verify":     {{Max: 1, Window: time.Minute}, {Max: 5, Window: time.Hour}},
		"click2call": {},
	}
	got := DefaultCalleeCaps()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DefaultCalleeCaps() = %v, want %v", got, want)
	}
	got["notify"][0].Max = 99
	if DefaultCalleeCaps()["notify"][0].Max != 3 {
		t.Error("DefaultCalleeCaps shares state between calls")
	}
	reasons := map[string]string{"notify": "callee_cap_3_per_24h", "verify": "callee_cap_1_per_1m"}
	for kind, r := range reasons {
		if got := want[kind][0].Reason(); got != r {
			t.Errorf("%s Reason() = %q, want %q", kind, got, r)
		}
	}
}

func TestParseCalleeCaps(t *testing.T) {
	tests := []struct {
		in      string
		want    []CalleeCap
		wantErr string
	}{
		{in: "3/24h,10/720h", want: []CalleeCap{{3, 24 * time.Hour}, {10, 720 * time.Hour}}},
		{in: " 10/30d , 3/24h ", want: []CalleeCap{{3, 24 * time.Hour}, {10, 720 * time.Hour}}},
		{in: "1/60s,5/1h", want: []CalleeCap{{1, time.Minute}, {5, time.Hour}}},
		{in: "", want: []CalleeCap{}},
		{in: "none", want: []CalleeCap{}},
		{in: "3", wantErr: "want MAX/WINDOW"},
		{in: "0/1h", wantErr: "max must be"},
		{in: "-1/1h", wantErr: "max must be"},
		{in: "x/1h", wantErr: "max must be"},
		{in: "3/", wantErr: "window"},
		{in: "3/tomorrow", wantErr: "window"},
		{in: "3/-1h", wantErr: "between 1ms and 366d"},
		{in: "3/400d", wantErr: "1d to 366d"},
		{in: "3/9000h", wantErr: "between 1ms and 366d"},
		{in: "3/24h,", wantErr: "want MAX/WINDOW"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ParseCalleeCaps(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCalleeCaps(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseCalleeCaps(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseCalleeCaps(f *testing.F) {
	for _, s := range []string{"3/24h,10/720h", "1/60s,5/1h", "10/30d", "none", "", "3/", "1/1ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		caps, err := ParseCalleeCaps(s)
		if err != nil {
			return
		}
		var parts []string
		for _, c := range caps {
			if c.Max < 1 || c.Window < time.Millisecond || c.Window > maxCalleeWindow {
				t.Fatalf("ParseCalleeCaps(%q) accepted %v", s, c)
			}
			parts = append(parts, c.String())
		}
		again, err := ParseCalleeCaps(strings.Join(parts, ","))
		if err != nil || !reflect.DeepEqual(again, caps) {
			t.Fatalf("round trip of %q: %v → %v, %v", s, caps, again, err)
		}
	})
}

func newTestCallee(b *backend, key []byte) *CalleeLimiter {
	return NewCalleeLimiter(b.rdb, key, CalleeOptions{hooks: b.hooks})
}

func mustCheck(t *testing.T, c *CalleeLimiter, group, number string, caps []CalleeCap, holder string) Decision {
	t.Helper()
	d, err := c.Check(context.Background(), group, number, caps, holder)
	if err != nil {
		t.Fatalf("Check(%s): %v", holder, err)
	}
	return d
}

func TestCalleeVerifyCaps(t *testing.T) {
	caps := DefaultCalleeCaps()["verify"] // 1/60s, 5/1h
	eachBackend(t, func(t *testing.T, b *backend) {
		c := newTestCallee(b, testHashKey)
		if d := mustCheck(t, c, "verify", testNumber, caps, "job-1:1"); !d.Allowed {
			t.Fatalf("first call = %+v, want allowed", d)
		}
		b.clock.Advance(20 * time.Second)
		if d := mustCheck(t, c, "verify", testNumber, caps, "job-1:1"); !d.Allowed {
			t.Errorf("same attempt again = %+v, want allowed (already counted)", d)
		}
		want := Decision{Reason: "callee_cap_1_per_1m", RetryAfter: 40 * time.Second}
		if d := mustCheck(t, c, "verify", testNumber, caps, "job-2:1"); d != want {
			t.Errorf("second job within 60 s = %+v, want %+v", d, want)
		}
		if d := mustCheck(t, c, "verify", "+8613800000002", caps, "job-3:1"); !d.Allowed {
			t.Errorf("another number = %+v, want allowed", d)
		}
		if d := mustCheck(t, c, "notify", testNumber, caps, "job-4:1"); !d.Allowed {
			t.Errorf("another group = %+v, want allowed", d)
		}
		// Calls at 0, 60, 120, 180, 240 s fill the hour.
		for i := 2; i <= 5; i++ {
			b.clock.Advance(40 * time.Second)
			if d := mustCheck(t, c, "verify", testNumber, caps, fmt.Sprintf("job-%d:2", i)); !d.Allowed {
				t.Fatalf("call %d a minute after the last = %+v, want allowed", i, d)
			}
			b.clock.Advance(20 * time.Second)
		}
		// Now t = 260 s: 1/60s would wait 40 s, 5/1h until the call at 0 s leaves the hour.
		want = Decision{Reason: "callee_cap_5_per_1h", RetryAfter: time.Hour - 260*time.Second}
		if d := mustCheck(t, c, "verify", testNumber, caps, "job-6:1"); d != want {
			t.Errorf("sixth call within the hour = %+v, want %+v", d, want)
		}
		b.clock.Advance(want.RetryAfter)
		if d := mustCheck(t, c, "verify", testNumber, caps, "job-6:1"); !d.Allowed {
			t.Errorf("call once the first left the hour = %+v, want allowed", d)
		}
		checkKeys(t, b.rdb)
	})
}

func TestCalleeNotifyDefaults(t *testing.T) {
	caps := DefaultCalleeCaps()["notify"] // 3/24h, 10/30d
	eachBackend(t, func(t *testing.T, b *backend) {
		c := newTestCallee(b, testHashKey)
		job := 0
		call := func() Decision {
			job++
			return mustCheck(t, c, "notify", testNumber, caps, fmt.Sprintf("job-%d:1", job))
		}
		// Three a day for three days, and one more on the fourth day: ten in 30 days.
		for d := range 4 {
			for i := range 3 {
				if d == 3 && i == 1 {
					break
				}
				if got := call(); !got.Allowed {
					t.Fatalf("day %d call %d = %+v, want allowed", d, i, got)
				}
				b.clock.Advance(time.Hour)
			}
			if d < 3 {
				if got := call(); got.Allowed || got.Reason != "callee_cap_3_per_24h" || got.RetryAfter != 21*time.Hour {
					t.Fatalf("day %d fourth call = %+v, want refused by 3/24h for 21h", d, got)
				}
			}
			b.clock.Advance(21 * time.Hour)
		}
		// Now t = 94 h with ten calls since 0 h: the first leaves the 30 days at 720 h.
		got := call()
		if want := 720*time.Hour - 94*time.Hour; got.Allowed || got.Reason != "callee_cap_10_per_720h" || got.RetryAfter != want {
			t.Fatalf("eleventh call = %+v, want refused by 10/720h for %v", got, want)
		}
	})
}

func TestCalleeKeysHideNumbers(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		ctx := context.Background()
		mustCheck(t, newTestCallee(b, testHashKey), "verify", testNumber, DefaultCalleeCaps()["verify"], "job-1:1")
		mustCheck(t, newTestCallee(b, []byte("another key")), "verify", testNumber, DefaultCalleeCaps()["verify"], "job-1:1")
		keys, err := b.rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 {
			t.Fatalf("keys = %v, want one per hash key", keys)
		}
		for _, k := range keys {
			if strings.Contains(k, "13800000001") {
				t.Errorf("key %q contains the number", k)
			}
		}
	})
}

func TestCalleeInvalidAndEmpty(t *testing.T) {
	mr, rdb := testredis.Mini(t)
	ctx := context.Background()
	caps := DefaultCalleeCaps()["verify"]
	tests := []struct {
		name    string
		key     []byte
		group   string
		number  string
		caps    []CalleeCap
		holder  string
		allowed bool
	}{
		{"no caps: allowed without Redis", testHashKey, "click2call", testNumber, nil, "h", true},
		{"no hash key", nil, "verify", testNumber, caps, "h", false},
		{"empty number", testHashKey, "verify", "", caps, "h", false},
		{"empty holder", testHashKey, "verify", testNumber, caps, "", false},
		{"empty group", testHashKey, "", testNumber, caps, "h", false},
		{"bad cap", testHashKey, "verify", testNumber, []CalleeCap{{0, time.Hour}}, "h", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewCalleeLimiter(rdb, tt.key).Check(ctx, tt.group, tt.number, tt.caps, tt.holder)
			if tt.allowed {
				if err != nil || !d.Allowed {
					t.Errorf("Check = %+v, %v; want allowed", d, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || d.Allowed {
				t.Errorf("Check = %+v, %v; want ErrInvalid", d, err)
			}
		})
	}
	if n := len(mr.Keys()); n != 0 {
		t.Errorf("%d keys written, want none", n)
	}
}
