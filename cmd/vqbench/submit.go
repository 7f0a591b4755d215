package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/queue"
)

// submit is target 4: a 100,000-line file through `enqueue file` (the built binary, with its
// progress bar, against a gateway) and the same number of jobs through POST /v1/jobs/batch; at
// least 10,000 jobs/s each. No worker runs: the jobs stay queued. The anchor is bare asynq
// enqueueing as many tasks (16 goroutines, one round trip each), the floor of asynq's own cost.
func (b *bench) submit(ctx context.Context) []result {
	fail := func(err error) []result {
		return []result{{Target: 4, Name: "submit_file_jobs_per_second", Err: err}, {Target: 4, Name: "submit_batch_jobs_per_second", Err: err}}
	}
	n := b.o.submitLines
	bins, err := b.build(ctx)
	if err != nil {
		return fail(err)
	}
	st, err := b.newStack(stackOptions{NoWorker: true, SimSpeed: 1})
	if err != nil {
		return fail(err)
	}
	defer st.close()

	// The file: CSV, notify jobs with a template (bulk by default in files).
	path := filepath.Join(b.dir, "jobs.csv")
	if err := writeJobsCSV(path, n); err != nil {
		return fail(err)
	}
	b.progress("submit: enqueue file (%d lines) against the gateway", n)
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, bins.enqueue, "file", path, "--api", st.gwURL, "--progress")
	cmd.Env = []string{"VOICEQUEUE_API_TOKEN=" + b.sec.apiToken, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &stderr
	runErr := cmd.Run()
	fileTime := time.Since(t0)
	summary := lastLine(stderr.String())
	if runErr != nil {
		return fail(fmt.Errorf("enqueue file: %v: %s", runErr, summary))
	}
	if !strings.Contains(summary, fmt.Sprintf("submitted %d", n)) {
		return fail(fmt.Errorf("enqueue file: summary %q, want %d submitted", summary, n))
	}
	queued, err := queueSize(st, queue.QueueBulk)
	if err != nil || queued != n {
		return fail(fmt.Errorf("after enqueue file the bulk queue holds %d tasks, want %d (%v)", queued, n, err))
	}
	fileRate := float64(n) / fileTime.Seconds()
	_ = b.flush(ctx)

	b.progress("submit: POST /v1/jobs/batch, %d jobs in batches of %d, 4 in flight", n, queue.MaxBatch)
	var bodies [][]byte
	for i := 0; i < n; i += queue.MaxBatch {
		reqs := make([]queue.Request, min(queue.MaxBatch, n-i))
		for j := range reqs {
			reqs[j] = queue.Request{Kind: "notify", To: callee(2_000_000 + i + j), TemplateID: "tpl_arrears", TemplateParams: []string{"42.50", "2026/12/01"}}
		}
		raw, err := json.Marshal(map[string]any{"jobs": reqs})
		if err != nil {
			return fail(err)
		}
		bodies = append(bodies, raw)
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	api := &apiClient{base: st.gwURL, token: b.sec.apiToken, hc: hc}
	ph := b.begin(ctx, "submit-batch")
	var next atomic.Int64
	var wg sync.WaitGroup
	var accepted atomic.Int64
	errc := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) {
					return
				}
				var resp struct {
					Accepted int `json:"accepted"`
				}
				if err := api.postRaw(ctx, "/v1/jobs/batch", bodies[i], &resp); err != nil {
					errc <- err
					return
				}
				accepted.Add(int64(resp.Accepted))
			}
		})
	}
	wg.Wait()
	cost := ph.end(ctx)
	close(errc)
	if err := <-errc; err != nil {
		return fail(fmt.Errorf("batch: %w", err))
	}
	if accepted.Load() != int64(n) {
		return fail(fmt.Errorf("batch: %d of %d accepted", accepted.Load(), n))
	}
	batchRate := float64(n) / cost.wall.Seconds()
	_ = b.flush(ctx)

	b.progress("submit: bare asynq enqueue of %d tasks (anchor)", n)
	bare, err := b.bareEnqueue(ctx, n)
	if err != nil {
		return fail(fmt.Errorf("bare enqueue: %w", err))
	}
	b.rp.note("4 submit", "enqueue file", "%d lines in %.2f s = %.0f jobs/s (process start, numbers in international form: validated by the gateway, batches of 1000, 4 in flight, progress bar on); %s",
		n, fileTime.Seconds(), fileRate, summary)
	b.rp.note("4 submit", "POST /v1/jobs/batch", "%d jobs in %.2f s = %.0f jobs/s; gateway process CPU %.0f µs/job; Redis CPU %.0f µs/job",
		n, cost.wall.Seconds(), batchRate, perJob(float64(cost.cpu.Microseconds()), n), perJob(cost.redisCPU*1e6, n))
	b.rp.note("4 submit", "Redis time per job, batch", "%s", cost.ri0.topCommands(cost.ri1, n, 6))
	b.rp.note("4 submit", "bare asynq enqueue (anchor)", "%.0f tasks/s, 16 goroutines, one round trip each", bare)
	return []result{
		{Target: 4, Name: "submit_file_jobs_per_second", Value: fileRate, Anchor: bare, Cmp: atLeast, Bound: 10_000,
			Detail: "enqueue file against the gateway; anchor: bare asynq enqueue"},
		{Target: 4, Name: "submit_batch_jobs_per_second", Value: batchRate, Anchor: bare, Cmp: atLeast, Bound: 10_000,
			Detail: "POST /v1/jobs/batch, 1000 per batch, 4 in flight; anchor: bare asynq enqueue"},
	}
}

// writeJobsCSV writes n notify jobs as a CSV file.
func writeJobsCSV(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "kind,to,template_id,template_params")
	for i := range n {
		fmt.Fprintf(w, "notify,%s,tpl_arrears,42.50|2026/12/01\n", callee(3_000_000+i))
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\r\n ")
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}

// queueSize is the number of tasks in an asynq queue.
func queueSize(st *stack, name string) (int, error) {
	in := asynq.NewInspectorFromRedisClient(st.rdb)
	info, err := in.GetQueueInfo(name)
	if err != nil {
		return 0, err
	}
	return info.Size, nil
}

// bareEnqueue enqueues n tasks with a payload like a job's from 16 goroutines.
func (b *bench) bareEnqueue(ctx context.Context, n int) (float64, error) {
	rdb, err := app.NewRedis(b.redisURL)
	if err != nil {
		return 0, err
	}
	defer rdb.Close()
	client := asynq.NewClientFromRedisClient(rdb)
	payload := bytes.Repeat([]byte("x"), 256)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, producers)
	t0 := time.Now()
	for range producers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench:noop", payload, asynq.Queue("bulk"))); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}
