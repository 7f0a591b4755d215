package queue

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/voice"
)

// Errors of the Submitter.
var (
	ErrNotFound          = errors.New("job not found")
	ErrAlreadyDispatched = errors.New("job already dispatched")
)

// MaxBatch is the most jobs one batch may carry.
const MaxBatch = 1000

// SubmitterOptions configures a Submitter.
type SubmitterOptions struct {
	Redis            redis.UniversalClient
	DefaultRegion    string
	CodeKey          []byte // seals verification codes (see DeriveKey)
	CheckCallbackURL func(string) error
	Logger           *slog.Logger
	Task             TaskOptions
	Store            jobstatus.Options
	// CodeLength is the length of generated verification codes (default 6).
	CodeLength int
	Metrics    *Metrics
	Now        func() time.Time
	// Redialer keeps the payloads of jobs that may be redialled (nil: no redials).
	Redialer *Redialer
}

// Submitter validates producers' requests, records each job and enqueues its task. The gateway
// and `enqueue --redis` both use it, so a job is accepted by exactly the same rules either way.
type Submitter struct {
	store     *jobstatus.Store
	client    *asynq.Client
	inspector *asynq.Inspector
	validator *Validator
	sealer    *CodeSealer
	task      TaskOptions
	codeLen   int
	metrics   *Metrics
	log       *slog.Logger
	now       func() time.Time
	redialer  *Redialer
	retention time.Duration
}

// SubmitResult is the outcome of one accepted submission.
type SubmitResult struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Existing bool   `json:"existing,omitempty"`
}

// BatchItem is the result of one item of a batch: an ID and state, or an error naming a field.
type BatchItem struct {
	Index    int    `json:"index"`
	ID       string `json:"id,omitempty"`
	State    string `json:"state,omitempty"`
	Existing bool   `json:"existing,omitempty"`
	Error    string `json:"error,omitempty"`
	Field    string `json:"field,omitempty"`
}

// NewSubmitter returns a Submitter. It does not own o.Redis: the caller closes it.
func NewSubmitter(o SubmitterOptions) (*Submitter, error) {
	if o.Redis == nil {
		return nil, errors.New("new submitter: no redis client")
	}
	sealer, err := NewCodeSealer(o.CodeKey)
	if err != nil {
		return nil, fmt.Errorf("new submitter: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CodeLength == 0 {
		o.CodeLength = 6
	}
	if o.CodeLength < 2 || o.CodeLength > 8 {
		return nil, fmt.Errorf("new submitter: code length %d outside 2..8", o.CodeLength)
	}
	if o.Store.Now == nil {
		o.Store.Now = o.Now
	}
	return &Submitter{
		store:     jobstatus.New(o.Redis, o.Store),
		client:    asynq.NewClientFromRedisClient(o.Redis),
		inspector: asynq.NewInspectorFromRedisClient(o.Redis),
		validator: NewValidator(ValidatorOptions{DefaultRegion: o.DefaultRegion, CheckCallbackURL: o.CheckCallbackURL, Now: o.Now}),
		sealer:    sealer,
		task:      o.Task.withDefaults(),
		codeLen:   o.CodeLength,
		metrics:   o.Metrics,
		log:       o.Logger.With("component", "submitter"),
		now:       o.Now,
		redialer:  o.Redialer,
		retention: cmp.Or(o.Store.Retention, jobstatus.DefaultRetention),
	}, nil
}

// Validate checks a request without submitting it.
func (s *Submitter) Validate(req Request) error {
	_, _, err := s.validator.Validate(req)
	return err
}

// Submit validates, records and enqueues one job. Bad input is a *FieldError. A known
// idempotency key returns the existing job (Existing true) and enqueues nothing.
func (s *Submitter) Submit(ctx context.Context, req Request) (SubmitResult, error) {
	job, code, err := s.validator.Validate(req)
	if err != nil {
		return SubmitResult{}, err
	}
	return s.submit(ctx, job, code)
}

func (s *Submitter) submit(ctx context.Context, job Job, code string) (SubmitResult, error) {
	got, created, err := s.store.Create(ctx, s.prepare(&job))
	if err != nil {
		return SubmitResult{}, fmt.Errorf("record job: %w", err)
	}
	if !created {
		return SubmitResult{ID: got.ID, State: string(got.State), Existing: true}, nil
	}
	task, err := s.taskFor(&job, got.ID, code)
	if err == nil {
		err = s.redialer.keepPayload(ctx, job, task.Payload(), s.retention)
	}
	if err == nil {
		err = s.enqueue(ctx, job, task)
	}
	if err != nil {
		return SubmitResult{}, s.abandon(ctx, job.ID, err)
	}
	return SubmitResult{ID: job.ID, State: string(got.State)}, nil
}

// prepare gives a valid job a new ID and returns the record to create for it.
func (s *Submitter) prepare(job *Job) jobstatus.Record {
	job.ID = jobstatus.NewID()
	state := jobstatus.StateQueued
	if job.ScheduledAt != nil {
		state = jobstatus.StateScheduled
	}
	return jobstatus.Record{
		ID:             job.ID,
		Kind:           string(job.Kind),
		Queue:          job.Queue,
		State:          state,
		To:             voice.MaskNumber(job.To),
		CallbackURL:    job.CallbackURL,
		IdempotencyKey: job.IdempotencyKey,
		CreatedAt:      job.CreatedAt,
		UpdatedAt:      job.CreatedAt,
		ScheduledAt:    job.ScheduledAt,
		DispatchBy:     job.DispatchBy,
		Events:         []jobstatus.Event{{State: state, At: job.CreatedAt, Source: "api"}},
	}
}

// taskFor builds the task of a job just recorded under id: the ID the record was written under,
// which differs from the one prepare chose when an idempotency key had been claimed by a caller
// that never wrote its record (jobstatus.Store.Create takes over the claimed ID). A verify job's
// code (generated when the request had none) is sealed to that ID here, so it opens in the worker.
func (s *Submitter) taskFor(job *Job, id, code string) (*asynq.Task, error) {
	job.ID = id
	if job.Kind == KindVerify {
		if code == "" {
			var err error
			if code, err = GenerateCode(s.codeLen); err != nil {
				return nil, err
			}
		}
		sealed, err := s.sealer.Seal(job.ID, code)
		if err != nil {
			return nil, err
		}
		job.SealedCode = sealed
	}
	return NewTask(*job, s.task)
}

// enqueue puts the task of a recorded job on its queue (one round trip).
func (s *Submitter) enqueue(ctx context.Context, job Job, task *asynq.Task) error {
	if _, err := s.client.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue job %s: %w", job.ID, err)
	}
	s.metrics.submitted(job.Kind, job.Queue)
	s.log.Debug("job submitted", "job_id", job.ID, "kind", job.Kind, "queue", job.Queue, "to", voice.MaskNumber(job.To))
	return nil
}

