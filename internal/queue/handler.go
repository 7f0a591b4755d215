package queue

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/voice"
)

// Dialer is the part of the provider client the worker uses (voice.Client satisfies it).
type Dialer interface {
	Notify(ctx context.Context, req *voice.NotifyRequest) (*voice.Response, error)
	Verify(ctx context.Context, req *voice.VerifyRequest) (*voice.Response, error)
	Click2Call(ctx context.Context, req *voice.Click2CallRequest) (*voice.Response, error)
}

// QueuePauser pauses a queue (asynq.Inspector satisfies it).
type QueuePauser interface {
	PauseQueue(queue string) error
}

// HandlerOptions configures the worker's task handler.
type HandlerOptions struct {
	Store  *jobstatus.Store
	Dialer Dialer
	Tagger *Tagger
	Sealer *CodeSealer
	// DisplayNumber is the app's fixed-line number shown to callees (`displayNbr`).
	DisplayNumber string
	// StatusURL and FeeURL are the plain push URLs sent in every request.
	StatusURL, FeeURL string
	// VerifyPreTone, VerifyPosTone and VerifyTimes shape the verification call (ref §3.1).
	VerifyPreTone, VerifyPosTone string
	VerifyTimes                  int
	Gate                         Gate
	// Breaker pauses dialling after a run of transient provider failures (nil: never).
	Breaker  Breaker
	Finisher *Finisher
	Pauser   QueuePauser
	// DialResolveTimeout is how long a redelivered task whose dial was already recorded waits for
	// the provider's pushes before the job ends `unknown` (default 2 min).
	DialResolveTimeout time.Duration
	// DialResolveInterval is how often such a task looks again (default 5 s).
	DialResolveInterval time.Duration
	// MaxAttempts is how many provider requests a job may make for transient failures before it
	// ends `failed` (default 5), counted in the job's record (its events). Attempts put back for
	// a rate reply or a late rate token do not count.
	MaxAttempts int
	// RateBackoff is the delay after a rate-class provider reply (default 60 s, ref §9).
	RateBackoff time.Duration
	Metrics     *Metrics
	Logger      *slog.Logger
	Now         func() time.Time
}

// Breaker is the circuit breaker of provider outages (internal/breaker satisfies it).
type Breaker interface {
	Allow(ctx context.Context) (ok bool, retryAfter time.Duration)
	Success(ctx context.Context)
	Failure(ctx context.Context)
}

// Handler places the calls of voice tasks. It implements asynq.Handler.
type Handler struct {
	o   HandlerOptions
	log *slog.Logger
}

