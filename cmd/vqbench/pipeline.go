package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/redisstats"
)

// producers is how many goroutines submit (ours) or enqueue (bare asynq) at once.
const producers = 16

// pipeline is target 1: jobs per second from submit to an accepted provider request, with job
// records, the call policies (a cap far above the load) and real loopback HTTP to the simulator,
// against bare asynq moving the same number of no-op tasks on the same Redis.
//
// Both sides start with an idle server already polling and count from the first submit to the
// last task done (bare) or the last call accepted by the simulator (ours). The simulator runs
// slow (speed 0.01: the first push of a call would come 50 s after it was accepted), so the
// measurement holds the dispatch path alone; pushes are target 3.
func (b *bench) pipeline(ctx context.Context) []result {
	n, conc, rounds := b.o.pipelineJobs, b.o.pipelineConc, max(b.o.pipelineRounds, 1)
	fail := func(err error) []result { return []result{{Target: 1, Name: "pipeline_jobs_per_second", Err: err}} }
	cfg, err := newConfig(b.baseEnv("http://127.0.0.1:1", "http://127.0.0.1:1"))
	if err != nil {
		return fail(err)
	}

	// The ladder: bare asynq with voicequeue's parts added one at a time (an HTTP call, the
	// provider request, job records, the capacity claim), to see what each costs here.
	lad, err := b.newLadder(cfg)
	if err != nil {
		return fail(err)
	}
	defer lad.close()

	// Rounds alternate bare, ours and the ladder, so that a burst of load from elsewhere on the
	// machine hits all alike; each keeps its best round.
	var bare, ours pipeRun
	var bareRates, ourRates []string
	for r := range rounds {
		b.progress("pipeline: round %d/%d: bare asynq, %d no-op tasks, concurrency %d", r+1, rounds, n, conc)
		br, err := b.bareAsynq(ctx, n, conc, cfg, work{}, "pipeline-bare", false)
		_ = b.flush(ctx)
		if err != nil {
			return fail(fmt.Errorf("bare asynq: %w", err))
		}
		bareRates = append(bareRates, num(br.rate))
		if br.rate > bare.rate {
			bare = br
		}
		b.progress("pipeline: round %d/%d: voicequeue, %d notify jobs, concurrency %d", r+1, rounds, n, conc)
		or, err := b.ourPipeline(ctx, n, conc)
		_ = b.flush(ctx)
		if err != nil {
			return fail(fmt.Errorf("voicequeue: %w", err))
		}
		ourRates = append(ourRates, num(or.rate))
		if or.rate > ours.rate {
			ours = or
		}
		if err := lad.measure(ctx, b, n, conc, cfg); err != nil {
			return fail(err)
		}
	}
	b.progress("pipeline: bare asynq with voicequeue's queue layout (strict priority, tasks on notify)")
	bq, err := b.bareAsynq(ctx, n, conc, cfg, work{}, "pipeline-bare-layout", true)
	_ = b.flush(ctx)
	if err != nil {
		return fail(fmt.Errorf("bare asynq with our queues: %w", err))
	}

	b.rp.note("1 pipeline", "rounds (best kept)", "bare asynq %s tasks/s; voicequeue %s jobs/s", strings.Join(bareRates, ", "), strings.Join(ourRates, ", "))
	b.rp.note("1 pipeline", "bare asynq, no-op tasks", "%.0f tasks/s; %.1f Redis round trips/task; process CPU %.0f µs/task; Redis CPU %.0f µs/task",
		bare.rate, perJob(float64(bare.trips), n), perJob(float64(bare.cost.cpu.Microseconds()), n), perJob(bare.cost.redisCPU*1e6, n))
	for _, r := range lad.rungs {
		b.rp.note("1 pipeline", "ladder: "+r.name, "%.0f tasks/s (%.2f× best bare) %s; %.1f Redis round trips/task; process CPU %.0f µs/task; Redis CPU %.0f µs/task",
			r.run.rate, r.run.rate/bare.rate, r.what, perJob(float64(r.run.trips), n), perJob(float64(r.run.cost.cpu.Microseconds()), n), perJob(r.run.cost.redisCPU*1e6, n))
	}
	b.rp.note("1 pipeline", "bare asynq, voicequeue's call server (notify, bulk; strict)", "%.0f tasks/s (%.2f× best bare); %.1f Redis round trips/task (verify and webhooks have servers of their own)",
		bq.rate, bq.rate/bare.rate, perJob(float64(bq.trips), n))
	b.rp.note("1 pipeline", "voicequeue, submit→accepted", "%.0f jobs/s; submit alone took %.2f s (%.0f jobs/s); %.1f Redis round trips/job; process CPU %.0f µs/job (producers + gateway's submitter + worker + simulator); Redis CPU %.0f µs/job",
		ours.rate, ours.submitted.Seconds(), float64(n)/ours.submitted.Seconds(), perJob(float64(ours.trips), n),
		perJob(float64(ours.cost.cpu.Microseconds()), n), perJob(ours.cost.redisCPU*1e6, n))
	b.rp.note("1 pipeline", "Redis time per task, bare", "%s", bare.cost.ri0.topCommands(bare.cost.ri1, n, 6))
	b.rp.note("1 pipeline", "Redis time per job, voicequeue", "%s", ours.cost.ri0.topCommands(ours.cost.ri1, n, 10))
	b.rp.note("1 pipeline", "settings", "concurrency %d, %d producers, TaskCheckInterval %v, DelayedTaskCheckInterval %v, rate cap 1e6/s burst 1000, 1e6 call slots, windows and callee caps off, simulator speed 0.01 (no pushes during the measurement)",
		conc, producers, cfg.TaskCheckInterval, cfg.DelayedTaskCheckInterval)
	return []result{{
		Target: 1, Name: "pipeline_jobs_per_second", Value: ours.rate, Anchor: bare.rate, Cmp: ratioAtLeast, Bound: 0.5,
		Detail: fmt.Sprintf("best of %d rounds each; anchor: bare asynq no-op tasks; bare asynq + voicequeue's parts (ladder): %s", rounds, ladderSummary(lad.rungs, bare.rate)),
	}}
}