// abandon ends a recorded job whose task could not be enqueued (or prepared), so that it is never
// left "queued" with nothing behind it, and returns cause joined with any error of doing so.
func (s *Submitter) abandon(ctx context.Context, id string, cause error) error {
	_, _, terr := s.store.Transition(context.WithoutCancel(ctx), id, jobstatus.Transition{
		To: jobstatus.StateFailed, At: s.now().UTC(), Source: "api", Detail: "enqueue failed",
		From: []jobstatus.State{jobstatus.StateQueued, jobstatus.StateScheduled},
	})
	return errors.Join(cause, terr)
}

// SubmitBatch validates every request, then records and enqueues the valid ones, with a result
// for each item in order. Invalid items are reported with their field; they never stop the valid
// ones. An error is returned only when the batch itself is unacceptable.
//
// The records of the whole batch are written in one pipeline (two round trips with idempotency
// keys, see jobstatus.Store.CreateMany), the payloads kept for redials in one more; then each
// created job's task is enqueued (asynq has no batch enqueue: one round trip each, concurrently).
// An item whose record was written but whose task could not be enqueued ends `failed` and
// reports the error, exactly as Submit does: no job is ever left recorded without its task.
func (s *Submitter) SubmitBatch(ctx context.Context, reqs []Request) ([]BatchItem, error) {
	if len(reqs) == 0 {
		return nil, &FieldError{Field: "jobs", Message: "must hold at least one job"}
	}
	if len(reqs) > MaxBatch {
		return nil, &FieldError{Field: "jobs", Message: fmt.Sprintf("at most %d jobs per batch", MaxBatch)}
	}
	items := make([]BatchItem, len(reqs))
	type valid struct {
		i    int
		job  Job
		code string
		task *asynq.Task
	}
	todo := make([]valid, 0, len(reqs))
	recs := make([]jobstatus.Record, 0, len(reqs))
	for i, req := range reqs {
		items[i].Index = i
		job, code, err := s.validator.Validate(req)
		if err != nil {
			setItemError(&items[i], err)
			continue
		}
		recs = append(recs, s.prepare(&job))
		todo = append(todo, valid{i: i, job: job, code: code})
	}
	if len(todo) == 0 {
		return items, nil
	}

	// Record every job in one pipeline; keep the ones this call created. The replies are read
	// even if the request is canceled meanwhile: a record that was written must be known, so that
	// its job is enqueued or ended below, never left queued without a task.
	if err := ctx.Err(); err != nil {
		for _, v := range todo {
			setItemError(&items[v.i], fmt.Errorf("record job: %w", err))
		}
		return items, nil
	}
	created := todo[:0]
	for k, res := range s.store.CreateMany(context.WithoutCancel(ctx), recs) {
		v, it := todo[k], &items[todo[k].i]
		switch {
		case res.Err != nil:
			setItemError(it, fmt.Errorf("record job: %w", res.Err))
		case !res.Created:
			it.ID, it.State, it.Existing = res.Record.ID, string(res.Record.State), true
		default:
			it.ID, it.State = res.Record.ID, string(res.Record.State)
			v.job.ID = res.Record.ID
			created = append(created, v)
		}
	}
	fail := func(v valid, err error) {
		it := &items[v.i]
		it.ID, it.State = "", ""
		setItemError(it, s.abandon(ctx, v.job.ID, err))
	}
	ready := make([]valid, 0, len(created))
	for _, v := range created {
		task, err := s.taskFor(&v.job, v.job.ID, v.code)
		if err != nil {
			fail(v, err)
			continue
		}
		v.task = task
		ready = append(ready, v)
	}
	// Keep the payloads of jobs that may be redialled, in one pipeline.
	kept := s.redialer.keepPayloads(ctx, len(ready), func(k int) (Job, []byte) { return ready[k].job, ready[k].task.Payload() }, s.retention)
	enq := ready[:0]
	for k, v := range ready {
		if kept[k] != nil {
			fail(v, kept[k])
			continue
		}
		enq = append(enq, v)
	}

	// Enqueue concurrently: asynq's Client is safe for concurrent use and each enqueue is one
	// script, one round trip, so a batch of 1,000 one after the other would be bound by latency.
	const workers = 16
	var wg sync.WaitGroup
	next := make(chan valid)
	for range min(workers, len(enq)) {
		wg.Go(func() {
			for v := range next {
				if err := s.enqueue(ctx, v.job, v.task); err != nil {
					fail(v, err)
				}
			}
		})
	}
	for _, v := range enq {
		next <- v
	}
	close(next)
	wg.Wait()
	return items, nil
}

