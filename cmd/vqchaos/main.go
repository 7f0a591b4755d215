// Command vqchaos is `make chaos`: it runs voicequeue as separate processes on loopback (its own
// redis-server with persistence, cmd/voicesim, one cmd/gateway, three cmd/worker), submits 2,000
// jobs through the batch API and, while they run, kills a random worker with SIGKILL every few
// seconds and starts it again, restarts Redis once and injects a 10 s provider outage. It then
// waits until every job is final and prints what happened: jobs by final state, jobs lost, jobs
// dialled more than once at the simulator, pushes spooled and replayed by the gateway, and the
// circuit breaker's transitions in the workers. It exits 1 when a job was lost or dialled twice,
// 2 when the run could not be set up.
//
//	go run ./cmd/vqchaos [--jobs 2000] [--workers 3] [--kill-every 4s] [--keep]
//
// It never touches the shared Redis on 6379: every process it starts uses ports and a work
// directory of the run's own, removed at the end (kept with --keep, or when the run fails).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the settings of a run; the defaults are the run of issue 6.
type options struct {
	jobs        int
	workers     int
	killEvery   time.Duration // mean time between two worker kills
	restartIn   time.Duration // time a killed worker stays down
	chaos       time.Duration // length of the fault phase (kills, Redis restart, outage)
	redisAt     time.Duration // when Redis restarts, from the end of submission
	outageAt    time.Duration // when the provider outage starts
	outageFor   time.Duration // how long it lasts
	outageMode  string        // 503 or refuse
	speed       float64       // simulator time scale
	callRate    float64       // VOICEQUEUE_CALL_RATE of the workers
	maxAttempts int           // VOICEQUEUE_MAX_ATTEMPTS of the workers
	errorRate   float64       // share of provider requests the simulator fails with 1010001
	limit       time.Duration // the whole run, build included
	seed        int64
	keep        bool
	dir         string
}

func defaultOptions() options {
	return options{
		jobs: 2000, workers: 3, killEvery: 4 * time.Second, restartIn: 700 * time.Millisecond,
		chaos: 60 * time.Second, redisAt: 15 * time.Second, outageAt: 30 * time.Second,
		outageFor: 10 * time.Second, outageMode: "503", speed: 20, callRate: 30, maxAttempts: 5,
		limit: 4*time.Minute + 40*time.Second, seed: 0,
	}
}

// validate reports settings the run cannot use.
func (o options) validate() error {
	var errs []error
	if o.jobs < 1 {
		errs = append(errs, errors.New("--jobs must be at least 1"))
	}
	if o.workers < 1 {
		errs = append(errs, errors.New("--workers must be at least 1"))
	}
	if o.killEvery < 500*time.Millisecond {
		errs = append(errs, errors.New("--kill-every must be at least 500ms"))
	}
	if o.outageMode != "503" && o.outageMode != "refuse" {
		errs = append(errs, errors.New("--outage-mode must be 503 or refuse"))
	}
	if o.maxAttempts < 1 {
		errs = append(errs, errors.New("--max-attempts must be at least 1"))
	}
	if o.errorRate < 0 || o.errorRate >= 1 {
		errs = append(errs, errors.New("--provider-error-rate must be in [0, 1)"))
	}
	if o.speed <= 0 || o.callRate < 0 {
		errs = append(errs, errors.New("--speed must be positive and --call-rate not negative"))
	}
	if o.chaos <= 0 || o.redisAt >= o.chaos || o.outageAt+o.outageFor > o.chaos {
		errs = append(errs, errors.New("--redis-restart-at and the outage must fall within --chaos"))
	}
	return errors.Join(errs...)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := defaultOptions()
	fs := flag.NewFlagSet("vqchaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.jobs, "jobs", o.jobs, "jobs to submit")
	fs.IntVar(&o.workers, "workers", o.workers, "worker processes")
	fs.DurationVar(&o.killEvery, "kill-every", o.killEvery, "mean time between two SIGKILLs of a random worker (jittered ±50%)")
	fs.DurationVar(&o.restartIn, "restart-in", o.restartIn, "how long a killed worker stays down")
	fs.DurationVar(&o.chaos, "chaos", o.chaos, "length of the fault phase, from the end of submission")
	fs.DurationVar(&o.redisAt, "redis-restart-at", o.redisAt, "when Redis is restarted, within the fault phase")
	fs.DurationVar(&o.outageAt, "outage-at", o.outageAt, "when the provider outage starts, within the fault phase")
	fs.DurationVar(&o.outageFor, "outage-for", o.outageFor, "length of the provider outage")
	fs.StringVar(&o.outageMode, "outage-mode", o.outageMode, "provider outage: 503 (every request answered HTTP 503) or refuse (connections refused)")
	fs.Float64Var(&o.speed, "speed", o.speed, "simulator time scale (20 = a 10 s call takes 0.5 s)")
	fs.Float64Var(&o.callRate, "call-rate", o.callRate, "the workers' shared call rate, calls per second (spreads the jobs over the fault phase)")
	fs.IntVar(&o.maxAttempts, "max-attempts", o.maxAttempts, "the workers' VOICEQUEUE_MAX_ATTEMPTS")
	fs.Float64Var(&o.errorRate, "provider-error-rate", o.errorRate, "share of provider requests the simulator answers 1010001 (HTTP 500), besides the outage")
	fs.DurationVar(&o.limit, "limit", o.limit, "bound of the whole run; jobs not final by then count as lost")
	fs.Int64Var(&o.seed, "seed", o.seed, "seed of the kill schedule (0 = from the clock)")
	fs.BoolVar(&o.keep, "keep", o.keep, "keep the work directory (binaries, logs, Redis data) after a successful run")
	fs.StringVar(&o.dir, "dir", o.dir, "work directory (default: a new temporary directory)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vqchaos [flags]\n\nRuns voicequeue under worker kills, a Redis restart and a provider outage, and checks that no job is lost or dialled twice.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	return o, o.validate()
}

// run parses the flags, runs the chaos and returns the exit code: 0 passed, 1 a job was lost or
// dialled twice (or the run failed midway), 2 bad flags or a missing tool.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "vqchaos:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, o.limit)
	defer cancel()
	c, err := newChaos(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "vqchaos:", err)
		return 2
	}
	rep, err := c.run(ctx)
	c.close()
	if rep != nil {
		rep.print(stdout)
	}
	failed := err != nil || rep == nil || !rep.passed()
	if err != nil {
		fmt.Fprintln(stderr, "vqchaos:", err)
	}
	if failed || o.keep {
		fmt.Fprintln(stderr, "vqchaos: logs and Redis data kept in", c.dir)
	} else {
		c.removeDir()
	}
	if failed {
		return 1
	}
	return 0
}
