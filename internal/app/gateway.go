package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/api"
	"github.com/voicequeue/voicequeue/internal/breaker"
	"github.com/voicequeue/voicequeue/internal/callback"
	"github.com/voicequeue/voicequeue/internal/httpserver"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/queuemetrics"
	"github.com/voicequeue/voicequeue/internal/queueui"
	"github.com/voicequeue/voicequeue/internal/ratelimit"
	"github.com/voicequeue/voicequeue/internal/spool"
	"github.com/voicequeue/voicequeue/internal/webhook"
)

// Deps are the shared resources of a process: one Redis client for everything (closed by the
// caller, once), one metrics registry, one logger.
type Deps struct {
	Redis    redis.UniversalClient
	Registry *prometheus.Registry
	Logger   *slog.Logger
	Now      func() time.Time
}

func (d *Deps) defaults() {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
}

// Metrics are the metric sets shared by the components of one process.
type Metrics struct {
	Spool    *spool.Metrics
	Breaker  *breaker.Metrics
	Limits   *ratelimit.Metrics
	Queue    *queue.Metrics
	Callback *callback.Metrics
	Webhook  *webhook.Metrics
}

// Gateway is the HTTP side: producer API, provider pushes, admin endpoints.
type Gateway struct {
	Handler http.Handler // API and pushes
	Admin   http.Handler // /healthz, /readyz, /metrics
	Store   *jobstatus.Store
	Submit  *queue.Submitter
	spool   *spool.Spool
	pushes  *callback.Handler
	rdb     redis.UniversalClient
}

// Run does the gateway's background work until ctx ends: it replays spooled pushes whenever
// Redis answers again. Then it closes the spool.
func (g *Gateway) Run(ctx context.Context) {
	if g.spool == nil {
		return
	}
	g.spool.Run(ctx, 500*time.Millisecond, func(ctx context.Context) bool {
		return g.rdb.Ping(ctx).Err() == nil
	}, g.pushes.ApplySpooled)
	_ = g.spool.Close()
}