// pipeRun is one measured round.
type pipeRun struct {
	rate      float64
	cost      phaseResult
	trips     int64
	submitted time.Duration
}

// work is what one rung of the ladder adds to bare asynq (see ladder.go): before runs in the
// producer for task i before it is enqueued and returns the task's job ID ("" when it makes
// none); handle runs in the asynq handler. Both nil: no-op tasks, the anchor.
type work struct {
	before func(ctx context.Context, i int) (string, error)
	handle func(ctx context.Context, i int, jobID string) error
	// trips counts the round trips of the Redis client before and handle use.
	trips *redisstats.RoundTrips
}

// bareAsynq moves n tasks through a plain asynq server (one queue, a handler that does nothing
// but w) and returns tasks per second from the first enqueue to the last task handled.
//
// With layout set, the server uses voicequeue's call server queues (queue.CallQueues, strict priority) and the
// tasks go to the notify queue, as notify jobs do: the dequeue then tries verify and webhooks
// first, one script each.
func (b *bench) bareAsynq(ctx context.Context, n, conc int, cfg *app.Config, w work, name string, layout bool) (pipeRun, error) {
	rdb, err := app.NewRedis(b.redisURL)
	if err != nil {
		return pipeRun{}, err
	}
	defer rdb.Close()
	trips := &redisstats.RoundTrips{}
	rdb.AddHook(trips)
	var done atomic.Int64
	finished := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(ctx context.Context, t *asynq.Task) error {
		if w.handle != nil {
			i, id, err := parseBenchPayload(t.Payload())
			if err != nil {
				return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
			}
			if err := w.handle(ctx, i, id); err != nil {
				return err
			}
		}
		if done.Add(1) == int64(n) {
			close(finished)
		}
		return nil
	})
	queues, taskQueue := map[string]int{"default": 1}, "default"
	if layout {
		queues, taskQueue = queue.CallQueues(), queue.QueueNotify
	}
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: conc, Queues: queues, StrictPriority: layout,
		TaskCheckInterval: cfg.TaskCheckInterval, DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
		LogLevel: asynq.ErrorLevel,
	})
	if err := srv.Start(mux); err != nil {
		return pipeRun{}, err
	}
	defer srv.Shutdown()
	client := asynq.NewClientFromRedisClient(rdb)
	time.Sleep(200 * time.Millisecond) // let the server settle into polling
	trips.Take()
	if w.trips != nil {
		w.trips.Take()
	}
	ph := b.begin(ctx, name)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, producers)
	for range producers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				var id string
				if w.before != nil {
					var err error
					if id, err = w.before(ctx, i); err != nil {
						errc <- err
						return
					}
				}
				if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench:noop", benchPayload(i, id), asynq.Queue(taskQueue))); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return pipeRun{}, fmt.Errorf("enqueue: %w", err)
	}
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		return pipeRun{}, fmt.Errorf("only %d of %d tasks done after 2 min", done.Load(), n)
	case <-ctx.Done():
		return pipeRun{}, ctx.Err()
	}
	cost := ph.end(ctx)
	run := pipeRun{rate: float64(n) / cost.wall.Seconds(), cost: cost, trips: roundTripsOf(trips)}
	if w.trips != nil {
		run.trips += roundTripsOf(w.trips)
	}
	return run, nil
}

