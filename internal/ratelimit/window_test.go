package ratelimit

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in      string
		want    Window
		wantErr string
	}{
		{in: "08:00-21:00", want: Window{8 * time.Hour, 21 * time.Hour}},
		{in: " 09:30 - 17:45 ", want: Window{9*time.Hour + 30*time.Minute, 17*time.Hour + 45*time.Minute}},
		{in: "22:00-06:00", want: Window{22 * time.Hour, 6 * time.Hour}},
		{in: "00:00-24:00", want: Window{0, 0}},
		{in: "08:00-08:00", want: Window{8 * time.Hour, 8 * time.Hour}},
		{in: "", wantErr: "no '-'"},
		{in: "0800-2100", wantErr: "not HH:MM"},
		{in: "8:00-21:00", wantErr: "not HH:MM"},
		{in: "08:00-25:00", wantErr: "not a time of day"},
		{in: "08:60-21:00", wantErr: "not a time of day"},
		{in: "24:00-08:00", wantErr: "start cannot be 24:00"},
		{in: "24:30-08:00", wantErr: "not a time of day"},
		{in: "+8:00-21:00", wantErr: "not a time of day"},
		{in: "08:00-21:00-22:00", wantErr: "not HH:MM"},
		{in: "morning", wantErr: "no '-'"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ParseWindow(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "want HH:MM-HH:MM") {
					t.Fatalf("ParseWindow(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseWindow(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"08:00-21:00", "22:00-06:00", "00:00-24:00", "24:00-01:00", "x-y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWindow(s)
		if err != nil {
			return
		}
		if w.Start < 0 || w.Start >= day || w.End < 0 || w.End >= day {
			t.Fatalf("ParseWindow(%q) = %+v, outside a day", s, w)
		}
		again, err := ParseWindow(w.String())
		if err != nil || again != w {
			t.Fatalf("round trip of %q: %v → %v, %v", s, w, again, err)
		}
	})
}

func TestZonesForNumber(t *testing.T) {
	names := func(zones []*time.Location) []string {
		var out []string
		for _, z := range zones {
			out = append(out, z.String())
		}
		return out
	}
	tests := []struct {
		number  string
		want    []string // exact, unless contains is set
		contain string
		atLeast int
	}{
		{number: "+8613800000001", want: []string{"Asia/Shanghai"}},
		{number: "+12125550123", want: []string{"America/New_York"}},
		{number: "+447911123456", contain: "Europe/London"},
		{number: "+61412345678", want: []string{"Australia/Sydney"}},
		{number: "+18005550199", contain: "Pacific/Honolulu", atLeast: 10},
		{number: "+999123", want: []string{"UTC"}},
		{number: "not a number", want: []string{"UTC"}},
		{number: "", want: []string{"UTC"}},
	}
	for _, tt := range tests {
		t.Run(tt.number, func(t *testing.T) {
			got := names(ZonesForNumber(tt.number))
			switch {
			case tt.want != nil && !slices.Equal(got, tt.want):
				t.Errorf("ZonesForNumber(%q) = %v, want %v", tt.number, got, tt.want)
			case tt.contain != "" && !slices.Contains(got, tt.contain):
				t.Errorf("ZonesForNumber(%q) = %v, want it to contain %s", tt.number, got, tt.contain)
			case len(got) < tt.atLeast:
				t.Errorf("ZonesForNumber(%q) = %v, want at least %d zones", tt.number, got, tt.atLeast)
			}
		})
	}
}

func TestZonesForOverride(t *testing.T) {
	zones, err := ZonesFor(testNumber, "Asia/Tokyo")
	if err != nil || len(zones) != 1 || zones[0].String() != "Asia/Tokyo" {
		t.Errorf("ZonesFor with an override = %v, %v; want [Asia/Tokyo]", zones, err)
	}
	zones, err = ZonesFor(testNumber, "")
	if err != nil || len(zones) != 1 || zones[0].String() != "Asia/Shanghai" {
		t.Errorf("ZonesFor without an override = %v, %v; want [Asia/Shanghai]", zones, err)
	}
	for _, bad := range []string{"Mars/Olympus_Mons", "Local", "../../etc/passwd"} {
		if zones, err := ZonesFor(testNumber, bad); err == nil {
			t.Errorf("ZonesFor(%q) = %v, want an error", bad, zones)
		}
	}
}

func TestWindowNextOpen(t *testing.T) {
	def := DefaultWindow()
	zone := func(names ...string) []*time.Location {
		var out []*time.Location
		for _, n := range names {
			out = append(out, mustZone(t, n))
		}
		return out
	}
	number := ZonesForNumber
	tests := []struct {
		name   string
		window Window
		zones  []*time.Location
		now    time.Time
		open   bool
		at     time.Time // zero: never
	}{
		{"+86 midday is open", def, number("+8613800000001"), utc("2025-06-01 04:00"), true, utc("2025-06-01 04:00")},
		{"+86 late evening opens after midnight", def, number("+8613800000001"), utc("2025-06-01 15:30"), false, utc("2025-06-02 00:00")},
		{"+86 a minute before opening", def, number("+8613800000001"), utc("2025-06-01 23:59"), false, utc("2025-06-02 00:00")},
		{"+86 closes at the end", def, number("+8613800000001"), utc("2025-06-01 13:00"), false, utc("2025-06-02 00:00")},
		{"+1 212 the night DST starts", def, number("+12125550123"), utc("2025-03-09 03:00"), false, utc("2025-03-09 12:00")},
		{"+1 212 the night DST ends", def, number("+12125550123"), utc("2025-11-02 02:00"), false, utc("2025-11-02 13:00")},
		{"+44 the night DST starts", def, number("+447911123456"), utc("2025-03-29 21:30"), false, utc("2025-03-30 07:00")},
		{"+44 the night DST ends", def, number("+447911123456"), utc("2025-10-25 20:00"), false, utc("2025-10-26 08:00")},
		{"+61 the night DST ends", def, number("+61412345678"), utc("2025-04-05 11:00"), false, utc("2025-04-05 22:00")},
		{"+61 the night DST starts", def, number("+61412345678"), utc("2025-10-04 11:00"), false, utc("2025-10-04 21:00")},
		{"start inside the DST gap opens at the transition", Window{90 * time.Minute, 3 * time.Hour}, zone("Europe/London"), utc("2025-03-30 00:30"), false, utc("2025-03-30 01:00")},
		{"start repeated by DST opens the first time", Window{90 * time.Minute, 3 * time.Hour}, zone("America/New_York"), utc("2025-11-02 04:00"), false, utc("2025-11-02 05:30")},
		{"overnight window, midday", Window{22 * time.Hour, 6 * time.Hour}, zone("America/New_York"), utc("2025-06-02 16:00"), false, utc("2025-06-03 02:00")},
		{"overnight window, after midnight", Window{22 * time.Hour, 6 * time.Hour}, zone("America/New_York"), utc("2025-06-03 07:00"), true, utc("2025-06-03 07:00")},
		{"two zones wait for the later one", def, zone("America/New_York", "America/Los_Angeles"), utc("2025-06-02 12:00"), false, utc("2025-06-02 15:00")},
		{"two zones after the earlier one closed", def, zone("America/New_York", "America/Los_Angeles"), utc("2025-06-03 01:30"), false, utc("2025-06-03 15:00")},
		{"zones that never share an hour", Window{8 * time.Hour, 9 * time.Hour}, zone("UTC", "Asia/Tokyo"), utc("2025-06-03 01:30"), false, time.Time{}},
		{"always open", Window{}, number("+8613800000001"), utc("2025-06-01 18:00"), true, utc("2025-06-01 18:00")},
		{"no zones means UTC", def, nil, utc("2025-06-01 07:00"), false, utc("2025-06-01 08:00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open, at := tt.window.NextOpen(tt.now, tt.zones)
			if open != tt.open || !at.Equal(tt.at) {
				t.Errorf("NextOpen(%v) = %v, %v; want %v, %v", tt.now, open, at.UTC(), tt.open, tt.at)
			}
		})
	}
}

// bruteNextOpen scans minute by minute for up to four days.
func bruteNextOpen(w Window, now time.Time, zones []*time.Location) (time.Time, bool) {
	for m := range 4 * 24 * 60 {
		if t := now.Add(time.Duration(m) * time.Minute); w.OpenAt(t, zones) {
			return t, true
		}
	}
	return time.Time{}, false
}

// TestWindowNextOpenMatchesBruteForce checks NextOpen against a minute-by-minute scan over
// random instants, windows and zone sets, including half-hour DST (Lord Howe), quarter-hour
// offsets (Kathmandu, Chatham) and a number spanning many zones.
func TestWindowNextOpenMatchesBruteForce(t *testing.T) {
	pool := []string{"Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Sydney",
		"Australia/Lord_Howe", "America/Los_Angeles", "Pacific/Honolulu", "Asia/Kolkata",
		"Asia/Kathmandu", "Pacific/Chatham", "America/Santiago", "UTC"}
	rng := rand.New(rand.NewPCG(1, 2))
	year := utc("2025-01-01 00:00")
	tollFree := ZonesForNumber("+18005550199")
	for i := range 300 {
		var zones []*time.Location
		if i%50 == 0 {
			zones = tollFree
		} else {
			for range 1 + rng.IntN(3) {
				zones = append(zones, mustZone(t, pool[rng.IntN(len(pool))]))
			}
		}
		w := Window{Start: time.Duration(rng.IntN(96)) * 15 * time.Minute, End: time.Duration(rng.IntN(96)) * 15 * time.Minute}
		now := year.Add(time.Duration(rng.IntN(365*24*60)) * time.Minute)
		open, at := w.NextOpen(now, zones)
		want, found := bruteNextOpen(w, now, zones)
		switch {
		case found && (!at.Equal(want) || open != want.Equal(now)):
			t.Errorf("case %d: %v in %v at %v: NextOpen = %v, %v; brute force %v", i, w, zones, now, open, at.UTC(), want.UTC())
		case !found && !at.IsZero() && (!at.After(now.Add(4*day)) || !w.OpenAt(at, zones)):
			t.Errorf("case %d: %v in %v at %v: NextOpen = %v, brute force found nothing in 4 days", i, w, zones, now, at.UTC())
		}
	}
}

func BenchmarkNextOpenTollFree(b *testing.B) {
	zones := ZonesForNumber("+18005550199")
	now := utc("2025-06-03 01:30")
	w := DefaultWindow()
	for b.Loop() {
		w.NextOpen(now, zones)
	}
}
