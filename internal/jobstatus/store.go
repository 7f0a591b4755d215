package jobstatus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotFound: no such job (never created, expired after Retention, or a malformed ID).
	ErrNotFound = errors.New("jobstatus: job not found")
	// ErrConflict: the job's current state does not allow the change (a From guard failed, Cancel
	// after dispatch, BeginDial on a finished job). The current record is returned beside it.
	ErrConflict = errors.New("jobstatus: state does not allow this change")
	// ErrInvalid: a bad argument (unknown state, unmasked number, bad ID…): a programming error.
	ErrInvalid = errors.New("jobstatus: invalid argument")
)

// Defaults for Options.
const (
	DefaultKeyPrefix      = "voicequeue"
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultIdempotencyTTL = 24 * time.Hour
)

// Options configures a Store. Zero values take the defaults.
type Options struct {
	KeyPrefix      string        // default "voicequeue"
	Retention      time.Duration // how long a record lives after its last change; default 7 days
	IdempotencyTTL time.Duration // how long an idempotency key maps to its job; default 24 h, at most Retention
	Now            func() time.Time
}

// Store keeps job records in Redis. It is safe for concurrent use; every method is one atomic
// script on one key, so any number of gateways and workers can share it.
type Store struct {
	rdb       redis.UniversalClient
	keys      keys
	retention time.Duration
	idemTTL   time.Duration
	now       func() time.Time
}

// New returns a Store on rdb. An IdempotencyTTL longer than Retention is cut to Retention: an
// idempotency key must never outlive its record, or a repeated request could create the job again.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = DefaultKeyPrefix
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = DefaultIdempotencyTTL
	}
	opts.IdempotencyTTL = min(opts.IdempotencyTTL, opts.Retention)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{
		rdb: rdb, keys: keys{prefix: opts.KeyPrefix}, retention: opts.Retention,
		idemTTL: opts.IdempotencyTTL, now: opts.Now,
	}
}

// Create records a new job and returns it as stored. created reports whether this call wrote it:
// the caller that gets true, and only that one, enqueues the job.
//
// An empty rec.ID gets NewID(); an empty State becomes queued (queued and scheduled are the only
// states a job can start in); a zero CreatedAt becomes now. rec.To must be masked. The record
// starts with one event in its state, from source "api" unless rec.Events holds exactly one event,
// whose Source and Detail are used. SessionID, Digits, Reason and CDR must be empty.
//
// With rec.IdempotencyKey set, a known key returns the job it names and false, never a second
// job. The key is claimed in its own index first (one slot), then the record is written only if
// absent (the job's slot): two round trips, safe on Redis Cluster. A caller that finds a claimed
// key whose record is not written yet (the claimer is between its two steps, or crashed there)
// writes the record itself under the claimed ID; whichever write lands first wins, so exactly one
// caller sees created = true. Without a key, an existing rec.ID is returned unchanged with false.
func (s *Store) Create(ctx context.Context, rec Record) (Record, bool, error) {
	first, err := s.prepareCreate(&rec)
	if err != nil {
		return Record{}, false, fmt.Errorf("create job: %w", err)
	}
	if rec.IdempotencyKey != "" {
		id, err := claimScript.Run(ctx, s.rdb, []string{s.keys.idem(rec.IdempotencyKey)},
			rec.ID, s.idemTTL.Milliseconds()).Text()
		if err != nil {
			return Record{}, false, fmt.Errorf("create job: claim idempotency key: %w", err)
		}
		if !validID(id) {
			return Record{}, false, fmt.Errorf("create job: idempotency index holds a bad job ID %q", id)
		}
		rec.ID = id
	}
	raw, err := encodeNew(rec, first)
	if err != nil {
		return Record{}, false, fmt.Errorf("create job: %w", err)
	}
	res, err := createScript.Run(ctx, s.rdb, []string{s.keys.job(rec.ID)}, raw, s.retention.Milliseconds()).Slice()
	if err != nil {
		return Record{}, false, fmt.Errorf("create job: %w", err)
	}
	out, created, err := createReply(rec, first, raw, res)
	if err != nil {
		return Record{}, false, fmt.Errorf("create job: %w", err)
	}
	return out, created, nil
}

// createReply reads createScript's reply. When this call wrote the record it returns the record
// it built, without decoding anything (raw is what it wrote, decoded only in the rare case
// builtRecord declines); otherwise the stored record.
func createReply(rec Record, first Event, raw string, res []any) (Record, bool, error) {
	var created int64
	if len(res) > 0 {
		created, _ = res[0].(int64)
	}
	switch {
	case created == 1 && len(res) == 1:
		if out, ok := builtRecord(rec, first); ok {
			return out, true, nil
		}
		out, err := decodeRecord(rec.ID, raw)
		return out, true, err
	case created == 0 && len(res) == 2:
		stored, _ := res[1].(string)
		out, err := decodeRecord(rec.ID, stored)
		return out, false, err
	}
	return Record{}, false, fmt.Errorf("unexpected script reply %v", res)
}

