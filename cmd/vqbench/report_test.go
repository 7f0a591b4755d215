package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

func TestResultLineAndOK(t *testing.T) {
	tests := []struct {
		name string
		r    result
		line string
		ok   bool
	}{
		{"ratio met", result{Name: "pipeline_jobs_per_second", Value: 4500, Anchor: 9000, Cmp: ratioAtLeast, Bound: 0.5},
			"bench: pipeline_jobs_per_second value=4500 anchor=9000 ratio=0.500 target=ratio>=0.50 ok=true", true},
		{"ratio missed", result{Name: "p", Value: 299, Anchor: 2917, Cmp: ratioAtLeast, Bound: 0.5},
			"bench: p value=299 anchor=2917 ratio=0.103 target=ratio>=0.50 ok=false", false},
		{"below bound", result{Name: "verify_p99_ms", Value: 187.5, Anchor: 80.9, Cmp: below, Bound: 250},
			"bench: verify_p99_ms value=188 anchor=80.90 ratio=2.318 target=value<250 ok=true", true},
		{"below is strict", result{Name: "x_ms", Value: 250, Anchor: 1, Cmp: below, Bound: 250},
			"bench: x_ms value=250 anchor=1 ratio=250.000 target=value<250 ok=false", false},
		{"at most, zero anchor", result{Name: "refusals", Value: 1, Anchor: 0, Cmp: atMost, Bound: 0},
			"bench: refusals value=1 anchor=0 ratio=NaN target=value<=0 ok=false", false},
		{"at least", result{Name: "ended", Value: 3000, Anchor: 3000, Cmp: atLeast, Bound: 3000},
			"bench: ended value=3000 anchor=3000 ratio=1.000 target=value>=3000 ok=true", true},
		{"error is never ok", result{Name: "e", Value: 1, Anchor: 1, Cmp: atLeast, Bound: 0, Err: fmt.Errorf("boom")},
			"bench: e value=1 anchor=1 ratio=1.000 target=value>=0 ok=false", false},
		{"NaN value is never ok", result{Name: "n", Value: math.NaN(), Anchor: 1, Cmp: atMost, Bound: 10},
			"bench: n value=NaN anchor=1 ratio=NaN target=value<=10 ok=false", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Line(); got != tt.line {
				t.Errorf("Line() = %q, want %q", got, tt.line)
			}
			if got := tt.r.OK(); got != tt.ok {
				t.Errorf("OK() = %v, want %v", got, tt.ok)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ds := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted on purpose
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one", ds(7), 99, 7 * time.Millisecond},
		{"median of 100", ds(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 100 is the 99th", ds(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the max", ds(hundred...), 100, 100 * time.Millisecond},
		{"nearest rank rounds up", ds(1, 2, 3), 50, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestWindowCountsDropsPartialSeconds(t *testing.T) {
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	secs := []voicesim.SecondCount{
		{Second: base, Calls: 40},                      // first second: partial
		{Second: base.Add(time.Second), Calls: 100},    // whole
		{Second: base.Add(2 * time.Second), Calls: 99}, // whole
		{Second: base.Add(3 * time.Second), Calls: 12}, // last second: partial
		{Second: base.Add(4 * time.Second), Calls: 5},  // after the window
	}
	from, to := base.Add(300*time.Millisecond), base.Add(3*time.Second+100*time.Millisecond)
	got := windowCounts(secs, from, to)
	if fmt.Sprint(got) != "[100 99]" {
		t.Fatalf("windowCounts = %v, want [100 99]", got)
	}
	if m := meanOf(got); m != 99.5 {
		t.Errorf("meanOf = %v, want 99.5", m)
	}
	if m := meanOf(nil); m != 0 {
		t.Errorf("meanOf(nil) = %v, want 0", m)
	}
}

func TestBenchDB(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		db      int
		want    string
		wantErr string
	}{
		{"picks the database", "redis://127.0.0.1:6379/0", 15, "redis://127.0.0.1:6379/15", ""},
		{"keeps credentials", "redis://:pw@localhost:6379/3", 13, "redis://:pw@localhost:6379/13", ""},
		{"never db 0", "redis://127.0.0.1:6379/0", 0, "", "never 0"},
		{"no db 16", "redis://127.0.0.1:6379/0", 16, "", "1-15"},
		{"loopback only", "redis://10.0.0.5:6379/0", 15, "", "loopback"},
		{"standalone only", "redis+cluster://127.0.0.1:7000", 15, "", "standalone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, opts, err := benchDB(tt.url, tt.db)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("benchDB error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || opts.DB != tt.db {
				t.Errorf("benchDB = %q (db %d), want %q (db %d)", got, opts.DB, tt.want, tt.db)
			}
		})
	}
}

func TestParseInfoAndTopCommands(t *testing.T) {
	before := redisInfo{usec: map[string]int64{"evalsha": 1000, "get": 10}, calls: map[string]int64{"evalsha": 10, "get": 5}}
	after := redisInfo{usec: map[string]int64{"evalsha": 5000, "get": 210, "set": 50}, calls: map[string]int64{"evalsha": 50, "get": 25, "set": 10}}
	got := before.topCommands(after, 10, 2)
	want := "EVALSHA 4.00 calls 400 µs; GET 2.00 calls 20 µs"
	if got != want {
		t.Errorf("topCommands = %q, want %q", got, want)
	}
	info := parseInfo("# Stats\r\ntotal_commands_processed:42\r\ncmdstat_get:calls=5,usec=10,usec_per_call=2.00\r\n")
	if info["total_commands_processed"] != "42" || !strings.HasPrefix(info["cmdstat_get"], "calls=5") {
		t.Errorf("parseInfo = %v", info)
	}
}

// Each criterion prints as one line that scripts can parse.
func Example() {
	r := result{Name: "verify_p99_ms", Value: 187.5, Anchor: 80.9, Cmp: below, Bound: 250}
	fmt.Println(r.Line())
	// Output: bench: verify_p99_ms value=188 anchor=80.90 ratio=2.318 target=value<250 ok=true
}

func TestPctMissing(t *testing.T) {
	d := func(ms ...int) []time.Duration {
		out := make([]time.Duration, len(ms))
		for i, v := range ms {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name    string
		dialled []time.Duration
		missing int
		p       float64
		want    float64
	}{
		{"none missing", d(30, 10, 20), 0, 100, 30},
		{"median unaffected", d(10, 20, 30), 1, 50, 20},
		{"rank on a missing job", d(10, 20, 30), 1, 99, math.Inf(1)},
		{"all missing", nil, 2, 50, math.Inf(1)},
		{"nothing at all", nil, 0, 50, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pctMissing(tt.dialled, tt.missing, tt.p)
			if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
				t.Errorf("pctMissing = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBenchPayload(t *testing.T) {
	for _, tc := range []struct {
		i  int
		id string
	}{{0, ""}, {9_999, "j_abcdefghijklmnopqrst"}, {123, "x"}} {
		p := benchPayload(tc.i, tc.id)
		if len(p) != benchPayloadSize {
			t.Errorf("benchPayload(%d, %q) is %d bytes, want %d", tc.i, tc.id, len(p), benchPayloadSize)
		}
		i, id, err := parseBenchPayload(p)
		if err != nil || i != tc.i || id != tc.id {
			t.Errorf("parseBenchPayload(benchPayload(%d, %q)) = %d, %q, %v", tc.i, tc.id, i, id, err)
		}
	}
	for _, bad := range []string{"", "x", "12", "a b c", "12 id"} {
		if _, _, err := parseBenchPayload([]byte(bad)); err == nil {
			t.Errorf("parseBenchPayload(%q): no error", bad)
		}
	}
}
