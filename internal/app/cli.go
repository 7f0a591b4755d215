package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/config"
)

// ParseFlags reads a binary's settings: the flags of Bind (plus extra's), each defaulting to its
// environment variable. It returns the config, or done with the exit code when the binary should
// stop now (--help: 0, bad flags or environment: 2).
func ParseFlags(name, role, summary string, args []string, getenv config.Getenv, stderr io.Writer,
	extra func(*flag.FlagSet)) (cfg *Config, fs *flag.FlagSet, code int, done bool) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	set := config.NewSet(fs, getenv)
	cfg = Bind(set, role)
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\n%s Every flag defaults to its environment variable.\n\n", name, summary)
		fs.PrintDefaults()
		set.PrintSecrets(stderr)
	}
	if err := set.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, fs, 0, true
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return nil, fs, 2, true
	}
	return cfg, fs, 0, false
}

// Process is what a production binary shares between its components: the logger, the one Redis
// client (the caller closes it, once) and the metrics registry.
type Process struct {
	Log      *slog.Logger
	Redis    redis.UniversalClient
	Registry *prometheus.Registry
}

// OpenProcess builds the logger, the Redis client and the registry after validate accepts cfg.
func OpenProcess(cfg *Config, stderr io.Writer, validate func() error) (*Process, error) {
	log, err := NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return nil, err
	}
	if err := validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	rdb, err := NewRedis(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	return &Process{Log: log, Redis: rdb, Registry: NewRegistry()}, nil
}

// Deps returns the process's shared resources for NewGateway and NewWorker.
func (p *Process) Deps() Deps { return Deps{Redis: p.Redis, Registry: p.Registry, Logger: p.Log} }