func (s *Store) prepareCreate(rec *Record) (Event, error) {
	if rec.ID == "" {
		rec.ID = NewID()
	} else if !validID(rec.ID) {
		return Event{}, fmt.Errorf("%w: id %q: want 1-64 characters of [A-Za-z0-9_-]", ErrInvalid, rec.ID)
	}
	if rec.Kind == "" {
		return Event{}, fmt.Errorf("%w: kind is empty", ErrInvalid)
	}
	if rec.State == "" {
		rec.State = StateQueued
	}
	if rec.State != StateQueued && rec.State != StateScheduled {
		return Event{}, fmt.Errorf("%w: a job starts queued or scheduled, not %q", ErrInvalid, rec.State)
	}
	if looksUnmasked(rec.To) {
		return Event{}, fmt.Errorf("%w: to must be a masked number", ErrInvalid)
	}
	if rec.Attempts < 0 {
		return Event{}, fmt.Errorf("%w: attempts %d", ErrInvalid, rec.Attempts)
	}
	if rec.SessionID != "" || rec.Digits != "" || rec.Reason != "" || rec.CDR != nil || rec.DialAttempt != 0 {
		return Event{}, fmt.Errorf("%w: a new job has no session, digits, reason, cdr or dial", ErrInvalid)
	}
	if len(rec.Events) > 1 {
		return Event{}, fmt.Errorf("%w: a new job has at most one (creation) event", ErrInvalid)
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = s.now()
	}
	rec.CreatedAt = rec.CreatedAt.Truncate(time.Millisecond)
	first := Event{State: rec.State, At: rec.CreatedAt, Attempt: rec.Attempts, Source: "api"}
	if len(rec.Events) == 1 {
		first.Source, first.Detail = rec.Events[0].Source, rec.Events[0].Detail
	}
	return first, nil
}

// Get returns the job's record, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	if !validID(id) {
		return Record{}, fmt.Errorf("get job: %w", ErrNotFound)
	}
	raw, err := s.rdb.Get(ctx, s.keys.job(id)).Result()
	if errors.Is(err, redis.Nil) {
		return Record{}, fmt.Errorf("get job: %w", ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get job: %w", err)
	}
	return decodeRecord(id, raw)
}

// Transition is one proposed change to a job.
type Transition struct {
	To        State
	At        time.Time // when it happened (event time); zero = now
	Source    string    // "api", "worker", "status_push", "cdr_push", "redial"…
	Attempt   int       // raises Record.Attempts when greater
	SessionID string    // the provider call this change is about
	Detail    string    // reason text, provider code…; never a phone number or verification code
	// From, when set, makes a worker-controlled move: it applies only if the current state is one
	// of these, whatever the ranks (dispatching→queued for a retry, busy→queued for a redial…),
	// and fails with ErrConflict otherwise.
	From   []State
	CDR    *CDR   // attached once; a re-sent CDR changes nothing
	Digits string // DTMF collected; recorded once
	// AnsweredTo, when set, replaces To, and AnsweredDetail replaces Detail, if the job is
	// answered when the change is applied: a disconnect push's outcome depends on whether the
	// call was answered, which only the record knows (decided in the same atomic step).
	AnsweredTo     State
	AnsweredDetail string
	// RefuseOlderAttempt makes Attempt a guard: when it is lower than the record's Attempts, the
	// change is from an earlier attempt of a redialled job and nothing changes
	// (Outcome.StaleAttempt).
	RefuseOlderAttempt bool
}

// Outcome says what a Transition did.
type Outcome struct {
	Changed     bool  // the record was written (state, session, attempts, CDR or digits)
	BecameFinal bool  // the state changed to a final one from a non-final one or from unknown: fire the webhook
	Previous    State // the state before
	// StaleSession: the transition named a sessionId that is not the job's current call (a late
	// push from an earlier attempt) and was ignored.
	StaleSession bool
	// StaleAttempt: Transition.RefuseOlderAttempt found an Attempt lower than the record's
	// attempts (a push of an earlier attempt of a redialled job) and nothing changed.
	StaleAttempt bool
}

