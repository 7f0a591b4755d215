package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/voicequeue/voicequeue/internal/httpserver"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// runSim is `vqbench sim`: the provider simulator as a process of its own, with the flag names of
// cmd/voicesim that the caps run uses. It stands in for cmd/voicesim when that does not build.
func runSim(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("vqbench sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "address to listen on (loopback)")
	var cfg voicesim.Config
	fs.StringVar(&cfg.AppKey, "app-key", "", "APP_Key")
	fs.StringVar(&cfg.AppSecret, "app-secret", "", "APP_Secret")
	fs.Float64Var(&cfg.Rate, "rate", 0, "calls per second (0 = unlimited)")
	fs.IntVar(&cfg.Ports, "ports", 0, "concurrent calls (0 = unlimited)")
	fs.Float64Var(&cfg.Speed, "speed", 1, "time scale")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Logger = log
	sim, err := voicesim.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "vqbench sim:", err)
		return 2
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "vqbench sim:", err)
		return 1
	}
	if err := httpserver.Serve(ctx, httpserver.New("", sim.Handler(), log), ln, 5*time.Second); err != nil {
		fmt.Fprintln(stderr, "vqbench sim:", err)
		return 1
	}
	return 0
}