// NewHandler returns the task handler.
func NewHandler(o HandlerOptions) (*Handler, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("new handler: no job store")
	case o.Dialer == nil:
		return nil, errors.New("new handler: no dialer")
	case o.Tagger == nil || o.Sealer == nil:
		return nil, errors.New("new handler: no tagger or code sealer")
	case o.DisplayNumber == "":
		return nil, errors.New("new handler: no display number")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DialResolveTimeout <= 0 {
		o.DialResolveTimeout = 2 * time.Minute
	}
	if o.DialResolveInterval <= 0 {
		o.DialResolveInterval = 5 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.RateBackoff <= 0 {
		o.RateBackoff = time.Minute
	}
	if o.VerifyPreTone == "" {
		o.VerifyPreTone = "verify_pre.wav"
	}
	if o.VerifyTimes == 0 {
		o.VerifyTimes = 3
	}
	return &Handler{o: o, log: o.Logger.With("component", "worker")}, nil
}

// Register adds the handler for every voice task type to mux.
func (h *Handler) Register(mux *asynq.ServeMux) {
	mux.Handle(TypeNotify, h)
	mux.Handle(TypeVerify, h)
	mux.Handle(TypeClick2Call, h)
}

// ProcessTask runs one try of a job: checks that it is still wanted, applies the call policies,
// records the dial, calls the provider, and turns the reply's class into the job's next state.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	job, err := DecodeJob(t.Payload())
	if err != nil {
		return fmt.Errorf("%v: %w", err, asynq.SkipRetry)
	}
	log := h.log.With("job_id", job.ID, "kind", job.Kind)
	now := h.o.Now().UTC()
	if now.After(job.DispatchBy) {
		// Ends the job only if it is still waiting (the From guard of end): a job already
		// dialled, ended or canceled is left as it is.
		return h.end(ctx, log, job, jobstatus.StateExpired, "ttl passed before dispatch", 0)
	}
	if h.o.Breaker != nil {
		if ok, wait := h.o.Breaker.Allow(ctx); !ok {
			// The provider is failing: wait out the cool-down without using an attempt.
			return h.reschedule("breaker", max(wait, time.Second))
		}
	}
	// The record is not read first: BeginDial below is the one round trip that both checks that
	// the job is still waiting and records the dial, numbering the attempt itself.
	var adm Admission
	if h.o.Gate != nil {
		// The callee-cap log is keyed by job and this delivery's retry count, so a rescheduled
		// delivery is not counted twice.
		retried, _ := asynq.GetRetryCount(ctx)
		var err error
		adm, err = h.o.Gate.Admit(ctx, job, retried+1)
		if err != nil {
			// Fail closed: no token, no call. Try again soon without using an attempt.
			log.Warn("call policy unavailable: not dialling", "err", err)
			return h.reschedule("rate_limit", time.Second)
		}
		switch adm.Verdict {
		case Defer:
			return h.reschedule(adm.Reason, adm.Delay)
		case Throttle:
			return h.end(ctx, log, job, jobstatus.StateThrottled, adm.Reason, 0)
		}
	}

	if !adm.SendAt.IsZero() {
		// Wait for the booked rate token before recording the dial, but for its last few
		// milliseconds, in which the dial is recorded: a worker killed while it waits leaves
		// no open dial behind, and the request still leaves right at the token's instant.
		t := time.NewTimer(time.Until(adm.SendAt) - dialLead)
		select {
		case <-ctx.Done():
			t.Stop()
			h.release(ctx, log, job.ID)
			return h.reschedule("rate_limit", 10*time.Millisecond)
		case <-t.C:
		}
	}
	rec, grant, err := h.beginDial(ctx, job.ID, now)
	switch {
	case errors.Is(err, jobstatus.ErrConflict) || errors.Is(err, jobstatus.ErrNotFound):
		// Canceled, ended, or its record expired: nothing to do.
		h.release(ctx, log, job.ID)
		log.Debug("task for a job that is not waiting", "state", rec.State)
		return nil
	case err != nil:
		h.release(ctx, log, job.ID)
		return &TransientError{Err: fmt.Errorf("record dial: %w", err)}
	case grant.AlreadyDialled:
		// Do not release: the slot belongs to the call that may be under way.
		return h.resolveOpenDial(ctx, log, job, rec, now)
	}
	if !adm.SendAt.IsZero() {
		// The rest of the wait (at most dialLead; not cut short by shutdown: the dial is
		// recorded).
		time.Sleep(time.Until(adm.SendAt))
		h.o.Metrics.tokenLateness(time.Since(adm.SendAt))
	}
	if !adm.SendBy.IsZero() && time.Now().After(adm.SendBy) {
		// This process stalled between the rate token and the send (a GC pause, a starved
		// CPU, a slow round trip): sent now, the call could reach the provider bunched with
		// the next ones and be refused for the rate. The token is spent; the job goes back
		// and claims a fresh one.
		h.backToQueue(ctx, log, job, grant.Attempt, "rate token expired before sending")
		return h.reschedule("late_token", 10*time.Millisecond)
	}
	return h.dial(ctx, log, job, grant.Attempt, transientFailures(rec))
}

// beginDial records the dial (jobstatus.Store.BeginDialAs) under a token of this delivery. If
// Redis fails on the way (a restart, a dropped connection), the script may have run and only its
// reply be lost: the delivery asks again with the same token for a few seconds, and an open dial
// recorded for that token is granted again. Without it, the task's redelivery would find an open
// dial for which no request ever left, and the job would end unknown.
func (h *Handler) beginDial(ctx context.Context, jobID string, now time.Time) (jobstatus.Record, jobstatus.DialGrant, error) {
	token := newDialToken()
	wait := 100 * time.Millisecond
	for try := 1; ; try++ {
		rec, grant, err := h.o.Store.BeginDialAs(ctx, jobID, token, jobstatus.NextAttempt, now)
		if err == nil || errors.Is(err, jobstatus.ErrConflict) || errors.Is(err, jobstatus.ErrNotFound) ||
			errors.Is(err, jobstatus.ErrInvalid) || try == beginDialTries {
			return rec, grant, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return rec, grant, err
		case <-t.C:
		}
		wait *= 2
	}
}

