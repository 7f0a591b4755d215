package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
)

// TaskType is the asynq task type of a webhook delivery. It is a stable
// string: tasks already queued under it must keep working across releases.
const TaskType = "webhook:deliver"

// Task defaults applied by NewTask (later options override them).
const (
	QueueName          = "webhooks"
	DefaultMaxRetry    = 10
	DefaultTaskTimeout = 30 * time.Second
	// DefaultAttemptTimeout bounds one HTTP attempt when DelivererOptions
	// gives none.
	DefaultAttemptTimeout = 10 * time.Second
)

// Retry schedule of RetryDelay: MinRetryDelay·2ⁿ, ±20 % jitter, within
// [MinRetryDelay, MaxRetryDelay].
const (
	MinRetryDelay = 10 * time.Second
	MaxRetryDelay = time.Hour
)

// maxDrain is how much of a response body is read (and thrown away) so the
// connection can be reused; a larger body just costs the connection.
const maxDrain = 64 << 10

// Payload is the task payload: one delivery of Body to URL.
type Payload struct {
	JobID string          `json:"job_id"`
	URL   string          `json:"url"`
	Body  json.RawMessage `json:"body"`
}

func (p Payload) validate() error {
	switch {
	case p.JobID == "":
		return errors.New("job_id is empty")
	case p.URL == "":
		return errors.New("url is empty")
	case len(p.Body) == 0:
		return errors.New("body is empty")
	case !json.Valid(p.Body):
		return errors.New("body is not valid JSON")
	}
	return nil
}

// NewTask returns the delivery task for p, on queue QueueName with
// DefaultMaxRetry retries and DefaultTaskTimeout; opts are applied after
// those defaults and so override them (e.g. asynq.TaskID for de-duplication).
// The URL is not checked here: check it with Guard.CheckURL when the job is
// accepted; the Deliverer checks it again.
func NewTask(p Payload, opts ...asynq.Option) (*asynq.Task, error) {
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("create webhook task: %w", err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("create webhook task: %w", err)
	}
	all := append([]asynq.Option{
		asynq.Queue(QueueName),
		asynq.MaxRetry(DefaultMaxRetry),
		asynq.Timeout(DefaultTaskTimeout),
	}, opts...)
	return asynq.NewTask(TaskType, b, all...), nil
}

// StatusError is a non-2xx answer from a producer's endpoint.
type StatusError struct {
	StatusCode int
	// RetryAfter is the Retry-After of a 429 or 503 answer, if any.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("webhook endpoint answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// Temporary reports whether the status may change on a later attempt:
// 408, 429 and 5xx.
func (e *StatusError) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// DelivererOptions configure a Deliverer. Only Key is required.
type DelivererOptions struct {
	// Key is the webhook signing key shared with producers (required).
	Key []byte
	// ExtraKeys are also signed with, one more v1 each: during rotation,
	// sign with the new key here (or the old one) until producers switch.
	ExtraKeys [][]byte
	// Guard is the URL policy; nil means NewGuard(nil) (nothing opened).
	Guard *Guard
	// Client sends the requests; nil means Guard.HTTPClient(Timeout). A
	// client of your own should keep the Guard's dialer and CheckRedirect.
	Client *http.Client
	// Timeout bounds one attempt; 0 means DefaultAttemptTimeout.
	Timeout time.Duration
	// UserAgent of the requests; "" means "voicequeue-webhook/1".
	UserAgent string
	// Logger gets one line per attempt; nil discards.
	Logger *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Now is the clock used for signature timestamps; nil means time.Now.
	Now func() time.Time
}

// Validate reports a configuration that NewDeliverer would refuse.
func (o DelivererOptions) Validate() error {
	if len(o.Key) == 0 {
		return errors.New("validate webhook deliverer options: signing key is empty")
	}
	for i, k := range o.ExtraKeys {
		if len(k) == 0 {
			return fmt.Errorf("validate webhook deliverer options: extra key %d is empty", i)
		}
	}
	if o.Timeout < 0 {
		return errors.New("validate webhook deliverer options: negative timeout")
	}
	return nil
}

// Deliverer is the asynq handler of TaskType. Safe for concurrent use.
type Deliverer struct {
	keys      [][]byte
	guard     *Guard
	client    *http.Client
	timeout   time.Duration
	userAgent string
	log       *slog.Logger
	metrics   *Metrics
	now       func() time.Time
}

// NewDeliverer returns a Deliverer. It panics when opts.Validate fails (an
// empty key would sign webhooks anyone can forge): call Validate first to
// report a configuration error nicely.
func NewDeliverer(opts DelivererOptions) *Deliverer {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	d := &Deliverer{
		keys:      append([][]byte{opts.Key}, opts.ExtraKeys...),
		guard:     opts.Guard,
		client:    opts.Client,
		timeout:   opts.Timeout,
		userAgent: opts.UserAgent,
		log:       opts.Logger,
		metrics:   opts.Metrics,
		now:       opts.Now,
	}
	if d.guard == nil {
		d.guard = NewGuard(nil)
	}
	if d.timeout == 0 {
		d.timeout = DefaultAttemptTimeout
	}
	if d.client == nil {
		d.client = d.guard.HTTPClient(d.timeout)
	}
	if d.userAgent == "" {
		d.userAgent = "voicequeue-webhook/1"
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "webhook")
	if d.now == nil {
		d.now = time.Now
	}
	return d
}

// ProcessTask delivers one webhook: a POST of the payload body with
// Content-Type application/json, SignatureHeader and JobIDHeader. A 2xx
// answer completes the task. 408, 429, 5xx and network errors (timeouts
// included) return a retryable error (see RetryDelay). A refused URL or
// address, another status, too many redirects or a malformed payload return
// an error wrapping asynq.SkipRetry. Errors never carry the URL's query or
// userinfo.
func (d *Deliverer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p Payload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		d.metrics.result(ResultFailed)
		d.log.ErrorContext(ctx, "webhook payload does not decode", "error", err)
		return fmt.Errorf("decode webhook payload: %w: %w", err, asynq.SkipRetry)
	}
	if err := p.validate(); err != nil {
		d.metrics.result(ResultFailed)
		d.log.ErrorContext(ctx, "webhook payload invalid", "job_id", p.JobID, "error", err)
		return fmt.Errorf("validate webhook payload: %w: %w", err, asynq.SkipRetry)
	}
	log := d.log.With("job_id", p.JobID, "url", RedactURL(p.URL))
	if n, ok := asynq.GetRetryCount(ctx); ok {
		log = log.With("attempt", n+1)
	}
	if err := d.guard.CheckURL(p.URL); err != nil {
		d.metrics.result(ResultRefused)
		log.WarnContext(ctx, "webhook URL refused", "error", err)
		return fmt.Errorf("deliver webhook for job %s: %w: %w", p.JobID, err, asynq.SkipRetry)
	}

	err := d.post(ctx, p)
	switch {
	case err == nil:
		d.metrics.result(ResultDelivered)
		log.DebugContext(ctx, "webhook delivered")
		return nil
	case errors.Is(err, ErrForbiddenAddress):
		d.metrics.result(ResultRefused)
		log.WarnContext(ctx, "webhook address refused", "error", err)
		return fmt.Errorf("deliver webhook for job %s: %w: %w", p.JobID, err, asynq.SkipRetry)
	case !retryable(err):
		d.metrics.result(ResultFailed)
		log.WarnContext(ctx, "webhook failed permanently", "error", err)
		return fmt.Errorf("deliver webhook for job %s: %w: %w", p.JobID, err, asynq.SkipRetry)
	case lastAttempt(ctx):
		d.metrics.result(ResultFailed)
		log.WarnContext(ctx, "webhook failed on its last attempt", "error", err)
		return fmt.Errorf("deliver webhook for job %s: %w", p.JobID, err)
	default:
		d.metrics.result(ResultRetry)
		log.InfoContext(ctx, "webhook attempt failed, will retry", "error", err)
		return fmt.Errorf("deliver webhook for job %s: %w", p.JobID, err)
	}
}

