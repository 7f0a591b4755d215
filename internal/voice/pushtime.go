package voice

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PushTimeLayout is the documented form of every time in pushes: UTC, no zone suffix (ref §6.1,
// §7.2).
const PushTimeLayout = "2006-01-02 15:04:05"

// PushTime is a CDR time. It parses "yyyy-MM-dd HH:mm:ss" in UTC leniently (an old sample has two
// spaces between date and time) and encodes in the documented layout. The zero value means absent.
type PushTime struct{ time.Time }

// ParsePushTime parses a push time string in UTC, tolerating runs of spaces between date and time.
func ParsePushTime(s string) (time.Time, error) {
	fields := strings.Fields(s)
	if len(fields) != 2 {
		return time.Time{}, fmt.Errorf("parse push time %q: want \"yyyy-MM-dd HH:mm:ss\"", s)
	}
	t, err := time.ParseInLocation(PushTimeLayout, fields[0]+" "+fields[1], time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse push time %q: %w", s, err)
	}
	return t, nil
}

// MarshalJSON encodes the time in the documented layout.
func (p PushTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(p.UTC().Format(PushTimeLayout))
}

// UnmarshalJSON accepts the documented string; an empty string is the zero time.
func (p *PushTime) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("push time must be a string: %w", err)
	}
	if strings.TrimSpace(s) == "" {
		p.Time = time.Time{}
		return nil
	}
	t, err := ParsePushTime(s)
	if err != nil {
		return err
	}
	p.Time = t
	return nil
}

// Timestamp is the `timestamp` of a status push. The official examples use the datetime string
// "yyyy-MM-dd HH:mm:ss" in UTC; demo code calls it a UNIX timestamp. Both are accepted: a datetime
// string first, then a number or numeric string of seconds, or of milliseconds when the value is
// 10^12 or more (13 digits: seconds that large are beyond the year 33000). Unix records which form
// was read so that a re-encoding keeps it.
type Timestamp struct {
	time.Time
	Unix bool
}

// unixMilliThreshold separates UNIX seconds from UNIX milliseconds in a numeric timestamp.
const unixMilliThreshold = 1_000_000_000_000

// MarshalJSON encodes the datetime string, or, when Unix is set, a number of seconds, or of
// milliseconds when the time has a sub-second part or its seconds would read as milliseconds, so
// that decoding the output gives back the same time.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.Unix {
		if t.Time.Nanosecond() != 0 || t.Time.Unix() >= unixMilliThreshold {
			return []byte(strconv.FormatInt(t.Time.UnixMilli(), 10)), nil
		}
		return []byte(strconv.FormatInt(t.Time.Unix(), 10)), nil
	}
	return json.Marshal(t.UTC().Format(PushTimeLayout))
}

// UnmarshalJSON accepts both documented forms.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	raw := strings.TrimSpace(string(b))
	if raw == "null" {
		*t = Timestamp{}
		return nil
	}
	if strings.HasPrefix(raw, `"`) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("parse timestamp: %w", err)
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*t = Timestamp{}
			return nil
		}
		if parsed, err := ParsePushTime(s); err == nil {
			*t = Timestamp{Time: parsed}
			return nil
		}
		raw = s
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("parse timestamp %s: want \"yyyy-MM-dd HH:mm:ss\" or UNIX seconds", b)
	}
	if n >= unixMilliThreshold {
		*t = Timestamp{Time: time.UnixMilli(n).UTC(), Unix: true}
		return nil
	}
	*t = Timestamp{Time: time.Unix(n, 0).UTC(), Unix: true}
	return nil
}