// Transition applies t to the job atomically, in one script and one round trip, and returns the
// record after it. The rules:
//
//   - Ranks: queued = scheduled (0) < dispatching (1) < calling (2) < ringing (3) < answered (4)
//     < every final state (5). Without From, the state changes only if To ranks higher than the
//     current state; the same state again, or a lower one, changes no state and adds no event.
//   - A final state never changes (a late or duplicated push after the end changes nothing),
//     except unknown: a later push or CDR resolves it to calling, ringing, answered or any other
//     final state.
//   - With From, see Transition.From. A move back to queued, scheduled or dispatching starts the
//     job afresh: the current session, CDR and digits are cleared (earlier events are kept).
//   - Each state change appends one Event (State To, At, Attempt, SessionID, Source, Detail). A
//     change to a final state sets Reason to Detail; any other change clears Reason.
//   - Sessions: the first SessionID a job sees becomes its current session. A different one, or
//     one from before a move back to the queue, is stale: nothing changes (Outcome.StaleSession).
//     A transition with a SessionID also writes the sessionId → job index (LookupSession) if it
//     does not exist yet (SET NX), in the same round trip.
//   - AnsweredTo and RefuseOlderAttempt are decided on the record in the same script: an older
//     attempt is refused before anything else; AnsweredTo then replaces To when the job is
//     answered.
//   - CDR: attached if the job has none, whatever the state. A CDR before the disconnect push sets
//     both the final state (t.To) and the CDR; the later push changes nothing. A CDR for a job
//     already final (say completed by the disconnect push) attaches without a state change and
//     without an event: events are state changes only; the CDR is in Record.CDR.
//   - Digits are recorded once, the same way. Attempt raises Attempts when greater.
//   - Any change refreshes UpdatedAt and the record's TTL (Retention).
//
// A job that does not exist gives ErrNotFound; a failed From guard gives the current record,
// Outcome{Previous: current} and ErrConflict.
func (s *Store) Transition(ctx context.Context, id string, t Transition) (Record, Outcome, error) {
	return s.transition(ctx, id, t, true)
}

// Apply is Transition for callers that need the record only when the job has just become final
// (a push handler, whose Finisher needs it then): the same rules, script and single round trip,
// but the record travels back and is decoded only when out.BecameFinal. Otherwise, including
// with ErrConflict, the Record is the zero value.
func (s *Store) Apply(ctx context.Context, id string, t Transition) (Record, Outcome, error) {
	return s.transition(ctx, id, t, false)
}

func (s *Store) transition(ctx context.Context, id string, t Transition, full bool) (Record, Outcome, error) {
	if !validID(id) {
		return Record{}, Outcome{}, fmt.Errorf("transition job: %w", ErrNotFound)
	}
	args, err := s.transitionArgs(t, full)
	if err != nil {
		return Record{}, Outcome{}, fmt.Errorf("transition job: %w", err)
	}
	res, err := s.runTransition(ctx, id, t.SessionID, args)
	if err != nil {
		return Record{}, Outcome{}, fmt.Errorf("transition job: %w", err)
	}
	status, _ := res[0].(string)
	if status == "notfound" {
		return Record{}, Outcome{}, fmt.Errorf("transition job: %w", ErrNotFound)
	}
	if len(res) != 6 {
		return Record{}, Outcome{}, fmt.Errorf("transition job: unexpected script reply %v", res)
	}
	raw, _ := res[1].(string)
	changed, _ := res[2].(int64)
	stateChanged, _ := res[3].(int64)
	prev, _ := res[4].(string)
	to, _ := res[5].(string)
	var rec Record
	if raw != "" {
		if rec, err = decodeRecord(id, raw); err != nil {
			return Record{}, Outcome{}, fmt.Errorf("transition job: %w", err)
		}
	}
	out := Outcome{Changed: changed == 1, Previous: State(prev)}
	switch status {
	case "ok":
		out.BecameFinal = stateChanged == 1 && State(to).Final() && (!out.Previous.Final() || out.Previous == StateUnknown)
		return rec, out, nil
	case "stale":
		out.StaleSession = true
		return rec, out, nil
	case "oldattempt":
		out.StaleAttempt = true
		return rec, out, nil
	case "conflict":
		return rec, out, fmt.Errorf("transition job from %s to %s: %w", prev, to, ErrConflict)
	}
	return Record{}, Outcome{}, fmt.Errorf("transition job: unexpected script status %q", status)
}