// benchPayloadSize is the size of every bare task's payload, about that of a notify job's.
const benchPayloadSize = 256

// benchPayload is a bare task's payload: the task's index and job ID, padded to
// benchPayloadSize bytes.
func benchPayload(i int, jobID string) []byte {
	p := make([]byte, 0, benchPayloadSize)
	p = strconv.AppendInt(p, int64(i), 10)
	p = append(p, ' ')
	p = append(p, jobID...)
	p = append(p, ' ')
	for len(p) < benchPayloadSize {
		p = append(p, 'x')
	}
	return p
}

func parseBenchPayload(p []byte) (int, string, error) {
	idx, rest, ok1 := strings.Cut(string(p), " ")
	id, _, ok2 := strings.Cut(rest, " ")
	i, err := strconv.Atoi(idx)
	if !ok1 || !ok2 || err != nil {
		return 0, "", errors.New("bench payload: not \"<index> <job id> x…\"")
	}
	return i, id, nil
}

// ourPipeline submits n notify jobs through the gateway's Submitter (the code behind POST
// /v1/jobs, without the HTTP hop, as the bare side enqueues without one) while the worker runs,
// and returns jobs per second from the first submit to the simulator accepting the n-th call.
func (b *bench) ourPipeline(ctx context.Context, n, conc int) (pipeRun, error) {
	st, err := b.newStack(stackOptions{
		SimSpeed: 0.01,
		Env: map[string]string{
			"VOICEQUEUE_CONCURRENCY":          itoa(conc),
			"VOICEQUEUE_CALL_RATE":            "1000000",
			"VOICEQUEUE_CALL_BURST":           "1000",
			"VOICEQUEUE_MAX_CONCURRENT_CALLS": "1000000",
		},
	})
	if err != nil {
		return pipeRun{}, err
	}
	defer st.close()
	trips := &redisstats.RoundTrips{}
	st.rdb.AddHook(trips)
	reqs := make([]queue.Request, n)
	for i := range reqs {
		reqs[i] = queue.Request{Kind: "notify", To: callee(i), TemplateID: "tpl_arrears", TemplateParams: []string{"42.50", "2026/12/01"}}
	}
	st.startWorker()
	time.Sleep(200 * time.Millisecond)
	trips.Take()
	all := st.tap.await(int64(n))
	ph := b.begin(ctx, "pipeline-voicequeue")
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, producers)
	for range producers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if _, err := st.gw.Submit.Submit(ctx, reqs[i]); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	submitted := time.Since(ph.t0)
	close(errc)
	if err := <-errc; err != nil {
		return pipeRun{}, fmt.Errorf("submit: %w", err)
	}
	select {
	case <-all:
	case <-time.After(3 * time.Minute):
		return pipeRun{}, fmt.Errorf("only %d of %d calls accepted after 3 min", st.tap.total.Load(), n)
	case <-ctx.Done():
		return pipeRun{}, ctx.Err()
	}
	cost := ph.end(ctx)
	if got := st.sim.Stats().Accepted; got != n {
		return pipeRun{}, errors.New("simulator accepted " + itoa(got) + " calls, want " + itoa(n))
	}
	return pipeRun{rate: float64(n) / cost.wall.Seconds(), cost: cost, trips: roundTripsOf(trips), submitted: submitted}, nil
}

func roundTripsOf(c *redisstats.RoundTrips) int64 {
	n, _ := c.Count()
	return n
}

// ladderSummary is the rungs' ratios to the anchor in one line, e.g. "http 0.52×, provider
// 0.40×, …".
func ladderSummary(rungs []*rung, anchor float64) string {
	parts := make([]string, len(rungs))
	for i, r := range rungs {
		parts[i] = fmt.Sprintf("%s %.2f×", r.name, r.run.rate/anchor)
	}
	return strings.Join(parts, ", ")
}
