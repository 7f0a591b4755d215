package app

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/voicequeue/voicequeue/internal/breaker"
	"github.com/voicequeue/voicequeue/internal/httpserver"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/voice"
	"github.com/voicequeue/voicequeue/internal/webhook"
)

// Worker is the asynq server that places calls and delivers webhooks.
type Worker struct {
	Server *asynq.Server // dials: notify, then bulk
	// Verify dials verification calls, with workers of its own (queue.VerifyQueues).
	Verify *asynq.Server
	Mux    *asynq.ServeMux
	// Webhooks delivers producer webhooks from the webhooks queue.
	Webhooks    *asynq.Server
	WebhooksMux *asynq.ServeMux
	Admin       http.Handler
	ready       func(context.Context) error
}

// WorkerOptions are the worker's extras beyond Config.
type WorkerOptions struct {
	// HTTPClient for provider requests (nil: built from the config, TLS verification on).
	HTTPClient *http.Client
	// TLSConfig for webhooks (tests only; nil keeps the defaults).
	WebhookClient *http.Client
}

// NewWorker assembles the worker.
func NewWorker(cfg *Config, deps Deps, m *Metrics, o WorkerOptions) (*Worker, error) {
	deps.defaults()
	if err := cfg.ValidateWorker(); err != nil {
		return nil, err
	}
	keys := cfg.Keys()
	client, err := voice.NewClient(voice.Config{
		BaseURL: cfg.ProviderURL, AppKey: cfg.AppKey, AppSecret: cfg.AppSecret,
		HTTPClient: o.HTTPClient, RequestTimeout: cfg.ProviderTimeout, CAFile: cfg.ProviderCA,
		Logger: deps.Logger, Now: deps.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("provider client: %w", err)
	}
	sealer, err := queue.NewCodeSealer(keys.Code)
	if err != nil {
		return nil, err
	}
	store := jobstatus.New(deps.Redis, jobstatus.Options{Retention: cfg.Retention, Now: deps.Now})
	inspector := asynq.NewInspectorFromRedisClient(deps.Redis)
	gate, err := newGate(cfg, deps.Redis, m.Limits, deps.Logger, deps.Now)
	if err != nil {
		return nil, err
	}
	finisher := &queue.Finisher{
		Gate:     gate,
		Notifier: newNotifier(cfg, deps),
		Metrics:  m.Queue, Logger: deps.Logger,
	}
	brk := breaker.New(deps.Redis, breaker.Options{
		Threshold: cfg.BreakerThreshold, Cooldown: cfg.BreakerCooldown, MaxCooldown: cfg.BreakerMaxCooldown,
		Logger: deps.Logger, Metrics: m.Breaker, Now: deps.Now,
	})
	status, fee := cfg.PushURLs()
	handler, err := queue.NewHandler(queue.HandlerOptions{
		Store: store, Dialer: client, Tagger: queue.NewTagger(keys.UserData), Sealer: sealer,
		DisplayNumber: cfg.DisplayNumber, StatusURL: status, FeeURL: fee,
		VerifyPreTone: cfg.VerifyPreTone, VerifyPosTone: cfg.VerifyPosTone, VerifyTimes: cfg.VerifyTimes,
		Gate: gate, Breaker: brk, Finisher: finisher, Pauser: inspector, DialResolveTimeout: cfg.DialResolve,
		RateBackoff: cfg.RateBackoff, MaxAttempts: cfg.MaxAttempts, Metrics: m.Queue, Logger: deps.Logger, Now: deps.Now,
	})
	if err != nil {
		return nil, err
	}
	allow, err := cfg.AllowCIDRs()
	if err != nil {
		return nil, err
	}
	delivererOpts := webhook.DelivererOptions{
		Key: keys.Webhook, Guard: webhook.NewGuard(allow), Client: o.WebhookClient,
		Logger: deps.Logger, Metrics: m.Webhook, Now: deps.Now,
	}
	if err := delivererOpts.Validate(); err != nil {
		return nil, err
	}
	deliverer := webhook.NewDeliverer(delivererOpts)

	mux := asynq.NewServeMux()
	handler.Register(mux)
	hooksMux := asynq.NewServeMux()
	hooksMux.Handle(webhook.TaskType, deliverer)

	alog := asynqLogger{deps.Logger.With("component", "asynq")}
	dialServer := func(concurrency int, queues map[string]int, check time.Duration) *asynq.Server {
		return asynq.NewServerFromRedisClient(deps.Redis, asynq.Config{
			Concurrency:              concurrency,
			Queues:                   queues,
			StrictPriority:           true,
			IsFailure:                queue.IsFailure,
			RetryDelayFunc:           queue.DefaultBackoff.RetryDelayFunc(),
			ShutdownTimeout:          cfg.ShutdownTimeout,
			TaskCheckInterval:        check,
			DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
			Logger:                   alog,
			LogLevel:                 asynqLevel(deps.Logger),
		})
	}
	srv := dialServer(cfg.Concurrency, queue.CallQueues(), cfg.TaskCheckInterval)
	// An idle asynq server polls once per 0.5–1.5 × TaskCheckInterval: the verify server polls
	// more often (10 ms by default: ~100 dequeue scripts a second per idle worker process), so
	// a verification call is picked up within milliseconds even when no campaign keeps the
	// workers busy.
	verify := dialServer(VerifyConcurrency(cfg.Concurrency), queue.VerifyQueues(), cfg.VerifyTaskCheckInterval)
	hooks := asynq.NewServerFromRedisClient(deps.Redis, asynq.Config{
		Concurrency:              max(cfg.Concurrency/5, 4),
		Queues:                   map[string]int{queue.QueueWebhooks: 1},
		RetryDelayFunc:           webhook.RetryDelay,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		TaskCheckInterval:        cfg.TaskCheckInterval,
		DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
		Logger:                   alog,
		LogLevel:                 asynqLevel(deps.Logger),
	})
	rdb := deps.Redis
	ready := func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	return &Worker{Server: srv, Verify: verify, Mux: mux, Webhooks: hooks, WebhooksMux: hooksMux,
		Admin: httpserver.Admin(deps.Registry, ready), ready: ready}, nil
}

// Run processes tasks until ctx ends, then shuts down: asynq stops taking tasks, waits up to
// ShutdownTimeout for the running ones (a provider request in flight always finishes and is
// recorded), and puts back what did not finish.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Server.Start(w.Mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if err := w.Verify.Start(w.Mux); err != nil {
		w.Server.Shutdown()
		return fmt.Errorf("start verify worker: %w", err)
	}
	if err := w.Webhooks.Start(w.WebhooksMux); err != nil {
		w.Server.Shutdown()
		w.Verify.Shutdown()
		return fmt.Errorf("start webhook worker: %w", err)
	}
	<-ctx.Done()
	var wg sync.WaitGroup
	wg.Go(w.Server.Shutdown)
	wg.Go(w.Verify.Shutdown)
	wg.Go(w.Webhooks.Shutdown)
	wg.Wait()
	return nil
}

// VerifyConcurrency is how many verification calls a worker process dials at once, beside the
// VOICEQUEUE_CONCURRENCY tasks of its call server: a fifth of it, at least 4. Verification
// traffic is light (one call per person asking for a code), and a worker spends milliseconds on
// each, so a few workers serve hundreds of calls per second.
func VerifyConcurrency(concurrency int) int {
	return max(concurrency/5, 4)
}

// NewRegistry returns a registry with the Go and process collectors and build info.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "voicequeue", Name: "build_info", Help: "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}
