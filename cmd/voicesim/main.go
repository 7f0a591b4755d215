// Command voicesim runs the Huawei Cloud Voice Call simulator (internal/voice/voicesim) as a
// standalone HTTP server, for the demo, staging and load tests:
//
//	voicesim --addr 127.0.0.1:8090 --app-key KEY --app-secret SECRET --rate 50 --ports 100 --speed 10
//
// Every flag has an environment default (VOICESIM_<FLAG>, upper case, dashes as underscores);
// `voicesim --help` lists them. The app secret is better passed through VOICESIM_APP_SECRET or
// --app-secret-file than as a flag, which other users can see in ps.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command's settings beside the simulator's Config.
type options struct {
	addr          string
	tlsCert       string
	tlsKey        string
	metrics       bool
	logLevel      string
	logFormat     string
	shutdown      time.Duration
	secretFile    string
	templatesFile string
}

// run parses the flags, serves until ctx ends and returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, opts, err := parseFlags(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "voicesim:", err)
		return 2
	}
	logger, err := newLogger(stderr, opts.logLevel, opts.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "voicesim:", err)
		return 2
	}
	cfg.Logger = logger
	if opts.metrics {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer = reg
	}
	sim, err := voicesim.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "voicesim:", err)
		return 2
	}
	srv := &http.Server{
		Handler:           sim.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Long enough for a held "0408" reply and injected latency.
		WriteTimeout:   cfg.ReplyTimeoutHold + cfg.Faults.Latency + 30*time.Second,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := serve(ctx, srv, sim, opts, logger)

	// Close the simulator first: it releases held replies, so that Shutdown need not wait for them.
	_ = sim.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), opts.shutdown)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("shutdown not graceful", "error", err)
		_ = srv.Close()
	}
	if serveErr != nil {
		logger.Error("serve", "error", serveErr)
		return 1
	}
	logger.Info("stopped")
	return 0
}

// serve listens on opts.addr and serves until ctx ends. During "refuse" outages it closes the
// listener, so that clients get real refused connections, and listens again when they end (use a
// fixed port for that: port 0 would come back as another port).
func serve(ctx context.Context, srv *http.Server, sim *voicesim.Simulator, opts options, log *slog.Logger) error {
	type result struct {
		gen int
		err error
	}
	done := make(chan result, 1)
	gen := 0
	var ln net.Listener
	listen := func() error {
		l, err := net.Listen("tcp", opts.addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", opts.addr, err)
		}
		ln, gen = l, gen+1
		g := gen
		log.Info("listening", "addr", l.Addr().String(), "tls", opts.tlsCert != "")
		go func() {
			var err error
			if opts.tlsCert != "" {
				err = srv.ServeTLS(l, opts.tlsCert, opts.tlsKey)
			} else {
				err = srv.Serve(l)
			}
			done <- result{g, err}
		}()
		return nil
	}
	if err := listen(); err != nil {
		return err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		refusing := sim.OutageMode() == voicesim.OutageRefuse
		switch {
		case refusing && ln != nil:
			log.Warn("refuse outage: listener closed")
			_ = ln.Close()
			ln = nil
		case !refusing && ln == nil:
			if err := listen(); err != nil {
				log.Warn("reopen listener", "error", err) // try again on the next tick
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case r := <-done:
			if r.gen == gen && ln != nil && !errors.Is(r.err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", r.err)
			}
		case <-tick.C:
		}
	}
}

// newLogger builds the slog logger of the flags.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	hopts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}

// envFlags defines flags whose defaults come from the environment.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

// env returns the variable of a flag and its value.
func (f *envFlags) env(name string) (string, string) {
	key := "VOICESIM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	return key, f.getenv(key)
}

func (f *envFlags) usage(name, usage string) string {
	key, _ := f.env(name)
	return usage + " (env " + key + ")"
}

func (f *envFlags) string(p *string, name, def, usage string) {
	if _, v := f.env(name); v != "" {
		def = v
	}
	f.fs.StringVar(p, name, def, f.usage(name, usage))
}

func (f *envFlags) bool(p *bool, name string, def bool, usage string) {
	if key, v := f.env(name); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
		def = b
	}
	f.fs.BoolVar(p, name, def, f.usage(name, usage))
}

func (f *envFlags) int(p *int, name string, def int, usage string) {
	if key, v := f.env(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
		def = n
	}
	f.fs.IntVar(p, name, def, f.usage(name, usage))
}

func (f *envFlags) int64(p *int64, name string, def int64, usage string) {
	if key, v := f.env(name); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
		def = n
	}
	f.fs.Int64Var(p, name, def, f.usage(name, usage))
}

