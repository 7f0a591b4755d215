package jobstatus

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one applied state change. Times are kept with millisecond precision.
type Event struct {
	State     State     `json:"state"`
	At        time.Time `json:"at"`
	Attempt   int       `json:"attempt,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	Source    string    `json:"source"`           // "api", "worker", "status_push", "cdr_push", "redial"…
	Detail    string    `json:"detail,omitempty"` // reason text, provider code…; never a phone number or code
}

// CDR is the summary of the provider's call detail record.
type CDR struct {
	DurationSeconds int        `json:"duration_seconds"`
	Outcome         string     `json:"outcome"` // completed busy no_answer rejected invalid_number unreachable network_failure barred platform_policy playback_failure
	StateCode       *int       `json:"state_code,omitempty"`
	Q850            int        `json:"q850,omitempty"`
	ULFailReason    int        `json:"ul_fail_reason,omitempty"`
	SIPStatusCode   int        `json:"sip_status_code,omitempty"`
	AnsweredAt      *time.Time `json:"answered_at,omitempty"`
	EndedAt         *time.Time `json:"ended_at,omitempty"`
}

// Record is a job as stored and as returned by the API. It has no field for a verification code,
// and To holds a masked number only (Create refuses an unmasked one).
type Record struct {
	ID             string     `json:"id"`
	Kind           string     `json:"kind"`
	Queue          string     `json:"queue,omitempty"`
	State          State      `json:"state"`
	Attempts       int        `json:"attempts"`
	SessionID      string     `json:"session_id,omitempty"` // the current call's sessionId
	To             string     `json:"to,omitempty"`         // masked, e.g. +86138****0001
	CallbackURL    string     `json:"callback_url,omitempty"`
	IdempotencyKey string     `json:"idempotency_key,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	ScheduledAt    *time.Time `json:"scheduled_at,omitempty"`
	DispatchBy     time.Time  `json:"dispatch_by"` // the TTL deadline; zero when none
	Reason         string     `json:"reason,omitempty"`
	Digits         string     `json:"digits,omitempty"` // DTMF collected
	Events         []Event    `json:"events"`
	CDR            *CDR       `json:"cdr,omitempty"`

	// DialAttempt and DialStartedAt are set while a dial is open: BeginDial granted it and no
	// result (calling…, a final state, or a move back to the queue) has been recorded since.
	DialAttempt   int        `json:"dial_attempt,omitempty"`
	DialStartedAt *time.Time `json:"dial_started_at,omitempty"`
}

// idEncoding is lower-case base32 without padding: URL-safe and unambiguous to read aloud.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a new job ID: "j_" and 20 base32 characters (100 random bits from crypto/rand).
func NewID() string {
	var b [13]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return "j_" + idEncoding.EncodeToString(b[:])[:20]
}

// validID reports whether id can name a job: 1–64 characters from [A-Za-z0-9_-]. Anything else
// (braces, colons, spaces) is refused so that an ID from a URL or a push cannot shape a key.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// maxDigitRun is the longest run of digits a masked number may hold ("+86138****0001" has 5).
const maxDigitRun = 6

// looksUnmasked reports whether v holds a run of more than maxDigitRun digits: a full phone number.
func looksUnmasked(v string) bool {
	run := 0
	for i := 0; i < len(v); i++ {
		if v[i] >= '0' && v[i] <= '9' {
			run++
			if run > maxDigitRun {
				return true
			}
			continue
		}
		run = 0
	}
	return false
}

// Limits that keep one record small.
const (
	maxSourceLen = 32
	maxDetailLen = 200
	maxDigitsLen = 64
	maxEvents    = 50 // beyond this the oldest events after the first are dropped
)

