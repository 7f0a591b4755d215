package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/config"
	"github.com/voicequeue/voicequeue/internal/httpserver"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// bench holds what every target shares: the bench database on the real Redis, the secrets of
// the run, the work directory (binaries, logs, profiles) and the logger.
type bench struct {
	redisURL string        // REDIS_URL with the bench database
	rdb      *redis.Client // the bench's own client (flush, INFO, MEMORY USAGE)
	log      *slog.Logger  // warnings of every in-process component, to a file
	dir      string        // work directory
	profile  string        // directory for CPU profiles ("" = none)
	bins     *binaries     // built on first use
	sec      secrets       // credentials of the run
	o        options       // sizes and switches
	rp       *report       // results
	progress func(string, ...any)
	stacks   int // in-process stacks built so far
}

// secrets are generated per run; nothing here is a real credential.
type secrets struct {
	appKey, appSecret, pushSecret, apiToken string
}

func newSecrets() secrets {
	return secrets{
		appKey:     "vqbench-app-key",
		appSecret:  randomAlnum(32),
		pushSecret: randomAlnum(24),
		apiToken:   randomAlnum(32),
	}
}

func randomAlnum(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// displayNumber is the app's fixed-line number in every run.
const displayNumber = "+8675500000001"

// benchDB returns REDIS_URL pointed at database db, and refuses DB 0 (it holds the test leases)
// and anything but a standalone server (the bench flushes its database).
func benchDB(raw string, db int) (string, *redis.Options, error) {
	if db < 1 || db > 15 {
		return "", nil, fmt.Errorf("--db %d: use a dedicated database 1-15 (never 0)", db)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return "", nil, fmt.Errorf("REDIS_URL %s: the bench needs a standalone server (redis:// or rediss://)", u.Redacted())
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
		return "", nil, fmt.Errorf("REDIS_URL host %q: the bench runs on loopback only", h)
	}
	u.Path = "/" + strconv.Itoa(db)
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return "", nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	return u.String(), opts, nil
}

// flush empties the bench database.
func (b *bench) flush(ctx context.Context) error {
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("flush bench database: %w", err)
	}
	return nil
}

// baseEnv is the configuration every component of a run gets, as environment variables: caps
// and windows off unless a target sets them. Processes get it as their environment, in-process
// components through app.Bind, so both read exactly the same settings.
func (b *bench) baseEnv(providerURL, gatewayURL string) map[string]string {
	env := map[string]string{
		"REDIS_URL":                         b.redisURL,
		"VOICEQUEUE_PROVIDER_URL":           providerURL,
		"VOICEQUEUE_APP_KEY":                b.sec.appKey,
		"VOICEQUEUE_APP_SECRET":             b.sec.appSecret,
		"VOICEQUEUE_DISPLAY_NUMBER":         displayNumber,
		"VOICEQUEUE_PUSH_BASE_URL":          gatewayURL,
		"VOICEQUEUE_PUSH_SECRET":            b.sec.pushSecret,
		"VOICEQUEUE_API_TOKEN":              b.sec.apiToken,
		"VOICEQUEUE_LOG_LEVEL":              "warn",
		"VOICEQUEUE_CALLEE_CAPS_VERIFY":     "off",
		"VOICEQUEUE_CALLEE_CAPS_NOTIFY":     "off",
		"VOICEQUEUE_CALLEE_CAPS_BULK":       "off",
		"VOICEQUEUE_CALLEE_CAPS_CLICK2CALL": "off",
		// An empty VOICEQUEUE_CALLING_WINDOW_* falls back to the default window (config.Set
		// treats an empty variable as unset), so "always" is written as a full day.
		"VOICEQUEUE_CALLING_WINDOW_NOTIFY": "00:00-24:00",
		"VOICEQUEUE_CALLING_WINDOW_BULK":   "00:00-24:00",
	}
	return env
}

// newConfig reads env through app.Bind, as the binaries do.
func newConfig(env map[string]string) (*app.Config, error) {
	fs := flag.NewFlagSet("vqbench", flag.ContinueOnError)
	set := config.NewSet(fs, func(k string) string { return env[k] })
	cfg := app.Bind(set, "worker")
	if err := set.Parse(nil); err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	return cfg, nil
}

// listen opens a loopback listener on a free port.
func listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	return ln, nil
}

// freeAddr returns a loopback address that was free a moment ago (for child processes).
func freeAddr() (string, error) {
	ln, err := listen()
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr, nil
}

// servers runs HTTP servers on loopback until stopped.
type servers struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    *slog.Logger
}

func newServers(log *slog.Logger) *servers {
	ctx, cancel := context.WithCancel(context.Background())
	return &servers{ctx: ctx, cancel: cancel, log: log}
}

