// Command vqbench measures voicequeue end to end on the real Redis at REDIS_URL, each target side
// by side with its anchor in the same run (issue 7; issue 3 and 4 ask for parts of it):
//
//  1. pipeline  jobs/s from submit to an accepted provider request vs bare asynq no-op tasks
//  2. verify    verify time-to-dial p50/p99 while 20,000 bulk jobs drain at a 200/s cap
//  3. push      status and CDR pushes/s at the gateway vs a bare net/http handler
//  4. submit    a 100,000-line file through `enqueue file` and through POST /v1/jobs/batch
//  5. footprint worker RSS at concurrency 100 under load; Redis bytes per finished job record
//     caps      4 worker processes against the simulator at 100 calls/s and 20 ports (issue 4)
//
// It prints one line per criterion,
//
//	bench: NAME value=… anchor=… ratio=… target=… ok=true|false
//
// then a table. Everything runs on loopback, on a dedicated Redis database (--db, default 15)
// that is flushed before and after. docs/benchmarks.md records a run and explains the numbers.
//
// `vqbench sim` serves the provider simulator as a process of its own (the caps run uses it when
// cmd/voicesim is not there).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// allTargets in the order they run.
var allTargets = []string{"pipeline", "verify", "push", "submit", "footprint", "caps"}

// options are the sizes and switches of a run; the defaults are the issue's.
type options struct {
	targets []string

	pipelineJobs   int
	pipelineConc   int
	pipelineRounds int

	verifyBulk   int
	verifyRate   float64
	verifyEvery  time.Duration
	verifyWindow time.Duration
	verifyIdle   int

	pushJobs  int
	pushConns int

	submitLines int

	footprintJobs int
	footprintConc int
	footprintKeys int

	capsJobs    int
	capsWorkers int
	capsRate    float64
	capsPorts   int
	capsSpeed   float64
	capsResolve time.Duration
	capsNoKill  bool
}