// cleanSource makes a source safe for the event encoding ('|' separates fields).
func cleanSource(s string) string {
	s = strings.ReplaceAll(s, "|", "_")
	return truncate(s, maxSourceLen)
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// --- Stored form -------------------------------------------------------------------------------
//
// A record is stored as one string of compact JSON with short keys (one key per job, well under
// 1 KiB for a finished call), read and rewritten by the Lua scripts with cjson:
//
//	k kind, q queue, s state, a attempts, to, cb callback URL, ik idempotency key,
//	c created (unix ms), u updated (unix ms), sa scheduled_at (unix ms), db dispatch_by (unix ms),
//	r reason, d digits, ss every sessionId seen (in order), si index in ss of the current one
//	(1-based, absent = none), e events, cdr CDR, dm/dt/dk attempt, start (unix ms) and token of the open dial.
//
// An event is one string "state|Δms since created|attempt|session index|source|detail" (empty
// fields stay empty; detail is last so it may hold '|'). The job ID is not stored: it is in the key.
// Empty tables are never written (cjson and miniredis' JSON differ on them: {} versus []).

type stored struct {
	K   string     `json:"k"`
	Q   string     `json:"q,omitempty"`
	S   State      `json:"s"`
	A   num        `json:"a,omitempty"`
	To  string     `json:"to,omitempty"`
	CB  string     `json:"cb,omitempty"`
	IK  string     `json:"ik,omitempty"`
	C   num        `json:"c"`
	U   num        `json:"u"`
	SA  num        `json:"sa,omitempty"`
	DB  num        `json:"db,omitempty"`
	R   string     `json:"r,omitempty"`
	D   string     `json:"d,omitempty"`
	SS  []string   `json:"ss,omitempty"`
	SI  num        `json:"si,omitempty"`
	E   []string   `json:"e"`
	CDR *storedCDR `json:"cdr,omitempty"`
	DM  num        `json:"dm,omitempty"`
	DT  num        `json:"dt,omitempty"`
	DK  string     `json:"dk,omitempty"` // the dial token of the open dial (Store.BeginDialAs)
}

type storedCDR struct {
	D   num    `json:"d"`
	O   string `json:"o"`
	SC  *num   `json:"sc,omitempty"`
	Q   num    `json:"q,omitempty"`
	UL  num    `json:"ul,omitempty"`
	SIP num    `json:"sip,omitempty"`
	AA  num    `json:"aa,omitempty"`
	EA  num    `json:"ea,omitempty"`
}

// num is an integer that also decodes from the float syntax Lua's JSON encoders may produce
// ("1.7e+12"): every number the scripts rewrite passes through a Lua double.
type num int64

func (n *num) UnmarshalJSON(b []byte) error {
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		*n = num(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("decode number %q: %w", b, err)
	}
	*n = num(f)
	return nil
}

func ms(t time.Time) num { return num(t.UnixMilli()) }

func fromMS(v num) time.Time { return time.UnixMilli(int64(v)).UTC() }

func optMS(t *time.Time) num {
	if t == nil || t.IsZero() {
		return 0
	}
	return ms(*t)
}

func optTime(v num) *time.Time {
	if v == 0 {
		return nil
	}
	t := fromMS(v)
	return &t
}

func encodeCDR(c *CDR) (string, error) {
	sc := storedCDR{
		D: num(c.DurationSeconds), O: c.Outcome, Q: num(c.Q850), UL: num(c.ULFailReason),
		SIP: num(c.SIPStatusCode), AA: optMS(c.AnsweredAt), EA: optMS(c.EndedAt),
	}
	if c.StateCode != nil {
		v := num(*c.StateCode)
		sc.SC = &v
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return "", fmt.Errorf("encode cdr: %w", err)
	}
	return string(b), nil
}

func (c *storedCDR) record() *CDR {
	out := &CDR{
		DurationSeconds: int(c.D), Outcome: c.O, Q850: int(c.Q), ULFailReason: int(c.UL),
		SIPStatusCode: int(c.SIP), AnsweredAt: optTime(c.AA), EndedAt: optTime(c.EA),
	}
	if c.SC != nil {
		v := int(*c.SC)
		out.StateCode = &v
	}
	return out
}

// encodeNew builds the stored form of a record about to be created, with its first event.
func encodeNew(rec Record, first Event) (string, error) {
	st := stored{
		K: rec.Kind, Q: rec.Queue, S: rec.State, A: num(rec.Attempts), To: rec.To,
		CB: rec.CallbackURL, IK: rec.IdempotencyKey, C: ms(rec.CreatedAt), U: ms(rec.CreatedAt),
		SA: optMS(rec.ScheduledAt), DB: optMS(&rec.DispatchBy),
		E: []string{encodeEvent(first, rec.CreatedAt, 0)},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(st); err != nil {
		return "", fmt.Errorf("encode record: %w", err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// builtRecord is what decodeRecord returns for encodeNew(rec, first), without the JSON round
// trip: the record Create has just written, as it is stored (times in UTC to the millisecond,
// source and detail cleaned). ok is false when a text field is not valid UTF-8, which the JSON
// encoder would have altered: the caller then decodes the stored form instead.
func builtRecord(rec Record, first Event) (out Record, ok bool) {
	for _, v := range []string{rec.Kind, rec.Queue, rec.To, rec.CallbackURL, rec.IdempotencyKey, first.Source, first.Detail} {
		if !utf8.ValidString(v) {
			return Record{}, false
		}
	}
	created := fromMS(ms(rec.CreatedAt))
	out = Record{
		ID: rec.ID, Kind: rec.Kind, Queue: rec.Queue, State: rec.State, Attempts: rec.Attempts, To: rec.To,
		CallbackURL: rec.CallbackURL, IdempotencyKey: rec.IdempotencyKey, CreatedAt: created, UpdatedAt: created,
		ScheduledAt: optTime(optMS(rec.ScheduledAt)),
		Events: []Event{{
			State: first.State, At: created, Attempt: first.Attempt,
			Source: cleanSource(first.Source), Detail: truncate(first.Detail, maxDetailLen),
		}},
	}
	if db := optMS(&rec.DispatchBy); db != 0 {
		out.DispatchBy = fromMS(db)
	}
	return out, true
}

func encodeEvent(e Event, created time.Time, sessionIndex int) string {
	var b strings.Builder
	b.WriteString(string(e.State))
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(e.At.UnixMilli()-created.UnixMilli(), 10))
	b.WriteByte('|')
	if e.Attempt > 0 {
		b.WriteString(strconv.Itoa(e.Attempt))
	}
	b.WriteByte('|')
	if sessionIndex > 0 {
		b.WriteString(strconv.Itoa(sessionIndex))
	}
	b.WriteByte('|')
	b.WriteString(cleanSource(e.Source))
	b.WriteByte('|')
	b.WriteString(truncate(e.Detail, maxDetailLen))
	return b.String()
}

// decodeRecord turns the stored form back into a Record.
func decodeRecord(id, raw string) (Record, error) {
	var st stored
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return Record{}, fmt.Errorf("decode record %s: %w", id, err)
	}
	created := fromMS(st.C)
	rec := Record{
		ID: id, Kind: st.K, Queue: st.Q, State: st.S, Attempts: int(st.A), To: st.To,
		CallbackURL: st.CB, IdempotencyKey: st.IK, CreatedAt: created, UpdatedAt: fromMS(st.U),
		ScheduledAt: optTime(st.SA), Reason: st.R, Digits: st.D, Events: make([]Event, 0, len(st.E)),
	}
	if st.DB != 0 {
		rec.DispatchBy = fromMS(st.DB)
	}
	if si := int(st.SI); si > 0 && si <= len(st.SS) {
		rec.SessionID = st.SS[si-1]
	}
	for _, line := range st.E {
		ev, err := decodeEvent(line, created, st.SS)
		if err != nil {
			return Record{}, fmt.Errorf("decode record %s: %w", id, err)
		}
		rec.Events = append(rec.Events, ev)
	}
	if st.CDR != nil {
		rec.CDR = st.CDR.record()
	}
	if st.DM > 0 {
		rec.DialAttempt = int(st.DM)
		rec.DialStartedAt = optTime(st.DT)
	}
	return rec, nil
}

func decodeEvent(line string, created time.Time, sessions []string) (Event, error) {
	f := strings.SplitN(line, "|", 6)
	if len(f) != 6 {
		return Event{}, fmt.Errorf("decode event %q: want 6 fields, got %d", line, len(f))
	}
	st, err := ParseState(f[0])
	if err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	delta, err := strconv.ParseFloat(f[1], 64) // a Lua number; integral in practice
	if err != nil {
		return Event{}, fmt.Errorf("decode event time %q: %w", f[1], err)
	}
	ev := Event{State: st, At: created.Add(time.Duration(delta) * time.Millisecond), Source: f[4], Detail: f[5]}
	if f[2] != "" {
		if ev.Attempt, err = strconv.Atoi(f[2]); err != nil {
			return Event{}, fmt.Errorf("decode event attempt %q: %w", f[2], err)
		}
	}
	if f[3] != "" {
		i, err := strconv.Atoi(f[3])
		if err != nil || i < 1 || i > len(sessions) {
			return Event{}, fmt.Errorf("decode event session index %q: out of range", f[3])
		}
		ev.SessionID = sessions[i-1]
	}
	return ev, nil
}
