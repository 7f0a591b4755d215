package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zones must resolve in minimal images too: a missing zone would mean calling at night

	"github.com/nyaruka/phonenumbers"
)

const day = 24 * time.Hour

// Window is a daily calling window in the callee's local wall-clock time: Start and End are
// times of day as offsets from local midnight, read off the wall clock (08:00 is 8 h even on a
// day when DST makes midnight to 08:00 last 7 h).
//
//   - Start < End: open from Start up to, not including, End ("08:00-21:00").
//   - Start > End: the window spans midnight ("22:00-06:00" is open at night).
//   - Start == End: always open ("00:00-00:00" or "00:00-24:00").
type Window struct{ Start, End time.Duration }

// DefaultWindow is 08:00–21:00.
func DefaultWindow() Window { return Window{Start: 8 * time.Hour, End: 21 * time.Hour} }

// DefaultWindows are the windows per job kind: notify and bulk dial within DefaultWindow; kinds
// not in the map (verify, click2call) are exempt. The map is new on every call.
func DefaultWindows() map[string]Window {
	return map[string]Window{"notify": DefaultWindow(), "bulk": DefaultWindow()}
}

// ParseWindow reads "HH:MM-HH:MM" (24-hour clock; "24:00" only as the end). See Window for
// what equal or reversed ends mean.
func ParseWindow(s string) (Window, error) {
	fail := func(why string) (Window, error) {
		return Window{}, fmt.Errorf("ratelimit: parse window %q: %s; want HH:MM-HH:MM, e.g. 08:00-21:00", s, why)
	}
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return fail("no '-' between start and end")
	}
	start, err := parseClock(strings.TrimSpace(a))
	if err != nil {
		return fail("start: " + err.Error())
	}
	if start == day {
		return fail("start cannot be 24:00")
	}
	end, err := parseClock(strings.TrimSpace(b))
	if err != nil {
		return fail("end: " + err.Error())
	}
	if end == day {
		end = 0
	}
	return Window{Start: start, End: end}, nil
}

// parseClock reads HH:MM, 00:00 to 24:00.
func parseClock(s string) (time.Duration, error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) != 2 || len(ms) != 2 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	h, err1 := strconv.ParseUint(hs, 10, 8)
	m, err2 := strconv.ParseUint(ms, 10, 8)
	if err1 != nil || err2 != nil || h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not a time of day", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

// String formats the window as ParseWindow reads it.
func (w Window) String() string {
	f := func(d time.Duration) string {
		d %= day
		return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return f(w.Start) + "-" + f(w.End)
}

// Always reports whether the window never closes.
func (w Window) Always() bool { return w.Start%day == w.End%day }

// contains reports whether a time of day lies in the window.
func (w Window) contains(tod time.Duration) bool {
	start, end := w.Start%day, w.End%day
	switch {
	case start == end:
		return true
	case start < end:
		return tod >= start && tod < end
	default:
		return tod >= start || tod < end
	}
}

// timeOfDay is t's wall-clock time since local midnight in loc.
func timeOfDay(t time.Time, loc *time.Location) time.Duration {
	h, m, s := t.In(loc).Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second +
		time.Duration(t.Nanosecond())
}

// OpenAt reports whether the window is open at t in every zone (UTC if zones is empty).
func (w Window) OpenAt(t time.Time, zones []*time.Location) bool {
	if len(zones) == 0 {
		zones = []*time.Location{time.UTC}
	}
	for _, loc := range zones {
		if !w.contains(timeOfDay(t, loc)) {
			return false
		}
	}
	return true
}

// nextOpenHorizon bounds NextOpen's search: beyond it the zones never share an open moment.
const nextOpenHorizon = 400 * day

// NextOpen reports whether the window is open at now in every zone (UTC if zones is empty) and
// otherwise the next instant at which it is open in all of them at once. A number that may be
// in several zones is called only when it is daytime in each (conservative). If the zones
// never share an open moment (a short window across zones far apart), open is false and at is
// the zero time: the caller must decide, e.g. ask for a per-job zone.
//
// DST is exact: between two zone transitions every zone's wall clock runs at a fixed offset,
// so the earliest open instant in such a stretch is its start or one of the zones' Start
// times; the search walks from stretch to stretch.
func (w Window) NextOpen(now time.Time, zones []*time.Location) (open bool, at time.Time) {
	if len(zones) == 0 {
		zones = []*time.Location{time.UTC}
	}
	if w.Always() || w.OpenAt(now, zones) {
		return true, now
	}
	horizon := now.Add(nextOpenHorizon)
	for seg := now; seg.Before(horizon); {
		// The stretch [seg, end) in which no zone changes its offset.
		end := horizon
		for _, loc := range zones {
			if _, e := seg.In(loc).ZoneBounds(); !e.IsZero() && e.Before(end) {
				end = e
			}
		}
		if !seg.Equal(now) && w.OpenAt(seg, zones) {
			return false, seg // a transition moved some wall clock into the window
		}
		// Within a stretch the pattern repeats daily: one day of candidates is enough.
		limit := end
		if d := seg.Add(day); d.Before(limit) {
			limit = d
		}
		var best time.Time
		for _, loc := range zones {
			c := seg.Add(((w.Start%day-timeOfDay(seg, loc))%day + day) % day)
			if c.Before(limit) && (best.IsZero() || c.Before(best)) && w.OpenAt(c, zones) {
				best = c
			}
		}
		if !best.IsZero() {
			return false, best
		}
		seg = end
	}
	return false, time.Time{}
}

// ZonesForNumber returns the time zones an E.164 number may be in, from libphonenumber's
// time-zone map; a number spanning zones (e.g. a North American toll-free number) returns all
// of them. Unparseable numbers and unknown or unloadable zones fall back to UTC.
func ZonesForNumber(e164 string) []*time.Location {
	fallback := []*time.Location{time.UTC}
	num, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return fallback
	}
	names, err := phonenumbers.GetTimezonesForNumber(num)
	if err != nil {
		return fallback
	}
	var zones []*time.Location
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if name == phonenumbers.UNKNOWN_TIMEZONE || seen[name] {
			continue
		}
		seen[name] = true
		if loc, err := time.LoadLocation(name); err == nil {
			zones = append(zones, loc)
		}
	}
	if len(zones) == 0 {
		return fallback
	}
	return zones
}

// ZonesFor returns the zone named by override (an IANA name set on the job), or else the
// number's zones (ZonesForNumber).
func ZonesFor(e164, override string) ([]*time.Location, error) {
	if override == "" {
		return ZonesForNumber(e164), nil
	}
	if override == "Local" {
		return nil, fmt.Errorf("ratelimit: load time zone %q: not an IANA zone name: %w", override, ErrInvalid)
	}
	loc, err := time.LoadLocation(override)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: load time zone %q: %w", override, err)
	}
	return []*time.Location{loc}, nil
}
