package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
)

// RedialPolicy says whether a notify job that ended busy or unanswered is called again: up to
// Max more times, each after Delay. The zero value never redials.
type RedialPolicy struct {
	Max   int
	Delay time.Duration
}

// RedialPolicies are the policies by group: "notify" and "bulk" (other kinds never redial).
type RedialPolicies map[string]RedialPolicy

func (p RedialPolicies) forJob(kind Kind, queueName string) RedialPolicy {
	if kind != KindNotify {
		return RedialPolicy{}
	}
	if queueName == QueueBulk {
		return p["bulk"]
	}
	return p["notify"]
}

// payloadKey keeps a job's task payload while its job may still be redialled: the task itself
// is gone once the first call was accepted. It shares the job record's hash tag.
func payloadKey(prefix, jobID string) string { return prefix + ":{" + jobID + "}:task" }

// Redialer calls a notify job again after a busy or no-answer end, as a new attempt of the same
// job: the record goes back to `queued` with a "redial" event and a delayed task is enqueued.
// It never redials after an answered call (such a call ends completed, never busy or no_answer).
type Redialer struct {
	rdb      redis.UniversalClient
	store    *jobstatus.Store
	client   *asynq.Client
	policies RedialPolicies
	task     TaskOptions
	prefix   string
	log      *slog.Logger
	now      func() time.Time
}

// RedialerOptions configures a Redialer.
type RedialerOptions struct {
	Redis     redis.UniversalClient
	Store     *jobstatus.Store
	Policies  RedialPolicies
	Task      TaskOptions
	KeyPrefix string
	Logger    *slog.Logger
	Now       func() time.Time
}

// NewRedialer returns a Redialer; with no policy that allows a redial it does nothing.
func NewRedialer(o RedialerOptions) *Redialer {
	if o.KeyPrefix == "" {
		o.KeyPrefix = jobstatus.DefaultKeyPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Redialer{rdb: o.Redis, store: o.Store, client: asynq.NewClientFromRedisClient(o.Redis),
		policies: o.Policies, task: o.Task.withDefaults(), prefix: o.KeyPrefix,
		log: o.Logger.With("component", "redial"), now: o.Now}
}

// keepPayload stores the payload of a job that may be redialled, for as long as its record.
func (r *Redialer) keepPayload(ctx context.Context, job Job, payload []byte, ttl time.Duration) error {
	if r == nil || r.policies.forJob(job.Kind, job.Queue).Max <= 0 {
		return nil
	}
	if err := r.rdb.Set(ctx, payloadKey(r.prefix, job.ID), payload, ttl).Err(); err != nil {
		return fmt.Errorf("keep payload of %s for redials: %w", job.ID, err)
	}
	return nil
}

// MaybeRedial redials rec if it just ended busy or no_answer and its policy has redials left
// before the job's dispatch deadline. It reports whether it did; the caller then skips the
// end-of-job steps (webhook), since the job has not ended.
func (r *Redialer) MaybeRedial(ctx context.Context, rec jobstatus.Record) (bool, error) {
	if r == nil || (rec.State != jobstatus.StateBusy && rec.State != jobstatus.StateNoAnswer) {
		return false, nil
	}
	policy := r.policies.forJob(Kind(rec.Kind), rec.Queue)
	done := 0
	for _, e := range rec.Events {
		if e.Source == "redial" {
			done++
		}
	}
	now := r.now().UTC()
	if done >= policy.Max || !now.Add(policy.Delay).Before(rec.DispatchBy) {
		return false, nil
	}
	payload, err := r.rdb.Get(ctx, payloadKey(r.prefix, rec.ID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil // kept no payload: the policy was off when the job was submitted
	}
	if err != nil {
		return false, fmt.Errorf("load payload of %s: %w", rec.ID, err)
	}
	job, err := DecodeJob(payload)
	if err != nil {
		return false, err
	}
	_, _, err = r.store.Transition(ctx, rec.ID, jobstatus.Transition{
		To: jobstatus.StateQueued, At: now, Source: "redial",
		Detail: fmt.Sprintf("redial %d of %d after %s", done+1, policy.Max, rec.State),
		From:   []jobstatus.State{jobstatus.StateBusy, jobstatus.StateNoAnswer},
	})
	if errors.Is(err, jobstatus.ErrConflict) {
		return false, nil // another push got there first
	}
	if err != nil {
		return false, fmt.Errorf("record redial of %s: %w", rec.ID, err)
	}
	job.ScheduledAt = nil
	task, err := NewTask(job, r.task)
	if err != nil {
		return true, err
	}
	if _, err := r.client.EnqueueContext(ctx, task, asynq.ProcessIn(policy.Delay)); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		// Put the job back to its real end rather than leave it queued with no task.
		_, _, berr := r.store.Transition(context.WithoutCancel(ctx), rec.ID, jobstatus.Transition{
			To: rec.State, At: r.now().UTC(), Source: "redial", Detail: "redial could not be scheduled",
			From: []jobstatus.State{jobstatus.StateQueued},
		})
		return false, errors.Join(fmt.Errorf("enqueue redial of %s: %w", rec.ID, err), berr)
	}
	r.log.Info("redial scheduled", "job_id", rec.ID, "after", rec.State, "delay", policy.Delay, "redial", done+1)
	return true, nil
}