// beginDialTries bounds beginDial: 5 tries over about 1.5 s, the time a Redis restart takes.
const beginDialTries = 5

// newDialToken returns a token unique to one delivery of one task.
func newDialToken() string {
	var b [12]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// dialLead is how long before its rate token's instant a job records its dial: about one Redis
// round trip, so the request leaves on time, while the time in which a killed worker leaves an
// open dial without a request stays short.
const dialLead = 3 * time.Millisecond

// detailTransient starts the detail of the event that puts a job back after a transient
// failure; transientFailures counts those events.
const detailTransient = "transient "

// transientFailures counts the attempts of a job that failed transiently: only they use up
// HandlerOptions.MaxAttempts. A rate reply or a late token puts the job back without using an
// attempt, since neither says anything about the call itself.
func transientFailures(rec jobstatus.Record) int {
	n := 0
	for _, e := range rec.Events {
		if e.State == jobstatus.StateQueued && e.Source == "worker" && strings.HasPrefix(e.Detail, detailTransient) {
			n++
		}
	}
	return n
}

// dial sends the provider request of one attempt and records what its reply means.
func (h *Handler) dial(ctx context.Context, log *slog.Logger, job Job, attempt, failures int) error {
	userData := h.o.Tagger.Tag(Reference{JobID: job.ID, Attempt: attempt})
	api := string(job.Kind)
	start := h.o.Now()
	// The request must finish even when the worker is shutting down: a call the provider
	// accepted has to be recorded, or a redelivery would have to guess.
	reqCtx := context.WithoutCancel(ctx)
	resp, err := h.send(reqCtx, job, userData)
	class := voice.ClassOf(err)
	code := voice.CodeSuccess
	var apiErr *voice.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.Code
	}
	now := h.o.Now().UTC()
	h.o.Metrics.provider(api, class, code, now.Sub(start))
	if h.o.Breaker != nil {
		switch {
		case class == voice.ClassTransient || class == voice.ClassAmbiguous:
			h.o.Breaker.Failure(reqCtx)
		case err == nil || (apiErr != nil && apiErr.HTTPStatus != 0):
			h.o.Breaker.Success(reqCtx) // the platform answered
		}
	}
	log = log.With("attempt", attempt, "class", class)

	switch class {
	case voice.ClassAccepted:
		since := job.CreatedAt
		if job.ScheduledAt != nil {
			since = *job.ScheduledAt
		}
		h.o.Metrics.dialled(job.Kind, since, now)
		// Apply, not Transition: calling is never final, so the record need not travel back.
		_, _, err := h.o.Store.Apply(reqCtx, job.ID, jobstatus.Transition{
			To: jobstatus.StateCalling, At: now, Source: "worker", Attempt: attempt, SessionID: resp.SessionID,
		})
		if err != nil {
			log.Error("record accepted call", "err", err)
		}
		log.Info("call placed", "to", voice.MaskNumber(job.To))
		return nil
	case voice.ClassRate:
		if h.o.Gate != nil {
			if gerr := h.o.Gate.ProviderRate(reqCtx); gerr != nil {
				log.Warn("report provider rate reply", "err", gerr)
			}
		}
		h.backToQueue(reqCtx, log, job, attempt, "provider rate limit "+code)
		return h.reschedule("rate", rateDelay(code, h.o.RateBackoff))
	case voice.ClassTransient:
		if failures+1 >= h.o.MaxAttempts {
			log.Warn("transient failures used every attempt", "err", err)
			return h.finalAfterDial(ctx, log, job, jobstatus.StateFailed, "attempts exhausted: "+describe(err), attempt)
		}
		h.backToQueue(reqCtx, log, job, attempt, detailTransient+describe(err))
		h.o.Metrics.retry("transient")
		return &TransientError{Err: err}
	case voice.ClassAccount:
		log.Error("account-class provider reply: pausing the queue", "code", code, "queue", job.Queue)
		if h.o.Pauser != nil {
			if perr := h.o.Pauser.PauseQueue(job.Queue); perr != nil {
				log.Error("pause queue", "queue", job.Queue, "err", perr)
			}
		}
		h.o.Metrics.pause(job.Queue)
		return h.finalAfterDial(ctx, log, job, jobstatus.StateRejected, "account: "+describe(err), attempt)
	case voice.ClassAmbiguous:
		log.Warn("no reply from the provider after sending: the call may have been placed; not redialling", "err", err)
		return h.finalAfterDial(ctx, log, job, jobstatus.StateUnknown, "ambiguous: "+describe(err), attempt)
	default: // permanent
		log.Warn("permanent provider reply", "code", code, "err", err)
		return h.finalAfterDial(ctx, log, job, jobstatus.StateRejected, describe(err), attempt)
	}
}

