package queue

import (
	"context"
	"log/slog"
	"time"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
)

// Gate applies the call policies around a dial: calling windows, per-callee caps, the global
// call rate and the concurrent-call cap (see internal/ratelimit). A nil Gate admits everything.
type Gate interface {
	// Admit decides whether the job may be dialled now. It takes what the dial needs (a rate
	// token, a call slot) when it admits.
	Admit(ctx context.Context, job Job, attempt int) (Admission, error)
	// Release frees the call slot of a job whose call ended or was never placed. Idempotent.
	Release(ctx context.Context, jobID string) error
	// ProviderRate reports a rate-class provider reply, so that the effective rate backs off.
	ProviderRate(ctx context.Context) error
}

// Verdict is a Gate's decision.
type Verdict int

// Verdicts.
const (
	Admit    Verdict = iota // dial now
	Defer                   // try again after Delay, without using an attempt
	Throttle                // end the job `throttled` with Reason
)

// Admission is a Gate's answer.
type Admission struct {
	Verdict Verdict
	Delay   time.Duration
	Reason  string // bounded, e.g. "window", "rate_limit", "slots", "callee_cap_3_per_24h"
	// SendAt and SendBy, when set on Admit, bound when the provider request may leave, by this
	// process's real clock: not before SendAt (the rate token's instant; the handler records
	// the dial meanwhile), and not after SendBy (SendAt plus the share of the rate margin this
	// process may use). A later request could reach the provider bunched with the calls after
	// it and be refused for the rate (1013001); the handler puts the job back instead.
	SendAt time.Time
	SendBy time.Time
}

// ResultNotifier tells the producer that a job ended (the signed webhook). Implementations
// enqueue the delivery; they must not block on the producer.
type ResultNotifier interface {
	NotifyResult(ctx context.Context, rec jobstatus.Record) error
}

// Finisher does what follows a job reaching its final state, wherever that happened (the worker
// or a provider push): it frees the call slot, counts the end and tells the producer.
type Finisher struct {
	Gate     Gate
	Notifier ResultNotifier
	Metrics  *Metrics
	Logger   *slog.Logger
}

// Release frees the call slot of a job whose call ended without the job ending (a redial).
func (f *Finisher) Release(ctx context.Context, jobID string) {
	if f == nil || f.Gate == nil {
		return
	}
	if err := f.Gate.Release(ctx, jobID); err != nil && f.Logger != nil {
		f.Logger.Warn("release call slot", "job_id", jobID, "err", err)
	}
}

// Finish runs the end-of-job steps for rec, which has just become final. Errors are logged, not
// returned: the state change already happened and must not be undone by a side effect failing.
func (f *Finisher) Finish(ctx context.Context, rec jobstatus.Record) {
	if f == nil {
		return
	}
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if f.Gate != nil {
		if err := f.Gate.Release(ctx, rec.ID); err != nil {
			log.Warn("release call slot", "job_id", rec.ID, "err", err)
		}
	}
	f.Metrics.Ended(rec.Kind, rec.State)
	if f.Notifier != nil && rec.CallbackURL != "" {
		if err := f.Notifier.NotifyResult(ctx, rec); err != nil {
			log.Error("enqueue result webhook", "job_id", rec.ID, "err", err)
		}
	}
}