func (s *Store) transitionArgs(t Transition, full bool) ([]any, error) {
	if !t.To.Valid() {
		return nil, fmt.Errorf("%w: state %q", ErrInvalid, t.To)
	}
	if t.AnsweredTo != "" && !t.AnsweredTo.Valid() {
		return nil, fmt.Errorf("%w: answered state %q", ErrInvalid, t.AnsweredTo)
	}
	from := make([]string, 0, len(t.From))
	for _, f := range t.From {
		if !f.Valid() {
			return nil, fmt.Errorf("%w: from state %q", ErrInvalid, f)
		}
		from = append(from, string(f))
	}
	if t.Source == "" {
		return nil, fmt.Errorf("%w: source is empty", ErrInvalid)
	}
	if t.Attempt < 0 {
		return nil, fmt.Errorf("%w: attempt %d", ErrInvalid, t.Attempt)
	}
	if len(t.SessionID) > 256 {
		return nil, fmt.Errorf("%w: session ID longer than 256 bytes", ErrInvalid)
	}
	if !validDigits(t.Digits) {
		return nil, fmt.Errorf("%w: digits must be up to %d of 0-9 * # A-D", ErrInvalid, maxDigitsLen)
	}
	cdr := ""
	if t.CDR != nil {
		var err error
		if cdr, err = encodeCDR(t.CDR); err != nil {
			return nil, err
		}
	}
	at := t.At
	if at.IsZero() {
		at = s.now()
	}
	return []any{
		string(t.To), at.UnixMilli(), cleanSource(t.Source), t.Attempt, t.SessionID,
		truncate(t.Detail, maxDetailLen), strings.Join(from, " "), cdr, t.Digits,
		s.now().UnixMilli(), s.retention.Milliseconds(),
		string(t.AnsweredTo), truncate(t.AnsweredDetail, maxDetailLen), luaBool(t.RefuseOlderAttempt), luaBool(full),
	}, nil
}

func luaBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func validDigits(d string) bool {
	if len(d) > maxDigitsLen {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= '0' && c <= '9' || c == '*' || c == '#' || c >= 'A' && c <= 'D') {
			return false
		}
	}
	return true
}

// runTransition runs the transition script; with a sessionId it pipelines the index write
// beside it (different Cluster slots, so not in the script; still one round trip). The index is
// written only if absent (SET NX): a sessionId names one call of one job, so the first write is
// the only one needed, and every later push of the call costs Redis no write.
func (s *Store) runTransition(ctx context.Context, id, sessionID string, args []any) ([]any, error) {
	keys := []string{s.keys.job(id)}
	if sessionID == "" {
		return transitionScript.Run(ctx, s.rdb, keys, args...).Slice()
	}
	for try := 0; ; try++ {
		pipe := s.rdb.Pipeline()
		var cmd *redis.Cmd
		if try == 0 {
			cmd = transitionScript.EvalSha(ctx, pipe, keys, args...)
		} else {
			cmd = transitionScript.Eval(ctx, pipe, keys, args...)
		}
		set := pipe.SetNX(ctx, s.keys.session(sessionID), id, s.retention)
		_, _ = pipe.Exec(ctx) // errors checked per command below
		if err := cmd.Err(); err != nil {
			if try == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
				continue // first use on this server: send the source once
			}
			return nil, err
		}
		if err := set.Err(); err != nil {
			return nil, fmt.Errorf("index session: %w", err)
		}
		return cmd.Slice()
	}
}