func (f *envFlags) float(p *float64, name string, def float64, usage string) {
	if key, v := f.env(name); v != "" {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
		def = x
	}
	f.fs.Float64Var(p, name, def, f.usage(name, usage))
}

func (f *envFlags) duration(p *time.Duration, name string, def time.Duration, usage string) {
	if key, v := f.env(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s=%q: %w", key, v, err))
		}
		def = d
	}
	f.fs.DurationVar(p, name, def, f.usage(name, usage))
}

// parseFlags turns flags and environment into the simulator's Config and the command's options.
func parseFlags(args []string, getenv func(string) string, out io.Writer) (voicesim.Config, options, error) {
	var (
		cfg                             voicesim.Config
		opts                            options
		displayNumbers, outages, random string
		appSecret                       string
		maxRetries                      int
	)
	fs := flag.NewFlagSet("voicesim", flag.ContinueOnError)
	fs.SetOutput(out)
	f := &envFlags{fs: fs, getenv: getenv}

	f.string(&opts.addr, "addr", "127.0.0.1:8090", "address to listen on, host:port")
	f.string(&opts.tlsCert, "tls-cert-file", "", "serve HTTPS with this certificate (PEM); needs --tls-key-file")
	f.string(&opts.tlsKey, "tls-key-file", "", "private key (PEM) of --tls-cert-file")
	f.string(&cfg.AppKey, "app-key", "", "APP_Key the simulated platform accepts (required)")
	// The secret's environment value is read after parsing, so that --help never prints it.
	f.fs.StringVar(&appSecret, "app-secret", "", f.usage("app-secret", "APP_Secret of the app (required, unless --app-secret-file); prefer the environment variable, flags show in ps"))
	f.string(&opts.secretFile, "app-secret-file", "", "file holding the APP_Secret (wins over --app-secret)")
	f.string(&cfg.SpID, "sp-id", voicesim.DefaultSpID, "spId written in CDRs")
	f.string(&displayNumbers, "display-numbers", "", "comma-separated fixed-line numbers allowed as displayNbr/displayCalleeNbr (1010023 otherwise); empty accepts any well-formed +number")
	f.float(&cfg.Rate, "rate", 0, "calls per second the account may place (1013001 beyond it, strict sliding window); 0 = unlimited")
	f.int(&cfg.Ports, "ports", 0, "concurrent call ports (1020165 beyond them); a call holds one from accept to disconnect; 0 = unlimited")
	f.float(&cfg.Speed, "speed", 1, "time scale of calls: 1 = real time, 10 = ten times faster (scales call timings, --cdr-retry-interval and --cdr-merge-window)")
	f.duration(&cfg.SkewWindow, "skew-window", voicesim.DefaultSkewWindow, "largest allowed difference between X-AKSK Created and the clock (1010013 beyond it)")
	f.bool(&cfg.RecordingEnabled, "recording", false, "the app has recording enabled (else click2Call recordFlag \"true\" gets 1012012)")
	f.duration(&cfg.ReplyTimeoutHold, "reply-timeout-hold", voicesim.DefaultReplyTimeoutHold, "how long the reply to a callee ending in 0408 is held before the connection is dropped without reply")
	f.bool(&cfg.SignPushes, "sign-pushes", false, "sign pushes with Authorization and X-AKSK (newer doc versions); default: pushes carry no auth")
	f.bool(&cfg.PushNewlineDigest, "push-newline-digest", false, "signed pushes digest pushURL\\nNonce\\nCreated instead of the plain concatenation")
	f.duration(&cfg.PushTimeout, "push-timeout", voicesim.DefaultPushTimeout, "timeout of each push request (wall time)")
	f.duration(&cfg.CDRRetryInterval, "cdr-retry-interval", voicesim.DefaultCDRRetryInterval, "simulated time between CDR re-pushes (waits interval/speed)")
	f.int(&maxRetries, "max-cdr-retries", voicesim.DefaultMaxCDRRetries, "CDR re-pushes after a failed push (0 = none)")
	f.duration(&cfg.CDRMergeWindow, "cdr-merge-window", voicesim.DefaultCDRMergeWindow, "simulated time a CDR waits to be merged with others ending in the same second (≤50 per push)")
	f.bool(&cfg.UnixTimestamps, "unix-timestamps", false, "status-push timestamp as UNIX seconds instead of \"yyyy-MM-dd HH:mm:ss\" UTC")
	f.bool(&cfg.ClickToCallDisconnectPerLeg, "click2call-disconnect-per-leg", false, "click-to-call sends one disconnect per leg instead of one per session")
	f.string(&cfg.StopUnknownSessionCode, "stop-unknown-code", "1010002", "resultcode of callStop for an unknown or ended session")
	f.string(&opts.templatesFile, "templates-file", "", "JSON object of approved TTS templates {\"id\": \"text with ${NUM_6}…\"}; enables 1012003-1012005 checks")
	f.bool(&cfg.AllowAnyURLChars, "allow-any-url-chars", false, "accept any character in decoded statusUrl/feeUrl (default: letters, digits and - : . / _ # ? & only)")
	f.int(&cfg.MaxRecords, "max-records", voicesim.DefaultMaxRecords, "call records kept for /sim/calls (oldest dropped first)")
	f.string(&random, "random", "", "random outcomes for callees without a scripted suffix, e.g. \"busy=0.1,no-answer=0.1,rejected=0.05,powered-off=0.05,network-failure=0.02,seed=7\"")
	f.duration(&cfg.Faults.Latency, "latency", 0, "latency added before every API reply")
	f.float(&cfg.Faults.ErrorRate, "error-rate", 0, "probability of a 1010001 (HTTP 500) reply to an authenticated request")
	f.string(&outages, "outage", "", "outage windows after start, START+LENGTH:MODE comma-separated, MODE 503 or refuse, e.g. \"30s+10s:503,2m+30s:refuse\" (refuse closes the listener)")
	f.float(&cfg.Faults.FlowControlRate, "flow-control-rate", 0, "probability of a 1010010 flow-control reply to a valid call request")
	f.float(&cfg.Faults.DuplicatePushes, "duplicate-pushes", 0, "probability that a push is sent twice")
	f.float(&cfg.Faults.ReorderPushes, "reorder-pushes", 0, "probability that a status push is sent after the next push of its call")
	f.duration(&cfg.Faults.DelayPushes, "delay-pushes", 0, "delay each push by a random time up to this")
	f.int64(&cfg.Faults.Seed, "fault-seed", 0, "seed of the fault dice (0 = fixed seed 1)")
	f.bool(&opts.metrics, "metrics", true, "serve Prometheus metrics at /metrics")
	f.string(&opts.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.string(&opts.logFormat, "log-format", "json", "log format: json or text")
	f.duration(&opts.shutdown, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take")

	fs.Usage = func() {
		fmt.Fprintf(out, `voicesim: a simulator of the Huawei Cloud Voice Call platform.

The callee number's last four digits choose the outcome: 0486 busy, 0480 no answer, 0603 rejected,
0410 powered off, 0500 network failure, 0111 answers and presses 1, 0404 refused as invalid at
request time, 0503 first request gets 1010001, 0408 accepted but the reply never comes; any other
number answers. Besides the API it serves /sim/calls, /sim/stats, POST /sim/reset,
POST /sim/outage?mode=503|refuse&on=true|false[&for=30s], /healthz, /readyz and /metrics.

Usage: voicesim --addr 127.0.0.1:PORT --app-key KEY --app-secret SECRET [flags]

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, opts, err
	}
	errs := f.errs
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if appSecret == "" {
		_, appSecret = f.env("app-secret")
	}
	if opts.secretFile != "" {
		b, err := os.ReadFile(opts.secretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("read app secret: %w", err))
		}
		appSecret = strings.TrimSpace(string(b))
	}
	cfg.AppSecret = appSecret
	if cfg.AppKey == "" || cfg.AppSecret == "" {
		errs = append(errs, errors.New("--app-key and an app secret (VOICESIM_APP_SECRET, --app-secret-file or --app-secret) are required"))
	}
	if (opts.tlsCert == "") != (opts.tlsKey == "") {
		errs = append(errs, errors.New("--tls-cert-file and --tls-key-file go together"))
	}
	for n := range strings.SplitSeq(displayNumbers, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.DisplayNumbers = append(cfg.DisplayNumbers, n)
		}
	}
	cfg.MaxCDRRetries = maxRetries
	if maxRetries == 0 {
		cfg.MaxCDRRetries = -1 // the Config's 0 means the default
	}
	var err error
	if cfg.Faults.Outages, err = voicesim.ParseOutages(outages); err != nil {
		errs = append(errs, err)
	}
	if cfg.Random, err = voicesim.ParseRandom(random); err != nil {
		errs = append(errs, err)
	}
	if opts.templatesFile != "" {
		b, err := os.ReadFile(opts.templatesFile)
		if err == nil {
			err = json.Unmarshal(b, &cfg.Templates)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("read templates: %w", err))
		}
	}
	return cfg, opts, errors.Join(errs...)
}