// keepPayloads is keepPayload for n jobs of a batch, in one pipeline; job(k) gives the k-th job
// and its payload. It returns one error (or nil) per job. Jobs whose policy allows no redial
// send nothing.
func (r *Redialer) keepPayloads(ctx context.Context, n int, job func(k int) (Job, []byte), ttl time.Duration) []error {
	errs := make([]error, n)
	if r == nil {
		return errs
	}
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, n)
	for k := range n {
		j, payload := job(k)
		if r.policies.forJob(j.Kind, j.Queue).Max > 0 {
			cmds[k] = pipe.Set(ctx, payloadKey(r.prefix, j.ID), payload, ttl)
		}
	}
	if pipe.Len() == 0 {
		return errs
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	for k, cmd := range cmds {
		if cmd != nil && cmd.Err() != nil {
			j, _ := job(k)
			errs[k] = fmt.Errorf("keep payload of %s for redials: %w", j.ID, cmd.Err())
		}
	}
	return errs
}

func setItemError(item *BatchItem, err error) {
	var fe *FieldError
	if errors.As(err, &fe) {
		item.Error, item.Field = fe.Message, fe.Field
		return
	}
	item.Error = "not submitted: " + err.Error()
}

// Status returns the job record as JSON.
func (s *Submitter) Status(ctx context.Context, id string) (json.RawMessage, error) {
	rec, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(rec)
}

// Get returns the job record.
func (s *Submitter) Get(ctx context.Context, id string) (jobstatus.Record, error) {
	rec, err := s.store.Get(ctx, id)
	if errors.Is(err, jobstatus.ErrNotFound) {
		return jobstatus.Record{}, fmt.Errorf("get job %s: %w", id, ErrNotFound)
	}
	return rec, err
}

// Cancel cancels a job that has not been dialled and returns its record as JSON.
func (s *Submitter) Cancel(ctx context.Context, id string) (json.RawMessage, error) {
	rec, err := s.CancelRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	return json.Marshal(rec)
}

// CancelRecord cancels a job that has not been dialled: its record ends `canceled` and its task
// is deleted when it is still waiting (a task already taken finds the record canceled and stops).
func (s *Submitter) CancelRecord(ctx context.Context, id string) (jobstatus.Record, error) {
	rec, err := s.store.Cancel(ctx, id, s.now().UTC())
	switch {
	case errors.Is(err, jobstatus.ErrNotFound):
		return jobstatus.Record{}, fmt.Errorf("cancel job %s: %w", id, ErrNotFound)
	case errors.Is(err, jobstatus.ErrConflict):
		return rec, fmt.Errorf("cancel job %s (state %s): %w", id, rec.State, ErrAlreadyDispatched)
	case err != nil:
		return jobstatus.Record{}, fmt.Errorf("cancel job %s: %w", id, err)
	}
	s.metrics.ended(Kind(rec.Kind), string(jobstatus.StateCanceled))
	// Drop the waiting task too, so that a canceled job leaves nothing in the queues. A task
	// already taken by a worker finds the record canceled and stops.
	if err := s.inspector.DeleteTask(rec.Queue, rec.ID); err != nil &&
		!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		s.log.Warn("delete canceled task", "job_id", rec.ID, "err", err)
	}
	return rec, nil
}

// Close releases the asynq client (not the shared Redis client).
func (s *Submitter) Close() error { return nil }