func (o *options) wants(t string) bool { return slices.Contains(o.targets, t) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "sim" {
		return runSim(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("vqbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	fs.StringVar(&redisURL, "redis-url", redisURL, "the real Redis (env REDIS_URL); only its host is used, with --db")
	db := fs.Int("db", 15, "dedicated database number (1-15; flushed before and after, never 0)")
	only := fs.String("only", strings.Join(allTargets[:5], ","), "targets to run, comma-separated, from: "+strings.Join(allTargets, ", ")+" (caps is make bench-caps)")
	dir := fs.String("dir", "", "work directory for binaries, logs and profiles (default: a new temp dir, removed unless --keep)")
	keep := fs.Bool("keep", false, "keep the work directory")
	profile := fs.String("cpuprofile", "", "write a CPU profile per in-process phase into this directory")
	quick := fs.Bool("quick", false, "small sizes: a smoke test of the bench itself, not a measurement")

	fs.IntVar(&o.pipelineJobs, "pipeline-jobs", 10_000, "1: jobs (and bare asynq tasks)")
	fs.IntVar(&o.pipelineConc, "pipeline-concurrency", 100, "1: worker concurrency (ours and bare asynq)")
	fs.IntVar(&o.pipelineRounds, "pipeline-rounds", 2, "1: alternating rounds of bare and ours; each keeps its best")
	fs.IntVar(&o.verifyBulk, "verify-bulk", 20_000, "2: bulk notify jobs in the backlog")
	fs.Float64Var(&o.verifyRate, "verify-rate", 200, "2: the cap, calls/s (ours and the simulator's)")
	fs.DurationVar(&o.verifyEvery, "verify-every", 100*time.Millisecond, "2: one verify job every")
	fs.DurationVar(&o.verifyWindow, "verify-window", 60*time.Second, "2: measure the first part of the drain only (0: until the backlog has drained)")
	fs.IntVar(&o.verifyIdle, "verify-idle", 30, "2: verify jobs for the idle anchor (no backlog)")
	fs.IntVar(&o.pushJobs, "push-jobs", 4_000, "3: jobs whose 4 status pushes and CDR are posted")
	fs.IntVar(&o.pushConns, "push-connections", 32, "3: concurrent connections")
	fs.IntVar(&o.submitLines, "submit-lines", 100_000, "4: lines in the file, jobs through the batch API")
	fs.IntVar(&o.footprintJobs, "footprint-jobs", 5_000, "5: jobs run through the worker process")
	fs.IntVar(&o.footprintConc, "footprint-concurrency", 100, "5: worker concurrency")
	fs.IntVar(&o.footprintKeys, "footprint-sample", 1_000, "5: finished records sampled with MEMORY USAGE")
	fs.IntVar(&o.capsJobs, "caps-jobs", 3_000, "caps: jobs")
	fs.IntVar(&o.capsWorkers, "caps-workers", 4, "caps: worker processes")
	fs.Float64Var(&o.capsRate, "caps-rate", 100, "caps: calls/s, ours and the simulator's")
	fs.IntVar(&o.capsPorts, "caps-ports", 20, "caps: concurrent calls, ours and the simulator's")
	fs.Float64Var(&o.capsSpeed, "caps-speed", 100, "caps: simulator time scale (a call plays out in ~85 ms)")
	fs.DurationVar(&o.capsResolve, "caps-dial-resolve", 15*time.Second, "caps: VOICEQUEUE_DIAL_RESOLVE_TIMEOUT of the workers")
	fs.BoolVar(&o.capsNoKill, "caps-no-kill", false, "caps: skip the run with a worker killed half-way")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vqbench [flags]\n       vqbench sim [flags]   (a simulator process)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	for _, t := range strings.Split(*only, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !slices.Contains(allTargets, t) {
			fmt.Fprintf(stderr, "vqbench: unknown target %q (want %s)\n", t, strings.Join(allTargets, ", "))
			return 2
		}
		o.targets = append(o.targets, t)
	}
	if *quick {
		o.pipelineJobs, o.verifyBulk, o.verifyWindow, o.verifyIdle = 2_000, 2_000, 5*time.Second, 5
		o.pushJobs, o.submitLines, o.footprintJobs, o.footprintKeys, o.capsJobs = 400, 5_000, 1_000, 100, 400
	}

	url, opts, err := benchDB(redisURL, *db)
	if err != nil {
		fmt.Fprintln(stderr, "vqbench:", err)
		return 2
	}
	workDir := *dir
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "vqbench-"); err != nil {
			fmt.Fprintln(stderr, "vqbench:", err)
			return 1
		}
		if !*keep {
			defer os.RemoveAll(workDir)
		}
	} else if err := os.MkdirAll(workDir, 0o755); err != nil {
		fmt.Fprintln(stderr, "vqbench:", err)
		return 1
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			fmt.Fprintln(stderr, "vqbench:", err)
			return 1
		}
	}
	logFile, err := os.Create(filepath.Join(workDir, "vqbench.log"))
	if err != nil {
		fmt.Fprintln(stderr, "vqbench:", err)
		return 1
	}
	defer logFile.Close()

	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		fmt.Fprintf(stderr, "vqbench: Redis at %s is not reachable: %v\n", opts.Addr, err)
		return 1
	}
	start := time.Now()
	b := &bench{
		redisURL: url, rdb: rdb, dir: workDir, profile: *profile, sec: newSecrets(), o: o, rp: &report{},
		log: slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn})),
		progress: func(format string, args ...any) {
			fmt.Fprintf(stderr, "vqbench %6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
		},
	}
	b.progress("Redis %s db %d (flushed before and after), work dir %s, GOMAXPROCS %d", opts.Addr, opts.DB, workDir, gomaxprocs())
	if err := b.flush(ctx); err != nil {
		fmt.Fprintln(stderr, "vqbench:", err)
		return 1
	}
	defer func() { _ = b.flush(context.WithoutCancel(ctx)) }()
	b.machine(ctx)

	type target struct {
		name string
		run  func(context.Context) []result
	}
	targets := []target{
		{"pipeline", b.pipeline}, {"verify", b.verify}, {"push", b.push},
		{"submit", b.submit}, {"footprint", b.footprint}, {"caps", b.caps},
	}
	for _, t := range targets {
		if !o.wants(t.name) || ctx.Err() != nil {
			continue
		}
		settle(ctx)
		t0, load0 := time.Now(), loadAvg()
		b.progress("%s: start (load average %s)", t.name, load0)
		rs := t.run(ctx)
		for _, r := range rs {
			b.progress("%s", r.Line())
		}
		b.rp.add(rs...)
		b.rp.note(t.name, "wall time, load average before → after", "%.1f s, %s → %s", time.Since(t0).Seconds(), load0, loadAvg())
		if err := b.flush(context.WithoutCancel(ctx)); err != nil {
			b.progress("%v", err)
		}
	}
	b.rp.note("all", "wall time of the run", "%.1f s", time.Since(start).Seconds())
	b.rp.print(stdout)
	if ctx.Err() != nil {
		return 1
	}
	if !b.rp.allOK() {
		// A missed target is a result, not a failure of the bench: make still succeeds, and the
		// lines say ok=false.
		fmt.Fprintln(stdout, "\nsome targets were missed: see the ok=false lines and docs/benchmarks.md")
	}
	return 0
}

// settle lets the previous target's leftovers go before the next one is measured: this process'
// garbage (the pipeline target alone allocates a few GB) and the loopback sockets it closed.
func settle(ctx context.Context) {
	runtime.GC()
	debug.FreeOSMemory()
	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
	}
}