// post makes one attempt and returns nil for a 2xx answer, a *StatusError
// for another answer, or the transport error with the URL redacted.
func (d *Deliverer) post(ctx context.Context, p Payload) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return &URLError{URL: RedactURL(p.URL), Reason: "cannot build request", Err: ErrInvalidURL}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.userAgent)
	req.Header.Set(SignatureHeader, signHeader(d.keys, d.now(), p.Body))
	req.Header.Set(JobIDHeader, p.JobID)

	start := time.Now()
	resp, err := d.client.Do(req)
	d.metrics.observe(time.Since(start))
	if err != nil {
		if resp != nil { // a refused redirect returns the last response, body closed
			resp.Body.Close()
		}
		return redactError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	se := &StatusError{StatusCode: resp.StatusCode}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), d.now())
	}
	return se
}

// retryable says whether a failed attempt may succeed later.
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Temporary()
	}
	// Refusals and redirect loops will not change by waiting; transport
	// errors, timeouts and cancellation (shutdown) may.
	return !errors.Is(err, ErrInvalidURL) && !errors.Is(err, ErrTooManyRedirects)
}

// lastAttempt reports whether asynq will not retry this task after a failure.
func lastAttempt(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= max
}

// redactError strips query and userinfo from the URL that net/http puts in
// its *url.Error, so neither logs nor the error stored by asynq hold them.
func redactError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
	}
	return err
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return min(time.Duration(s)*time.Second, MaxRetryDelay)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryDelay)
	}
	return 0
}

// RetryDelay fits asynq.RetryDelayFunc for TaskType: after the n-th failure
// (n from 0) it waits MinRetryDelay·2ⁿ with ±20 % jitter, kept within
// [MinRetryDelay, MaxRetryDelay]: about 10 s, 20 s, 40 s … 1 h. A Retry-After
// of a 429/503 answer is honoured when longer (up to MaxRetryDelay).
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	base := MaxRetryDelay
	if n >= 0 && n < 20 {
		base = min(MinRetryDelay<<n, MaxRetryDelay)
	}
	// jitter in [0.8, 1.2)·base
	d := base*4/5 + time.Duration(rand.Int64N(int64(base*2/5)))
	d = max(MinRetryDelay, min(d, MaxRetryDelay))
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > d {
		d = min(se.RetryAfter, MaxRetryDelay)
	}
	return d
}
