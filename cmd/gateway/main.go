// Command gateway is voicequeue's HTTP side: the producers' API (/v1/jobs…), the provider's pushes
// (/callbacks/{secret}/status and /fee) and the admin endpoints.
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

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/config"
	"github.com/voicequeue/voicequeue/internal/httpserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

func run(ctx context.Context, args []string, getenv config.Getenv, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	set := config.NewSet(fs, getenv)
	cfg := app.Bind(set, "gateway")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gateway [flags]\n\nServes the producer API and the provider's pushes. Every flag defaults to its environment variable.\n\n")
		fs.PrintDefaults()
		set.PrintSecrets(stderr)
	}
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "gateway:", err)
		return 2
	}
	log, err := app.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 2
	}
	if err := cfg.ValidateGateway(false); err != nil {
		fmt.Fprintln(stderr, "gateway: configuration:", err)
		return 2
	}
	rdb, err := app.NewRedis(cfg.RedisURL)
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 2
	}
	defer rdb.Close()
	reg := app.NewRegistry()
	gw, err := app.NewGateway(cfg, app.Deps{Redis: rdb, Registry: reg, Logger: log}, app.NewMetrics(reg), false)
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	code := 0
	for _, s := range []struct{ name, addr string }{{"api", cfg.HTTPAddr}, {"admin", cfg.AdminAddr}} {
		handler := gw.Handler
		if s.name == "admin" {
			handler = gw.Admin
		}
		wg.Go(func() {
			if err := httpserver.Serve(ctx, httpserver.New(s.addr, handler, log), nil, cfg.ShutdownTimeout); err != nil {
				log.Error("server", "server", s.name, "err", err)
				mu.Lock()
				code = 1
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Go(func() { gw.Run(ctx) })
	log.Info("gateway started", "http_addr", cfg.HTTPAddr, "admin_addr", cfg.AdminAddr)
	wg.Wait()
	log.Info("gateway stopped")
	return code
}
