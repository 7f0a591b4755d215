// Package callback receives the provider's pushes — call-status events and call detail records —
// and turns them into job state changes. Pushes are authenticated by the secret in their path and,
// for each job, by the HMAC tag of the job reference they echo in userData.
package callback

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/spool"
	"github.com/voicequeue/voicequeue/internal/voice"
)

// MaxPushBytes caps a push body: a 50-record CDR push is well under 64 KiB.
const MaxPushBytes = 256 << 10

// Options configures the push handlers.
type Options struct {
	Store    *jobstatus.Store
	Tagger   *queue.Tagger
	Finisher *queue.Finisher
	// Redialer calls busy or unanswered notify jobs again by policy (nil: never).
	Redialer *queue.Redialer
	// Spool, when set, keeps pushes that could not be recorded (Redis unreachable) on local
	// disk, answers the platform 200, and replays them in order once Redis is back.
	Spool *spool.Spool
	// Secret is the path secret of the push URLs: /callbacks/{Secret}/status and …/fee.
	Secret  string
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Handler serves the push endpoints.
type Handler struct {
	o   Options
	log *slog.Logger
}

// New returns the push handler.
func New(o Options) (*Handler, error) {
	if o.Store == nil || o.Tagger == nil {
		return nil, errors.New("new callback handler: store and tagger are required")
	}
	if o.Secret == "" {
		return nil, errors.New("new callback handler: empty push secret")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{o: o, log: o.Logger.With("component", "callback")}, nil
}

// Register adds the push routes to mux. A wrong path secret is answered 404, exactly like a path
// that does not exist, so the endpoints can't be probed.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /callbacks/{secret}/status", h.guard(h.status))
	mux.HandleFunc("POST /callbacks/{secret}/fee", h.guard(h.fee))
}

func (h *Handler) guard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.PathValue("secret")), []byte(h.o.Secret)) != 1 {
			http.NotFound(w, r)
			return
		}
		next(w, r)
	}
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxPushBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("push body over %d bytes", MaxPushBytes)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("read push body: %w", err)
	}
	return body, 0, nil
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	body, code, err := readBody(w, r)
	if err != nil {
		h.o.Metrics.push("status", "malformed")
		http.Error(w, err.Error(), code)
		return
	}
	push, err := voice.ParseStatusPush(body)
	if err != nil {
		h.o.Metrics.push("status", "malformed")
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// While older pushes wait in the spool, newer ones queue behind them: applying a disconnect
	// before its spooled answer would read the call as unanswered.
	if h.o.Spool != nil && h.o.Spool.Len() > 0 {
		h.spoolOr503(w, "status", body)
		return
	}
	result, err := h.applyStatus(r.Context(), push, h.o.Now().UTC())
	if err != nil {
		if h.o.Spool != nil {
			h.log.Warn("status push not recorded: spooling it", "event", push.EventType, "err", err)
			h.spoolOr503(w, "status", body)
			return
		}
		h.log.Error("record status push", "event", push.EventType, "err", err)
		h.o.Metrics.push("status", "error")
		http.Error(w, "push not recorded", http.StatusServiceUnavailable)
		return
	}
	h.o.Metrics.push("status", result)
	w.WriteHeader(http.StatusOK)
}

