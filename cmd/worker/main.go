// Command worker places the calls: it is the asynq server that takes jobs from Redis, applies the
// call policies, calls the provider and delivers the producers' webhooks. With --dev it runs the
// whole product in one process for a demo (in-process Redis, provider simulator, gateway).
package main

import (
	"context"
	"errors"
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
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	set := config.NewSet(fs, getenv)
	cfg := app.Bind(set, "worker")
	var dev bool
	var speed float64
	fs.BoolVar(&dev, "dev", false, "embedded demo: in-process Redis, provider simulator, gateway and worker on loopback")
	fs.Float64Var(&speed, "dev-speed", 4, "demo only: simulator time scale (higher = faster calls)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: worker [flags]\n\nPlaces calls for queued jobs. Every flag defaults to its environment variable.\n\n")
		fs.PrintDefaults()
		set.PrintSecrets(stderr)
	}
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	if dev {
		return runDev(ctx, fs, cfg, speed, stdout, stderr)
	}
	log, err := app.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	if err := cfg.ValidateWorker(); err != nil {
		fmt.Fprintln(stderr, "worker: configuration:", err)
		return 2
	}
	rdb, err := app.NewRedis(cfg.RedisURL)
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	defer rdb.Close()
	reg := app.NewRegistry()
	wk, err := app.NewWorker(cfg, app.Deps{Redis: rdb, Registry: reg, Logger: log}, app.NewMetrics(reg), app.WorkerOptions{})
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	code := 0
	wg.Go(func() {
		if err := httpserver.Serve(ctx, httpserver.New(cfg.AdminAddr, wk.Admin, log), nil, 5*time.Second); err != nil {
			log.Error("admin server", "err", err)
			code = 1
			cancel()
		}
	})
	log.Info("worker started", "concurrency", cfg.Concurrency, "admin_addr", cfg.AdminAddr)
	if err := wk.Run(ctx); err != nil {
		log.Error("worker", "err", err)
		code = 1
	}
	cancel()
	wg.Wait()
	log.Info("worker stopped")
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