// serve serves h on ln (httpserver: every timeout set) and returns its base URL.
func (s *servers) serve(ln net.Listener, h http.Handler) string {
	srv := httpserver.New("", h, s.log)
	s.wg.Go(func() {
		if err := httpserver.Serve(s.ctx, srv, ln, 5*time.Second); err != nil {
			s.log.Error("bench server", "err", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func (s *servers) stop() {
	s.cancel()
	s.wg.Wait()
}

// stackOptions shape an in-process stack.
type stackOptions struct {
	SimRate  float64 // simulator's calls/s cap (0 = none)
	SimPorts int     // simulator's ports (0 = none)
	SimSpeed float64 // simulator time scale
	Env      map[string]string
	// NoWorker builds no in-process worker (a worker process, or none).
	NoWorker bool
}

// stack is the product assembled in this process: the simulator and the gateway served over real
// loopback HTTP, and the worker, all on the bench database.
type stack struct {
	cfg    *app.Config
	env    map[string]string
	rdb    redis.UniversalClient
	sim    *voicesim.Simulator
	tap    *tap
	simURL string
	gwURL  string
	gw     *app.Gateway
	wk     *app.Worker
	srv    *servers
	reg    *prometheus.Registry

	wkCancel context.CancelFunc
	wkDone   chan struct{}
	gwCancel context.CancelFunc
	gwDone   chan struct{}
}

func (b *bench) newStack(o stackOptions) (*stack, error) {
	simLn, err := listen()
	if err != nil {
		return nil, err
	}
	gwLn, err := listen()
	if err != nil {
		_ = simLn.Close()
		return nil, err
	}
	simURL, gwURL := "http://"+simLn.Addr().String(), "http://"+gwLn.Addr().String()
	env := b.baseEnv(simURL, gwURL)
	// The gateway's push spool (used while Redis is unreachable) gets a directory of its own:
	// its default is named after the listen address, which in-process stacks do not set.
	b.stacks++
	env["VOICEQUEUE_SPOOL_DIR"] = filepath.Join(b.dir, fmt.Sprintf("spool-%d", b.stacks))
	for k, v := range o.Env {
		env[k] = v
	}
	cfg, err := newConfig(env)
	if err != nil {
		_ = simLn.Close()
		_ = gwLn.Close()
		return nil, err
	}
	sim, err := voicesim.New(voicesim.Config{
		AppKey: b.sec.appKey, AppSecret: b.sec.appSecret, Rate: o.SimRate, Ports: o.SimPorts,
		Speed: o.SimSpeed, Logger: b.log.With("component", "voicesim"), MaxRecords: 200_000,
	})
	if err != nil {
		_ = simLn.Close()
		_ = gwLn.Close()
		return nil, fmt.Errorf("new simulator: %w", err)
	}
	// The product's own Redis client, built from REDIS_URL as the binaries build it.
	rdb, err := app.NewRedis(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	reg := app.NewRegistry()
	m := app.NewMetrics(reg)
	deps := app.Deps{Redis: rdb, Registry: reg, Logger: b.log}
	gw, err := app.NewGateway(cfg, deps, m, false)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("new gateway: %w", err)
	}
	st := &stack{cfg: cfg, env: env, rdb: rdb, sim: sim, gw: gw, srv: newServers(b.log), reg: reg}
	if !o.NoWorker {
		wk, err := app.NewWorker(cfg, deps, m, app.WorkerOptions{})
		if err != nil {
			_ = rdb.Close()
			return nil, fmt.Errorf("new worker: %w", err)
		}
		st.wk = wk
	}
	gwCtx, gwCancel := context.WithCancel(context.Background())
	st.gwCancel, st.gwDone = gwCancel, make(chan struct{})
	go func() {
		defer close(st.gwDone)
		gw.Run(gwCtx) // replays spooled pushes; closes the spool at the end
	}()
	st.tap = newTap(sim.Handler())
	st.simURL = st.srv.serve(simLn, st.tap)
	st.gwURL = st.srv.serve(gwLn, gw.Handler)
	return st, nil
}

// startWorker starts the in-process worker.
func (st *stack) startWorker() {
	ctx, cancel := context.WithCancel(context.Background())
	st.wkCancel, st.wkDone = cancel, make(chan struct{})
	go func() {
		defer close(st.wkDone)
		_ = st.wk.Run(ctx)
	}()
}

// close stops the worker, the simulator and the servers, and closes the Redis client.
func (st *stack) close() {
	if st.wkCancel != nil {
		st.wkCancel()
		<-st.wkDone
	}
	_ = st.sim.Close()
	st.srv.stop()
	st.gwCancel()
	<-st.gwDone
	_ = st.rdb.Close()
}

// tap counts the provider requests the simulator accepted (reply resultcode "0"), by path, and
// signals when a count is reached. It reads only the first bytes of each reply.
type tap struct {
	next     http.Handler
	total    atomic.Int64
	lastNano atomic.Int64
	mu       sync.Mutex
	byPath   map[string]int
	want     int64
	reached  chan struct{}
}

func newTap(next http.Handler) *tap {
	return &tap{next: next, byPath: map[string]int{}}
}

// await returns a channel closed once total reaches n.
func (t *tap) await(n int64) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want, t.reached = n, make(chan struct{})
	if t.total.Load() >= n {
		close(t.reached)
		t.reached = nil
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return t.reached
}

func (t *tap) count(path string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byPath[path]
}

var acceptedPrefix = []byte(`{"resultcode":"0"`)

func (t *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pw := &peekWriter{ResponseWriter: w}
	t.next.ServeHTTP(pw, r)
	if r.Method != http.MethodPost || !bytes.HasPrefix(pw.head, acceptedPrefix) {
		return
	}
	n := t.total.Add(1)
	t.lastNano.Store(time.Now().UnixNano())
	t.mu.Lock()
	t.byPath[r.URL.Path]++
	if t.reached != nil && n >= t.want {
		close(t.reached)
		t.reached = nil
	}
	t.mu.Unlock()
}

// peekWriter keeps the first bytes of a reply.
type peekWriter struct {
	http.ResponseWriter
	head []byte
}

func (p *peekWriter) Write(b []byte) (int, error) {
	if len(p.head) < len(acceptedPrefix) {
		p.head = append(p.head, b[:min(len(b), len(acceptedPrefix)-len(p.head))]...)
	}
	return p.ResponseWriter.Write(b)
}

// callee returns the i-th bench number: a valid Chinese mobile number ending in 1, so that no
// scripted simulator outcome (…0486, …0480, …0404 …) is hit; …0111 only presses 1 when asked.
func callee(i int) string { return fmt.Sprintf("+86139%07d1", i%10_000_000) }

// redisInfo reads counters of the Redis server for the round trips and CPU a phase cost.
type redisInfo struct {
	commands int64   // total_commands_processed
	cpu      float64 // used_cpu_user + used_cpu_sys, seconds
	// usec and calls per command (INFO commandstats; commands run by scripts count too).
	usec, calls map[string]int64
}

func (b *bench) redisInfo(ctx context.Context) redisInfo {
	ri := redisInfo{usec: map[string]int64{}, calls: map[string]int64{}}
	raw, err := b.rdb.Info(ctx, "stats", "cpu", "commandstats").Result()
	if err != nil {
		return ri
	}
	fields := parseInfo(raw)
	ri.commands, _ = strconv.ParseInt(fields["total_commands_processed"], 10, 64)
	u, _ := strconv.ParseFloat(fields["used_cpu_user"], 64)
	s, _ := strconv.ParseFloat(fields["used_cpu_sys"], 64)
	ri.cpu = u + s
	for k, v := range fields {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(v, ",") {
			key, val, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(val, 10, 64)
			switch key {
			case "calls":
				ri.calls[name] = n
			case "usec":
				ri.usec[name] = n
			}
		}
	}
	return ri
}

// topCommands lists the commands that took the most Redis time between two readings, per job.
func (a redisInfo) topCommands(b redisInfo, jobs, n int) string {
	type row struct {
		name        string
		usec, calls int64
	}
	var rows []row
	for k, v := range b.usec {
		if d := v - a.usec[k]; d > 0 {
			rows = append(rows, row{k, d, b.calls[k] - a.calls[k]})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].usec > rows[j].usec })
	var parts []string
	for _, r := range rows[:min(n, len(rows))] {
		parts = append(parts, fmt.Sprintf("%s %.2f calls %.0f µs", strings.ToUpper(r.name),
			float64(r.calls)/float64(jobs), float64(r.usec)/float64(jobs)))
	}
	return strings.Join(parts, "; ")
}

func parseInfo(raw string) map[string]string {
	out := map[string]string{}
	for _, line := range bytes.Split([]byte(raw), []byte("\n")) {
		line = bytes.TrimSpace(line)
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && len(line) > 0 && line[0] != '#' {
			out[string(k)] = string(v)
		}
	}
	return out
}

// diff returns the commands and Redis CPU seconds between two readings.
func (a redisInfo) diff(b redisInfo) (int64, float64) { return b.commands - a.commands, b.cpu - a.cpu }

// metrics summarises the product's counters whose names start with one of prefixes: each
// non-zero series as name{labels}=value (histograms as count and mean).
func (st *stack) metrics(prefixes ...string) string {
	fams, err := st.reg.Gather()
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, f := range fams {
		name := strings.TrimPrefix(f.GetName(), "voicequeue_")
		match := false
		for _, p := range prefixes {
			match = match || strings.HasPrefix(name, p)
		}
		if !match {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			series := name
			if len(labels) > 0 {
				series += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil && m.GetCounter().GetValue() != 0:
				parts = append(parts, series+"="+num(m.GetCounter().GetValue()))
			case m.GetGauge() != nil && m.GetGauge().GetValue() != 0:
				parts = append(parts, series+"="+num(m.GetGauge().GetValue()))
			case m.GetHistogram() != nil && m.GetHistogram().GetSampleCount() > 0:
				h := m.GetHistogram()
				parts = append(parts, fmt.Sprintf("%s count=%d mean=%.4g", series, h.GetSampleCount(), h.GetSampleSum()/float64(h.GetSampleCount())))
			}
		}
	}
	return strings.Join(parts, "; ")
}