// LookupSession returns the ID of the job a provider sessionId belongs to, or ErrNotFound. The
// index is written by the first Transition that carries the SessionID and lives for Retention
// from then (a call's pushes and CDRs arrive within hours of its first push, far inside it).
func (s *Store) LookupSession(ctx context.Context, sessionID string) (string, error) {
	if sessionID == "" {
		return "", fmt.Errorf("lookup session: %w", ErrNotFound)
	}
	id, err := s.rdb.Get(ctx, s.keys.session(sessionID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("lookup session: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("lookup session: %w", err)
	}
	return id, nil
}

// Cancel moves a job that has not been dialled (queued or scheduled) to canceled, with source
// "api". Cancelling a canceled job returns it unchanged; any other state gives the record and
// ErrConflict. Cancel and BeginDial are atomic with each other: exactly one of them wins.
func (s *Store) Cancel(ctx context.Context, id string, at time.Time) (Record, error) {
	rec, _, err := s.Transition(ctx, id, Transition{
		To: StateCanceled, At: at, Source: "api",
		From: []State{StateQueued, StateScheduled, StateCanceled},
	})
	if err != nil {
		return rec, fmt.Errorf("cancel job: %w", err)
	}
	return rec, nil
}

// DialGrant is BeginDial's answer.
type DialGrant struct {
	// Granted: the dial is recorded; send the provider request now.
	Granted bool
	// AlreadyDialled: a dial was recorded before and its result never was (an earlier delivery
	// of the task crashed or was cut off after BeginDial), or the call already exists (calling,
	// ringing, answered). Do not dial: wait for the pushes, and move the job to unknown (a
	// Transition) if none arrives within the worker's timeout, counted from DialledAt.
	AlreadyDialled bool
	// Attempt and DialledAt describe the granted or earlier dial (DialledAt is the time of the
	// last dispatching event when the open dial has already been resolved into a call).
	Attempt   int
	DialledAt time.Time
}

// NextAttempt asks BeginDial to number the dial itself: the record's attempts plus one.
const NextAttempt = 0

// BeginDial is the dial guard (issue 6): the worker calls it right BEFORE sending the provider
// request. Atomically:
//
//   - queued or scheduled, or dispatching with no open dial → the job moves to dispatching (one
//     event, source "worker", detail "dial", unless it already was dispatching), an open-dial
//     marker {attempt, at} is recorded, Attempts is raised to attempt: Granted.
//   - dispatching with an open dial, or calling / ringing / answered → AlreadyDialled, no change.
//     This is what a redelivered task finds, whatever attempt number asynq gives it (a killed
//     worker's task comes back with its retry count raised), so a redelivery never dials again.
//   - any final state (canceled, expired, completed, unknown…) → the record and ErrConflict.
//
// The marker closes when the dial's result is recorded: any Transition out of dispatching
// (calling with the sessionId, rejected, unknown, or back to queued with From for a retry).
//
// attempt NextAttempt (0) numbers the dial one past the record's attempts, in the same script:
// the worker need not read the record first.
func (s *Store) BeginDial(ctx context.Context, id string, attempt int, at time.Time) (Record, DialGrant, error) {
	return s.BeginDialAs(ctx, id, "", attempt, at)
}

// BeginDialAs is BeginDial for a caller that may have to ask again: the open dial it is granted
// carries token, and while that dial is open a BeginDialAs with the same token is Granted again
// (same attempt, no new event) instead of AlreadyDialled. A worker whose BeginDial failed on
// the way back (Redis restarting after running the script) can so tell its own open dial, for
// which no request has left, from an earlier delivery's. Use a token unique to one delivery of
// one task, never shared between processes; "" never matches.
func (s *Store) BeginDialAs(ctx context.Context, id, token string, attempt int, at time.Time) (Record, DialGrant, error) {
	if len(token) > 64 {
		return Record{}, DialGrant{}, fmt.Errorf("begin dial: %w: token longer than 64 bytes", ErrInvalid)
	}
	if !validID(id) {
		return Record{}, DialGrant{}, fmt.Errorf("begin dial: %w", ErrNotFound)
	}
	if attempt < 0 {
		return Record{}, DialGrant{}, fmt.Errorf("begin dial: %w: attempt %d", ErrInvalid, attempt)
	}
	if at.IsZero() {
		at = s.now()
	}
	res, err := beginDialScript.Run(ctx, s.rdb, []string{s.keys.job(id)},
		attempt, at.UnixMilli(), s.now().UnixMilli(), s.retention.Milliseconds(), token).Slice()
	if err != nil {
		return Record{}, DialGrant{}, fmt.Errorf("begin dial: %w", err)
	}
	status, _ := res[0].(string)
	if status == "notfound" {
		return Record{}, DialGrant{}, fmt.Errorf("begin dial: %w", ErrNotFound)
	}
	if len(res) != 2 {
		return Record{}, DialGrant{}, fmt.Errorf("begin dial: unexpected script reply %v", res)
	}
	raw, _ := res[1].(string)
	rec, err := decodeRecord(id, raw)
	if err != nil {
		return Record{}, DialGrant{}, fmt.Errorf("begin dial: %w", err)
	}
	switch status {
	case "granted":
		g := DialGrant{Granted: true, Attempt: rec.DialAttempt, DialledAt: fromMS(ms(at))}
		if rec.DialStartedAt != nil {
			g.DialledAt = *rec.DialStartedAt // granted again: the time of the first grant
		}
		return rec, g, nil
	case "dialled":
		g := DialGrant{AlreadyDialled: true, Attempt: rec.DialAttempt}
		if rec.DialStartedAt != nil {
			g.DialledAt = *rec.DialStartedAt
		} else {
			g.Attempt = rec.Attempts
			for i := len(rec.Events) - 1; i >= 0; i-- {
				if rec.Events[i].State == StateDispatching {
					g.DialledAt = rec.Events[i].At
					break
				}
			}
		}
		return rec, g, nil
	case "conflict":
		return rec, DialGrant{}, fmt.Errorf("begin dial in state %s: %w", rec.State, ErrConflict)
	}
	return Record{}, DialGrant{}, fmt.Errorf("begin dial: unexpected script status %q", status)
}
