// Command gateway is voicequeue's HTTP side: the producers' API (/v1/jobs…), the provider's pushes
// (/callbacks/{secret}/status and /fee), the queue UI (/ui/) and the admin endpoints.
package main

import (
	"context"
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
	cfg, _, code, done := app.ParseFlags("gateway", "gateway", "Serves the producer API and the provider's pushes.", args, getenv, stderr, nil)
	if done {
		return code
	}
	p, err := app.OpenProcess(cfg, stderr, func() error { return cfg.ValidateGateway(false) })
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 2
	}
	defer p.Redis.Close()
	gw, err := app.NewGateway(cfg, p.Deps(), app.NewMetrics(p.Registry), false)
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, s := range []struct{ name, addr string }{{"api", cfg.HTTPAddr}, {"admin", cfg.AdminAddr}} {
		handler := gw.Handler
		if s.name == "admin" {
			handler = gw.Admin
		}
		wg.Go(func() {
			if err := httpserver.Serve(ctx, httpserver.New(s.addr, handler, p.Log), nil, cfg.ShutdownTimeout); err != nil {
				p.Log.Error("server", "server", s.name, "err", err)
				mu.Lock()
				code = 1
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Go(func() { gw.Run(ctx) })
	p.Log.Info("gateway started", "http_addr", cfg.HTTPAddr, "admin_addr", cfg.AdminAddr)
	wg.Wait()
	p.Log.Info("gateway stopped")
	return code
}