// send builds and sends the provider request of a job.
func (h *Handler) send(ctx context.Context, job Job, userData string) (*voice.Response, error) {
	status, fee := voice.EncodedURL(h.o.StatusURL), voice.EncodedURL(h.o.FeeURL)
	switch job.Kind {
	case KindVerify:
		code, err := h.o.Sealer.Open(job.ID, job.SealedCode)
		if err != nil {
			return nil, &voice.APIError{Op: "verify", Class: voice.ClassPermanent, Desc: "verification code does not open", Err: err}
		}
		times := h.o.VerifyTimes
		return h.o.Dialer.Verify(ctx, &voice.VerifyRequest{
			DisplayNbr: h.o.DisplayNumber, CalleeNbr: job.To, LanguageType: voice.LanguageChinese,
			PreTone: h.o.VerifyPreTone, VerifyCode: code, PosTone: h.o.VerifyPosTone, Times: &times,
			StatusURL: status, FeeURL: fee, UserData: userData,
		})
	case KindClick2Call:
		return h.o.Dialer.Click2Call(ctx, &voice.Click2CallRequest{
			DisplayNbr: h.o.DisplayNumber, CallerNbr: job.From, DisplayCalleeNbr: h.o.DisplayNumber,
			CalleeNbr: job.To, MaxDuration: job.MaxDuration, RecordFlag: voice.Flag(job.Record),
			StatusURL: status, FeeURL: fee, UserData: userData,
		})
	default:
		items := make([]voice.PlayItem, len(job.Play))
		for i, p := range job.Play {
			items[i] = voice.PlayItem{NotifyVoice: p.VoiceFile, TemplateID: p.TemplateID, TemplateParas: p.TemplateParams}
		}
		if job.CollectDigits > 0 && len(items) > 0 {
			items[len(items)-1].CollectInd = job.CollectDigits
		}
		return h.o.Dialer.Notify(ctx, &voice.NotifyRequest{
			DisplayNbr: h.o.DisplayNumber, CalleeNbr: job.To, PlayInfoList: items,
			StatusURL: status, FeeURL: fee, UserData: userData,
		})
	}
}

// rateDelay is how long a job waits after a rate-class reply. The call-count limits (1013001–
// 1013003) are per-second caps of the account, app or number: the effective rate has just been
// lowered, so the job only steps aside for a moment (a person may be waiting for a code). The
// platform asks for about a minute after quota, flow-control and port replies (ref §9: 1010009,
// 1010010, 1011006, 1020165), and 30 minutes after an IP lock (1020176).
func rateDelay(code string, base time.Duration) time.Duration {
	switch code {
	case "1013001", "1013002", "1013003":
		return time.Second + rand.N(500*time.Millisecond)
	case "1020176":
		return 30 * time.Minute
	default:
		return base
	}
}