// NewGateway assembles the gateway. m may be shared with a worker in the same process.
func NewGateway(cfg *Config, deps Deps, m *Metrics, dev bool) (*Gateway, error) {
	deps.defaults()
	if err := cfg.ValidateGateway(dev); err != nil {
		return nil, err
	}
	allow, _ := cfg.AllowCIDRs()
	guard := webhook.NewGuard(allow)
	keys := cfg.Keys()
	storeOpts := jobstatus.Options{Retention: cfg.Retention, Now: deps.Now}
	store := jobstatus.New(deps.Redis, storeOpts)
	redialer := queue.NewRedialer(queue.RedialerOptions{
		Redis: deps.Redis, Store: store, Policies: cfg.RedialPolicies(),
		Task: queue.TaskOptions{MaxAttempts: cfg.MaxAttempts}, Logger: deps.Logger, Now: deps.Now,
	})
	sub, err := queue.NewSubmitter(queue.SubmitterOptions{
		Redis: deps.Redis, DefaultRegion: cfg.DefaultRegion, CodeKey: keys.Code,
		CheckCallbackURL: guard.CheckURL, Logger: deps.Logger, Store: storeOpts,
		Task: queue.TaskOptions{MaxAttempts: cfg.MaxAttempts}, CodeLength: cfg.CodeLength,
		Metrics: m.Queue, Now: deps.Now, Redialer: redialer,
	})
	if err != nil {
		return nil, err
	}
	producerAPI, err := api.New(api.Options{Submitter: sub, Tokens: cfg.Tokens(), DevMode: dev, Logger: deps.Logger})
	if err != nil {
		return nil, err
	}
	gate, err := newGate(cfg, deps.Redis, m.Limits, deps.Logger, deps.Now)
	if err != nil {
		return nil, err
	}
	finisher := &queue.Finisher{
		Gate:     gate,
		Notifier: newNotifier(cfg, deps),
		Metrics:  m.Queue, Logger: deps.Logger,
	}
	var sp *spool.Spool
	if dir := cfg.SpoolPath(); dir != "" {
		sp, err = spool.Open(spool.Options{Dir: dir, MaxBytes: int64(cfg.SpoolMaxBytes), Logger: deps.Logger, Metrics: m.Spool, Now: deps.Now})
		if err != nil {
			return nil, fmt.Errorf("open push spool (VOICEQUEUE_SPOOL_DIR): %w", err)
		}
	}
	pushes, err := callback.New(callback.Options{Spool: sp,
		Store: store, Tagger: queue.NewTagger(keys.UserData), Finisher: finisher, Redialer: redialer,
		Secret: cfg.PushSecret, Metrics: m.Callback, Logger: deps.Logger, Now: deps.Now,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	producerAPI.Register(mux)
	pushes.Register(mux)
	if cfg.UI {
		mux.Handle("/ui/", producerAPI.Auth(queueui.Handler(deps.Redis, "/ui/", !cfg.UIReadWrite)))
	}
	if err := deps.Registry.Register(queuemetrics.New(asynq.NewInspectorFromRedisClient(deps.Redis),
		queuemetrics.Options{Queues: []string{queue.QueueVerify, queue.QueueNotify, queue.QueueBulk, queue.QueueWebhooks}, Logger: deps.Logger})); err != nil {
		return nil, fmt.Errorf("register queue metrics: %w", err)
	}
	rdb := deps.Redis
	return &Gateway{
		Handler: mux,
		// Ready while Redis answers, or while the spool can still take pushes: a gateway that
		// dropped out of the Service during a Redis outage would lose the status pushes the
		// spool exists to keep.
		Admin: httpserver.Admin(deps.Registry, func(ctx context.Context) error {
			err := rdb.Ping(ctx).Err()
			if err != nil && sp != nil {
				return nil
			}
			return err
		}),
		Store:  store,
		Submit: sub,
		spool:  sp,
		pushes: pushes,
		rdb:    rdb,
	}, nil
}

// WebhookNotifier enqueues the signed result delivery of a finished job.
type WebhookNotifier struct {
	Client    *asynq.Client
	Inspector *asynq.Inspector
	// UnknownGrace delays the webhook of a job that ended `unknown` (no reply from the provider
	// after sending): pushes usually resolve such a job within seconds, and the producer then
	// gets one webhook with the real result instead of two.
	UnknownGrace time.Duration
}

// NotifyResult enqueues the webhook task with the job record as its body. The task ID makes it
// once per job and final state, even if the end is reported twice. When a job that ended
// `unknown` is resolved while its webhook still waits out the grace period, that webhook is
// withdrawn and only the real result is sent.
func (n *WebhookNotifier) NotifyResult(ctx context.Context, rec jobstatus.Record) error {
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode webhook body: %w", err)
	}
	opts := []asynq.Option{asynq.TaskID(webhookTaskID(rec.ID, rec.State))}
	if rec.State == jobstatus.StateUnknown && n.UnknownGrace > 0 {
		opts = append(opts, asynq.ProcessIn(n.UnknownGrace))
	} else if n.Inspector != nil {
		err := n.Inspector.DeleteTask(webhook.QueueName, webhookTaskID(rec.ID, jobstatus.StateUnknown))
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			return fmt.Errorf("withdraw unknown webhook of %s: %w", rec.ID, err)
		}
	}
	task, err := webhook.NewTask(webhook.Payload{JobID: rec.ID, URL: rec.CallbackURL, Body: body}, opts...)
	if err != nil {
		return err
	}
	if _, err := n.Client.EnqueueContext(ctx, task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue webhook of %s: %w", rec.ID, err)
	}
	return nil
}

func webhookTaskID(jobID string, state jobstatus.State) string {
	return "webhook:" + jobID + ":" + string(state)
}

func newNotifier(cfg *Config, deps Deps) *WebhookNotifier {
	return &WebhookNotifier{
		Client:       asynq.NewClientFromRedisClient(deps.Redis),
		Inspector:    asynq.NewInspectorFromRedisClient(deps.Redis),
		UnknownGrace: cfg.DialResolve,
	}
}

// NewMetrics registers every metric set on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		Spool:    spool.NewMetrics(reg),
		Breaker:  breaker.NewMetrics(reg),
		Limits:   ratelimit.NewMetrics(reg),
		Queue:    queue.NewMetrics(reg),
		Callback: callback.NewMetrics(reg),
		Webhook:  webhook.NewMetrics(reg),
	}
}