// spoolOr503 appends a push to the spool and answers 200, or 503 when the spool is full or
// failing (the platform re-sends CDRs; a lost status push is reconciled by its CDR).
func (h *Handler) spoolOr503(w http.ResponseWriter, kind string, body []byte) {
	if err := h.o.Spool.Append(kind, body); err != nil {
		h.log.Error("spool push", "kind", kind, "err", err)
		h.o.Metrics.push(kind, "error")
		http.Error(w, "push not recorded", http.StatusServiceUnavailable)
		return
	}
	h.o.Metrics.push(kind, "spooled")
	if kind == "fee" {
		writeFeeOK(w)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func writeFeeOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", voice.ContentType)
	_, _ = io.WriteString(w, `{"resultcode":"0","resultdesc":"Success"}`)
}

// ApplySpooled records one spooled push (the spool's replay function). A push that no longer
// parses is skipped; a store error stops the replay, to be tried again later.
func (h *Handler) ApplySpooled(ctx context.Context, r spool.Record) error {
	switch r.Kind {
	case "status":
		push, err := voice.ParseStatusPush(r.Body)
		if err != nil {
			return fmt.Errorf("%w: %v", spool.ErrSkip, err)
		}
		result, err := h.applyStatus(ctx, push, r.At.UTC())
		if err != nil {
			return err
		}
		h.o.Metrics.push("status", result)
	case "fee":
		push, err := voice.ParseFeePush(r.Body)
		if err != nil {
			return fmt.Errorf("%w: %v", spool.ErrSkip, err)
		}
		for i := range push.FeeLst {
			result, err := h.applyCDR(ctx, &push.FeeLst[i], r.At.UTC())
			if err != nil {
				return err
			}
			h.o.Metrics.push("fee", result)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", spool.ErrSkip, r.Kind)
	}
	return nil
}

func (h *Handler) fee(w http.ResponseWriter, r *http.Request) {
	body, code, err := readBody(w, r)
	if err != nil {
		h.o.Metrics.push("fee", "malformed")
		http.Error(w, err.Error(), code)
		return
	}
	push, err := voice.ParseFeePush(body)
	if err != nil {
		h.o.Metrics.push("fee", "malformed")
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if h.o.Spool != nil && h.o.Spool.Len() > 0 {
		h.spoolOr503(w, "fee", body)
		return
	}
	now := h.o.Now().UTC()
	for i := range push.FeeLst {
		result, err := h.applyCDR(r.Context(), &push.FeeLst[i], now)
		if err != nil {
			if h.o.Spool != nil {
				// Records already applied are idempotent, so the whole push is spooled.
				h.log.Warn("CDR not recorded: spooling the push", "err", err)
				h.spoolOr503(w, "fee", body)
				return
			}
			// Answer an error so the platform re-sends the whole push.
			h.log.Error("record CDR", "err", err)
			h.o.Metrics.push("fee", "error")
			http.Error(w, "CDR not recorded", http.StatusServiceUnavailable)
			return
		}
		h.o.Metrics.push("fee", result)
	}
	writeFeeOK(w)
}

// Push outcomes, the bounded values of the metric's outcome label.
const (
	resultAccepted   = "accepted"
	resultDuplicate  = "duplicate"
	resultForged     = "forged"
	resultUnknownJob = "unknown_job"
	resultStale      = "stale"
)

// resolve finds the job a push is about: by its signed userData, or, when the push carries none,
// by the sessionId index. A userData that is present but does not verify is forged: the job is
// not touched even if the sessionId would match.
func (h *Handler) resolve(ctx context.Context, userData, sessionID string) (queue.Reference, string, error) {
	ref, err := h.o.Tagger.Parse(userData)
	switch {
	case err == nil:
		return ref, "", nil
	case errors.Is(err, queue.ErrNoReference) && sessionID != "":
		id, lerr := h.o.Store.LookupSession(ctx, sessionID)
		if errors.Is(lerr, jobstatus.ErrNotFound) {
			return queue.Reference{}, resultUnknownJob, nil
		}
		if lerr != nil {
			return queue.Reference{}, "", lerr
		}
		return queue.Reference{JobID: id, Attempt: -1}, "", nil
	case errors.Is(err, queue.ErrNoReference):
		return queue.Reference{}, resultUnknownJob, nil
	default:
		h.log.Warn("push with a forged job reference ignored", "session_id", sessionID)
		return queue.Reference{}, resultForged, nil
	}
}

func (h *Handler) applyStatus(ctx context.Context, push *voice.StatusPush, at time.Time) (string, error) {
	info := push.StatusInfo
	ref, result, err := h.resolve(ctx, info.UserData, info.SessionID)
	if err != nil || result != "" {
		return result, err
	}
	// Pushes of an earlier attempt carry another sessionId, which the transition script refuses
	// as stale. Events carry our receive time (or, replayed from the spool, the time the push was spooled):
	// it is monotonic with the worker's events and precise to the millisecond, where the
	// platform's timestamp has whole seconds (the CDR keeps its own times).
	t := jobstatus.Transition{At: at, Source: "status_push", SessionID: info.SessionID, Attempt: max(ref.Attempt, 0)}
	switch push.EventType {
	case voice.EventCallout:
		t.To = jobstatus.StateCalling
	case voice.EventAlerting:
		t.To = jobstatus.StateRinging
	case voice.EventAnswer:
		t.To = jobstatus.StateAnswered
	case voice.EventCollectInfo:
		t.To = jobstatus.StateAnswered
		if info.DigitInfo != nil {
			t.Digits = *info.DigitInfo
		}
	case voice.EventDisconnect:
		stateCode := 0
		if info.StateCode != nil {
			stateCode = *info.StateCode
		}
		// The outcome depends on whether the call was answered, which the record knows: the
		// script picks one of the two in the same step, and refuses a disconnect that names an
		// earlier attempt of a redialled job (one round trip, no read first).
		outcome := voice.DisconnectOutcome(stateCode, false)
		t.To = StateForOutcome(outcome)
		t.Detail = fmt.Sprintf("%s (stateCode %d)", outcome, stateCode)
		outcome = voice.DisconnectOutcome(stateCode, true)
		t.AnsweredTo = StateForOutcome(outcome)
		t.AnsweredDetail = fmt.Sprintf("%s (stateCode %d)", outcome, stateCode)
		t.RefuseOlderAttempt = ref.Attempt >= 0
	default:
		return resultAccepted, nil
	}
	return h.apply(ctx, ref.JobID, t)
}

func (h *Handler) applyCDR(ctx context.Context, f *voice.FeeInfo, at time.Time) (string, error) {
	ref, result, err := h.resolve(ctx, f.UserData, f.SessionID)
	if err != nil || result != "" {
		return result, err
	}
	outcome := f.Outcome()
	cdr := &jobstatus.CDR{
		DurationSeconds: int(f.TalkTime().Round(time.Second) / time.Second),
		Outcome:         string(outcome),
		Q850:            firstInt(f.CallOutUnaswRsn, f.FwdUnaswRsn),
		ULFailReason:    firstInt(f.ULFailReason),
		SIPStatusCode:   firstInt(f.SIPStatusCode),
	}
	if ans := answerTime(f); !ans.IsZero() {
		cdr.AnsweredAt = &ans
	}
	if !f.CallEndTime.IsZero() {
		end := f.CallEndTime.Time
		cdr.EndedAt = &end
	}
	h.o.Metrics.callDuration(f.TalkTime(), outcome)
	return h.apply(ctx, ref.JobID, jobstatus.Transition{
		To: StateForOutcome(outcome), At: at, Source: "cdr_push", SessionID: f.SessionID,
		Attempt: max(ref.Attempt, 0), CDR: cdr, Detail: string(outcome),
	})
}

func (h *Handler) apply(ctx context.Context, jobID string, t jobstatus.Transition) (string, error) {
	// The record comes back (and is decoded) only when the job became final: the Finisher and
	// the Redialer need it then, nothing needs it otherwise.
	rec, out, err := h.o.Store.Apply(ctx, jobID, t)
	if errors.Is(err, jobstatus.ErrNotFound) {
		return resultUnknownJob, nil
	}
	if err != nil {
		return "", err
	}
	if out.BecameFinal {
		ctx := context.WithoutCancel(ctx)
		redialed, err := h.o.Redialer.MaybeRedial(ctx, rec)
		if err != nil {
			h.log.Error("redial", "job_id", jobID, "err", err)
		}
		if redialed {
			h.o.Finisher.Release(ctx, jobID)
		} else {
			h.log.Info("job ended", "job_id", jobID, "state", rec.State, "source", t.Source)
			h.o.Finisher.Finish(ctx, rec)
		}
	}
	if out.StaleSession || out.StaleAttempt {
		return resultStale, nil
	}
	if !out.Changed {
		return resultDuplicate, nil
	}
	return resultAccepted, nil
}

// StateForOutcome maps a call outcome to the job's final state.
func StateForOutcome(o voice.Outcome) jobstatus.State {
	switch o {
	case voice.OutcomeCompleted:
		return jobstatus.StateCompleted
	case voice.OutcomeBusy:
		return jobstatus.StateBusy
	case voice.OutcomeNoAnswer:
		return jobstatus.StateNoAnswer
	default:
		return jobstatus.StateFailed
	}
}

func answerTime(f *voice.FeeInfo) time.Time {
	if f.ServiceType == voice.ServiceTypeCallback || !f.FwdAnswerTime.IsZero() {
		return f.FwdAnswerTime.Time
	}
	return f.CallOutAnswerTime.Time
}

func firstInt(ps ...*int) int {
	for _, p := range ps {
		if p != nil && *p != 0 {
			return *p
		}
	}
	return 0
}