// resolveOpenDial handles a task whose dial was recorded but whose result was not: the worker
// that sent it died or was stopped before it could record the reply. It never dials again
// blindly: it waits for the provider's pushes to move the job on, and after DialResolveTimeout
// ends it `unknown` (a later push or CDR still resolves it).
func (h *Handler) resolveOpenDial(ctx context.Context, log *slog.Logger, job Job, rec jobstatus.Record, now time.Time) error {
	if rec.State != jobstatus.StateDispatching {
		return nil // the call exists (calling, ringing, answered): its pushes take it from here
	}
	started := rec.UpdatedAt
	if rec.DialStartedAt != nil {
		started = *rec.DialStartedAt
	}
	if now.Sub(started) < h.o.DialResolveTimeout {
		log.Info("dial already recorded by an earlier delivery: waiting for pushes", "attempt", rec.DialAttempt)
		return h.reschedule("dial_guard", h.o.DialResolveInterval)
	}
	log.Warn("dial recorded but never resolved: ending unknown", "attempt", rec.DialAttempt)
	res, out, err := h.o.Store.Transition(ctx, job.ID, jobstatus.Transition{
		To: jobstatus.StateUnknown, At: now, Source: "worker", Attempt: rec.DialAttempt,
		Detail: "dial outcome unknown after redelivery", From: []jobstatus.State{jobstatus.StateDispatching},
	})
	if err != nil && !errors.Is(err, jobstatus.ErrConflict) {
		return &TransientError{Err: fmt.Errorf("record unknown: %w", err)}
	}
	if out.BecameFinal {
		h.o.Finisher.Finish(ctx, res)
	}
	return nil
}

// backToQueue records that an attempt did not place a call and the job waits for another.
func (h *Handler) backToQueue(ctx context.Context, log *slog.Logger, job Job, attempt int, detail string) {
	h.release(ctx, log, job.ID)
	_, _, err := h.o.Store.Transition(ctx, job.ID, jobstatus.Transition{
		To: jobstatus.StateQueued, At: h.o.Now().UTC(), Source: "worker", Attempt: attempt, Detail: detail,
		From: []jobstatus.State{jobstatus.StateDispatching},
	})
	if err != nil && !errors.Is(err, jobstatus.ErrConflict) {
		log.Error("record retry", "err", err)
	}
}

// finalAfterDial ends a job after a dial attempt that placed no call.
func (h *Handler) finalAfterDial(ctx context.Context, log *slog.Logger, job Job, state jobstatus.State, detail string, attempt int) error {
	h.release(ctx, log, job.ID)
	return h.end(ctx, log, job, state, detail, attempt)
}

// end moves a job that is not in a call to a final state.
func (h *Handler) end(ctx context.Context, log *slog.Logger, job Job, state jobstatus.State, detail string, attempt int) error {
	rec, out, err := h.o.Store.Transition(context.WithoutCancel(ctx), job.ID, jobstatus.Transition{
		To: state, At: h.o.Now().UTC(), Source: "worker", Attempt: attempt, Detail: detail,
		From: []jobstatus.State{jobstatus.StateQueued, jobstatus.StateScheduled, jobstatus.StateDispatching},
	})
	if errors.Is(err, jobstatus.ErrConflict) {
		return nil
	}
	if err != nil {
		return &TransientError{Err: fmt.Errorf("record %s: %w", state, err)}
	}
	log.Info("job ended", "state", state, "detail", detail)
	if out.BecameFinal {
		h.o.Finisher.Finish(ctx, rec)
	}
	return nil
}

func (h *Handler) release(ctx context.Context, log *slog.Logger, jobID string) {
	if h.o.Gate == nil {
		return
	}
	if err := h.o.Gate.Release(context.WithoutCancel(ctx), jobID); err != nil {
		log.Warn("release call slot", "err", err)
	}
}

func (h *Handler) reschedule(reason string, d time.Duration) error {
	h.o.Metrics.retry(reason)
	return &RescheduleError{Delay: d, Reason: reason}
}

// describe is a short, log-safe description of a provider error (no URLs beyond the redacted
// one, no secrets, no numbers).
func describe(err error) string {
	var apiErr *voice.APIError
	if errors.As(err, &apiErr) {
		if apiErr.Code != "" {
			return fmt.Sprintf("%s %s", apiErr.Code, apiErr.Desc)
		}
		if apiErr.Err != nil {
			return apiErr.Err.Error()
		}
		return apiErr.Desc
	}
	if err == nil {
		return ""
	}
	return err.Error()
}
