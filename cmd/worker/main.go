// Command worker places the calls: it is the asynq server that takes jobs from Redis, applies the
// call policies, calls the provider and delivers the producers' webhooks. With --dev it runs the
// whole product in one process for a demo (in-process Redis, provider simulator, gateway).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/config"
	"github.com/voicequeue/voicequeue/internal/httpserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) int {
	var dev bool
	var speed float64
	cfg, fs, code, done := app.ParseFlags("worker", "worker", "Places calls for queued jobs.", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&dev, "dev", false, "embedded demo: in-process Redis, provider simulator, gateway and worker on loopback")
		fs.Float64Var(&speed, "dev-speed", 4, "demo only: simulator time scale (higher = faster calls)")
	})
	if done {
		return code
	}
	if dev {
		return runDev(ctx, fs, cfg, speed, stdout, stderr)
	}
	p, err := app.OpenProcess(cfg, stderr, cfg.ValidateWorker)
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	defer p.Redis.Close()
	wk, err := app.NewWorker(cfg, p.Deps(), app.NewMetrics(p.Registry), app.WorkerOptions{})
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var adminErr error
	wg.Go(func() {
		if adminErr = httpserver.Serve(ctx, httpserver.New(cfg.AdminAddr, wk.Admin, p.Log), nil, 5*time.Second); adminErr != nil {
			p.Log.Error("admin server", "err", adminErr)
			cancel()
		}
	})
	p.Log.Info("worker started", "concurrency", cfg.Concurrency, "admin_addr", cfg.AdminAddr)
	if err := wk.Run(ctx); err != nil {
		p.Log.Error("worker", "err", err)
		code = 1
	}
	cancel()
	wg.Wait()
	if adminErr != nil {
		code = 1
	}
	p.Log.Info("worker stopped")
	return code
}

func runDev(ctx context.Context, fs *flag.FlagSet, cfg *app.Config, speed float64, stdout, stderr io.Writer) int {
	// The demo binds to loopback unless told otherwise, and logs text at warn so that the live
	// state changes stay readable.
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if !explicit["http-addr"] {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if !explicit["admin-addr"] {
		cfg.AdminAddr = "127.0.0.1:9090"
	}
	if !explicit["log-format"] {
		cfg.LogFormat = "text"
	}
	if !explicit["log-level"] {
		cfg.LogLevel = "warn"
	}
	log, err := app.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	if err := app.RunDev(ctx, cfg, log, app.DevOptions{Speed: speed, Out: stdout}); err != nil {
		fmt.Fprintln(stderr, "worker --dev:", err)
		return 1
	}
	return 0
}
