package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/ratelimit"
)

// displayNumber is the app's fixed-line number of the run.
const displayNumber = "+8675500000001"

// maxConcurrentCalls is the workers' VOICEQUEUE_MAX_CONCURRENT_CALLS: far above the calls the
// run keeps up at once (about call rate × call length), so that only leaked slots can fill it.
const maxConcurrentCalls = 200

// chaos is one run: its processes, its work directory and what it has seen so far.
type chaos struct {
	o        options
	dir      string
	ownDir   bool
	out      io.Writer // progress lines
	t0       time.Time
	bins     string
	client   *http.Client
	rng      *mrand.Rand
	appKey   string
	secret   string // provider app secret
	push     string // push secret
	token    string // producer token
	redis    *redisServer
	sim      *proc
	simURL   string
	gw       *proc
	gwAddr   string
	gwAdmin  string
	workers  []*workerSlot
	book     *counterBook
	rdb      *redis.Client // the run's own Redis, for the samples of call slots
	slots    *ratelimit.Slots
	jobs     []job
	rep      *report
	timeline []string
}

// workerSlot is one of the worker processes; a killed worker is started again in its slot.
type workerSlot struct {
	n         int
	admin     string
	p         *proc
	restartAt time.Time // while down: when to start it again
}

// job is a submitted job and the final state its callee number scripts at the simulator.
type job struct {
	id     string
	kind   string
	expect jobstatus.State
}

func newChaos(o options, progress io.Writer) (*chaos, error) {
	c := &chaos{
		o: o, out: progress, t0: time.Now(), book: newCounterBook(),
		rng:    mrand.New(mrand.NewPCG(uint64(o.seed), 0x5eed)),
		appKey: "vqchaos-app-key", secret: randomAlnum(32), push: randomAlnum(24), token: randomAlnum(32),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
		rep:    &report{seed: o.seed, jobs: o.jobs, workers: o.workers, byState: map[string]int{}, unexpected: map[string]int{}, lostStates: map[string]int{}, notDialled: map[string]int{}},
	}
	c.dir = o.dir
	if c.dir == "" {
		d, err := os.MkdirTemp("", "vqchaos-")
		if err != nil {
			return nil, fmt.Errorf("create work directory: %w", err)
		}
		c.dir, c.ownDir = d, true
	} else if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create work directory: %w", err)
	}
	r, err := newRedisServer(c.dir)
	if err != nil {
		c.removeDir()
		return nil, err
	}
	c.redis = r
	return c, nil
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

// logf prints a progress line with the time since the start.
func (c *chaos) logf(format string, args ...any) {
	fmt.Fprintf(c.out, "[%6.1fs] %s\n", time.Since(c.t0).Seconds(), fmt.Sprintf(format, args...))
}

// mark prints a progress line and keeps it for the report's timeline.
func (c *chaos) mark(format string, args ...any) {
	line := fmt.Sprintf("%6.1fs  %s", time.Since(c.t0).Seconds(), fmt.Sprintf(format, args...))
	c.timeline = append(c.timeline, line)
	c.logf(format, args...)
}

// run does the whole run and returns its report (nil when the run could not start).
func (c *chaos) run(ctx context.Context) (*report, error) {
	c.logf("work directory %s, seed %d", c.dir, c.o.seed)
	bins, err := build(ctx, c.dir)
	if err != nil {
		return nil, err
	}
	c.bins = bins
	c.rep.buildTime = time.Since(c.t0)
	c.logf("built worker, gateway and voicesim")
	if err := c.startAll(ctx); err != nil {
		return nil, err
	}
	c.rep.redisAddr = c.redis.addr
	rdb := redis.NewClient(&redis.Options{Addr: c.redis.addr, MaxRetries: -1})
	defer rdb.Close()
	c.rdb, c.slots = rdb, ratelimit.NewSlots(rdb, ratelimit.SlotsOptions{})
	c.rep.aof = aofEnabled(ctx, rdb)

	t := time.Now()
	if err := c.submit(ctx); err != nil {
		return nil, err
	}
	c.rep.submitTime = time.Since(t)
	c.mark("submitted %d jobs through POST /v1/jobs/batch in %.1fs", c.rep.submitted, c.rep.submitTime.Seconds())

	c.faults(ctx)
	drainErr := c.drain(ctx)

	// Collection and shutdown get their own time: the run's limit may just have passed.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := c.collect(cctx, rdb); err != nil {
		return c.rep, err
	}
	c.rep.timeline = c.timeline
	c.rep.total = time.Since(c.t0)
	return c.rep, drainErr
}

// env is the configuration every voicequeue process of the run gets.
func (c *chaos) env() map[string]string {
	return map[string]string{
		"REDIS_URL":                              c.redis.url(),
		"VOICEQUEUE_PROVIDER_URL":                c.simURL,
		"VOICEQUEUE_APP_KEY":                     c.appKey,
		"VOICEQUEUE_APP_SECRET":                  c.secret,
		"VOICEQUEUE_DISPLAY_NUMBER":              displayNumber,
		"VOICEQUEUE_PUSH_BASE_URL":               "http://" + c.gwAddr,
		"VOICEQUEUE_PUSH_SECRET":                 c.push,
		"VOICEQUEUE_API_TOKEN":                   c.token,
		"VOICEQUEUE_LOG_LEVEL":                   "info",
		"VOICEQUEUE_LOG_FORMAT":                  "json",
		"VOICEQUEUE_RETENTION":                   "1h",
		"VOICEQUEUE_CALLEE_CAPS_VERIFY":          "off",
		"VOICEQUEUE_CALLEE_CAPS_NOTIFY":          "off",
		"VOICEQUEUE_CALLEE_CAPS_BULK":            "off",
		"VOICEQUEUE_CALLEE_CAPS_CLICK2CALL":      "off",
		"VOICEQUEUE_CALLING_WINDOW_NOTIFY":       "off",
		"VOICEQUEUE_CALLING_WINDOW_BULK":         "off",
		"VOICEQUEUE_CALL_RATE":                   strconv.FormatFloat(c.o.callRate, 'f', -1, 64),
		"VOICEQUEUE_CALL_BURST":                  "10",
		"VOICEQUEUE_MAX_CONCURRENT_CALLS":        strconv.Itoa(maxConcurrentCalls),
		"VOICEQUEUE_PROVIDER_TIMEOUT":            "5s",
		"VOICEQUEUE_DIAL_RESOLVE_TIMEOUT":        "10s",
		"VOICEQUEUE_SHUTDOWN_TIMEOUT":            "3s",
		"VOICEQUEUE_BREAKER_COOLDOWN":            "2s",
		"VOICEQUEUE_BREAKER_MAX_COOLDOWN":        "8s",
		"VOICEQUEUE_DELAYED_TASK_CHECK_INTERVAL": "200ms",
		"VOICEQUEUE_MAX_ATTEMPTS":                strconv.Itoa(c.o.maxAttempts),
	}
}

// startAll starts Redis, the simulator, the gateway and the workers, and waits until each is ready.
func (c *chaos) startAll(ctx context.Context) error {
	if err := c.redis.start(ctx); err != nil {
		return err
	}
	simAddr, err := freeAddr()
	if err != nil {
		return err
	}
	c.simURL = "http://" + simAddr
	c.sim, err = startProc("voicesim", filepath.Join(c.bins, "voicesim"), []string{
		"--addr", simAddr, "--app-key", c.appKey, "--speed", strconv.FormatFloat(c.o.speed, 'f', -1, 64),
		"--rate", "0", "--ports", "0", "--max-records", "200000", "--log-level", "warn",
		"--error-rate", strconv.FormatFloat(c.o.errorRate, 'f', -1, 64),
	}, map[string]string{"VOICESIM_APP_SECRET": c.secret}, filepath.Join(c.dir, "voicesim.log"))
	if err != nil {
		return err
	}
	if err := waitHTTP(ctx, c.simURL+"/healthz", c.sim, 15*time.Second); err != nil {
		return err
	}
	if c.gwAddr, err = freeAddr(); err != nil {
		return err
	}
	if c.gwAdmin, err = freeAddr(); err != nil {
		return err
	}
	env := c.env()
	env["VOICEQUEUE_HTTP_ADDR"] = c.gwAddr
	env["VOICEQUEUE_ADMIN_ADDR"] = c.gwAdmin
	env["VOICEQUEUE_SPOOL_DIR"] = filepath.Join(c.dir, "spool")
	if c.gw, err = startProc("gateway", filepath.Join(c.bins, "gateway"), nil, env, filepath.Join(c.dir, "gateway.log")); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+c.gwAdmin+"/readyz", c.gw, 15*time.Second); err != nil {
		return err
	}
	for i := range c.o.workers {
		admin, err := freeAddr()
		if err != nil {
			return err
		}
		w := &workerSlot{n: i + 1, admin: admin}
		c.workers = append(c.workers, w)
		if err := c.startWorker(w); err != nil {
			return err
		}
	}
	for _, w := range c.workers {
		if err := waitHTTP(ctx, "http://"+w.admin+"/readyz", w.p, 15*time.Second); err != nil {
			return err
		}
	}
	c.mark("started redis-server %s (appendonly yes, appendfsync everysec), voicesim (speed %g), gateway, %d workers",
		c.redis.addr, c.o.speed, c.o.workers)
	return nil
}

func (c *chaos) startWorker(w *workerSlot) error {
	env := c.env()
	env["VOICEQUEUE_ADMIN_ADDR"] = w.admin
	name := "worker-" + strconv.Itoa(w.n)
	p, err := startProc(name, filepath.Join(c.bins, "worker"), nil, env, filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err
	}
	w.p, w.restartAt = p, time.Time{}
	c.rep.workerStarts++
	return nil
}

// jobSpec is the i-th job of the run and the final state its numbers script (the simulator
// picks the outcome by the callee's last four digits): mostly answered calls of every kind; 5 %
// busy and 5 % unanswered notifications; 2.5 % busy click-to-calls; 2 % verifications whose
// reply the simulator holds back (0408: the call is placed but the worker's request times out,
// so its pushes end the job, and a worker killed meanwhile leaves an open dial for the dial
// guard); 2 % notifications whose first request fails with 1010001 (0503: one transient retry,
// then one call). 0404 (refused as invalid) is not used.
func jobSpec(i int, seed int64) (map[string]any, job) {
	suffix := fmt.Sprintf("2%03d", i%1000) // 2000-2999: no scripted outcome
	expect := jobstatus.StateCompleted
	j := map[string]any{"idempotency_key": fmt.Sprintf("vqchaos-%d-%d", seed, i)}
	var kind string
	switch i % 10 {
	case 0, 1, 2:
		kind = "verify"
		if i%50 == 20 {
			suffix = "0408"
		}
	case 7, 8:
		kind = "click2call"
		j["from"] = fmt.Sprintf("+86137%04d%s", i%10000, suffix)
		if i%40 == 8 {
			suffix, expect = "0486", jobstatus.StateBusy
		}
	default:
		kind = "notify"
		j["voice_file"] = "chaos.wav"
		switch {
		case i%20 == 9:
			suffix, expect = "0486", jobstatus.StateBusy
		case i%20 == 19:
			suffix, expect = "0480", jobstatus.StateNoAnswer
		case i%50 == 35:
			suffix = "0503"
		}
	}
	j["kind"] = kind
	j["to"] = fmt.Sprintf("+86139%04d%s", i%10000, suffix)
	return j, job{kind: kind, expect: expect}
}

// submit posts the jobs in batches of 1,000 (retrying a batch that failed: the idempotency keys
// make that safe).
func (c *chaos) submit(ctx context.Context) error {
	const batch = queue.MaxBatch
	for start := 0; start < c.o.jobs; start += batch {
		end := min(start+batch, c.o.jobs)
		var body struct {
			Jobs []map[string]any `json:"jobs"`
		}
		metas := make([]job, 0, end-start)
		for i := start; i < end; i++ {
			spec, meta := jobSpec(i, c.o.seed)
			body.Jobs = append(body.Jobs, spec)
			metas = append(metas, meta)
		}
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode batch: %w", err)
		}
		var res struct {
			Accepted, Rejected int
			Results            []queue.BatchItem
		}
		for try := 1; ; try++ {
			code, err := c.api(ctx, http.MethodPost, "/v1/jobs/batch", raw, &res)
			if err == nil && code == http.StatusOK && len(res.Results) == len(metas) {
				break
			}
			if try == 5 {
				return fmt.Errorf("submit batch at %d: HTTP %d: %v", start, code, err)
			}
			time.Sleep(time.Second)
		}
		for k, it := range res.Results {
			if it.Error != "" {
				c.rep.rejected++
				c.logf("job %d refused at submission: %s: %s", start+k, it.Field, it.Error)
				continue
			}
			metas[k].id = it.ID
			c.jobs = append(c.jobs, metas[k])
			c.rep.submitted++
		}
	}
	return nil
}

// api sends a producer API request and decodes a JSON answer into out.
func (c *chaos) api(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.gwAddr+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// faults is the fault phase: a worker killed every few seconds (and started again), Redis
// restarted once, a provider outage, for o.chaos from now.
func (c *chaos) faults(ctx context.Context) {
	begin := time.Now()
	end := begin.Add(c.o.chaos)
	nextKill := begin.Add(c.jitter(c.o.killEvery))
	redisDone, outageDone := false, false
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	nextScrape := time.Time{}
	for {
		now := time.Now()
		if now.After(end) || ctx.Err() != nil {
			break
		}
		c.supervise()
		if now.After(nextScrape) {
			c.scrapeWorkers(ctx)
			c.sampleSlots(ctx)
			nextScrape = now.Add(time.Second)
		}
		if now.After(nextKill) {
			c.killRandomWorker(ctx)
			nextKill = now.Add(c.jitter(c.o.killEvery))
		}
		if !redisDone && now.Sub(begin) >= c.o.redisAt {
			redisDone = true
			c.restartRedis(ctx)
		}
		if !outageDone && now.Sub(begin) >= c.o.outageAt {
			outageDone = true
			c.outage(ctx)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	c.supervise()
	c.mark("fault phase over: %d worker kills; waiting for every job to end", c.rep.kills)
}

// jitter returns d ± 50 %.
func (c *chaos) jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(c.rng.Int64N(int64(d)+1))
}

// supervise starts again the workers whose down time is over, and notices workers that exited by
// themselves (a worker started while Redis was down exits: it is started again a second later).
func (c *chaos) supervise() {
	for _, w := range c.workers {
		switch {
		case !w.restartAt.IsZero():
			if time.Now().After(w.restartAt) {
				if err := c.startWorker(w); err != nil {
					c.logf("start worker-%d again: %v", w.n, err)
					w.restartAt = time.Now().Add(time.Second)
				}
			}
		case w.p != nil && w.p.Exited():
			c.rep.selfExits++
			c.mark("worker-%d exited by itself (%v): starting it again in 1s", w.n, w.p.Err())
			c.book.end(w.n)
			w.restartAt = time.Now().Add(time.Second)
		}
	}
}

// scrapeWorkers keeps the latest counters of every running worker.
func (c *chaos) scrapeWorkers(ctx context.Context) {
	for _, w := range c.workers {
		if w.restartAt.IsZero() && w.p != nil && !w.p.Exited() {
			c.scrapeWorker(ctx, w)
		}
	}
}

func (c *chaos) scrapeWorker(ctx context.Context, w *workerSlot) {
	ss, err := scrape(ctx, c.client, "http://"+w.admin+"/metrics")
	if err == nil {
		c.book.update(w.n, ss)
	}
}

// sampleSlots compares the call slots held in Redis with the calls up at the simulator: a slot
// held with no call behind it belongs to a job whose worker died between taking the slot and
// dialling, and stays held until that job's task comes back.
func (c *chaos) sampleSlots(ctx context.Context) {
	held, err := c.slots.InUse(ctx, c.appKey)
	if err != nil {
		return
	}
	ss, err := scrape(ctx, c.client, c.simURL+"/metrics")
	if err != nil {
		return
	}
	active := int(ss.sum("voicequeue_sim_active_calls", nil))
	c.rep.slotSamples++
	c.rep.peakSlots = max(c.rep.peakSlots, held)
	c.rep.peakActive = max(c.rep.peakActive, active)
	c.rep.peakIdleSlots = max(c.rep.peakIdleSlots, held-active)
	if held >= maxConcurrentCalls {
		c.rep.samplesAtSlotLimit++
	}
}

// killRandomWorker scrapes a running worker's counters, SIGKILLs it and schedules its restart.
func (c *chaos) killRandomWorker(ctx context.Context) {
	var up []*workerSlot
	for _, w := range c.workers {
		if w.restartAt.IsZero() && w.p != nil && !w.p.Exited() {
			up = append(up, w)
		}
	}
	if len(up) == 0 {
		return
	}
	w := up[c.rng.IntN(len(up))]
	c.scrapeWorker(ctx, w)
	pid := w.p.PID()
	w.p.Kill()
	c.book.end(w.n)
	c.rep.kills++
	w.restartAt = time.Now().Add(c.o.restartIn)
	c.logf("SIGKILL worker-%d (pid %d); starting it again in %s", w.n, pid, c.o.restartIn)
}

// restartRedis stops Redis with SIGTERM and starts it again on the same port and data directory.
func (c *chaos) restartRedis(ctx context.Context) {
	c.mark("restarting Redis (SIGTERM, then redis-server again on %s with the same AOF directory)", c.redis.addr)
	down, before, after, err := c.redis.restart(ctx)
	c.rep.redisDown, c.rep.redisKeysBefore, c.rep.redisKeysAfter = down, before, after
	c.rep.redisRestarted = err == nil
	if err != nil {
		c.mark("Redis restart failed: %v", err)
		return
	}
	c.mark("Redis back after %.2fs: %d keys before the shutdown, %d after loading the AOF", down.Seconds(), before, after)
}

// outage switches the simulator's outage on for o.outageFor.
func (c *chaos) outage(ctx context.Context) {
	q := "mode=" + c.o.outageMode + "&on=true&for=" + c.o.outageFor.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.simURL+"/sim/outage?"+q, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = c.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode >= 300 {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
		}
	}
	if err != nil {
		c.mark("provider outage could not be switched on: %v", err)
		return
	}
	c.rep.outage = fmt.Sprintf("%s for %s", c.o.outageMode, c.o.outageFor)
	c.mark("provider outage on: every request answered %s for %s (POST /sim/outage?%s)", outageWhat(c.o.outageMode), c.o.outageFor, q)
}

func outageWhat(mode string) string {
	if mode == "refuse" {
		return "with a refused connection"
	}
	return "HTTP 503"
}

// drain waits until every job is final or the run's limit comes near, keeping the workers up.
func (c *chaos) drain(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(3 * time.Minute)
	}
	deadline = deadline.Add(-20 * time.Second) // leave time to collect and stop
	pending := make(map[string]bool, len(c.jobs))
	for _, j := range c.jobs {
		pending[j.id] = true
	}
	lastLog := time.Time{}
	for {
		c.supervise()
		c.scrapeWorkers(ctx)
		c.sampleSlots(ctx)
		states := c.poll(ctx, pending)
		for id, st := range states {
			if st.Final() {
				delete(pending, id)
			}
		}
		if len(pending) == 0 {
			c.rep.drained = time.Since(c.t0)
			c.mark("every job is final")
			return nil
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			c.logf("%d of %d jobs not final yet (%s)", len(pending), len(c.jobs), countStates(states, pending))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.mark("gave up waiting: %d jobs not final", len(pending))
			return fmt.Errorf("%d jobs not final within the run's limit", len(pending))
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

func countStates(states map[string]jobstatus.State, only map[string]bool) string {
	n := map[string]int{}
	for id, st := range states {
		if only[id] {
			n[string(st)]++
		}
	}
	return formatCounts(n)
}

// poll reads the records of ids through GET /v1/jobs/{id}, 16 at a time. A record that cannot
// be read is left out; a missing one is reported as state "".
func (c *chaos) poll(ctx context.Context, ids map[string]bool) map[string]jobstatus.State {
	recs := c.records(ctx, ids)
	out := make(map[string]jobstatus.State, len(recs))
	for id, r := range recs {
		out[id] = r.State
	}
	return out
}

// records reads the records of ids; missing records come back with an empty State.
func (c *chaos) records(ctx context.Context, ids map[string]bool) map[string]jobstatus.Record {
	work := make(chan string)
	var mu sync.Mutex
	out := make(map[string]jobstatus.Record, len(ids))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for id := range work {
				var rec jobstatus.Record
				code, err := c.api(ctx, http.MethodGet, "/v1/jobs/"+id, nil, &rec)
				mu.Lock()
				switch {
				case err == nil && code == http.StatusOK:
					out[id] = rec
				case err == nil && code == http.StatusNotFound:
					out[id] = jobstatus.Record{ID: id}
				}
				mu.Unlock()
			}
		})
	}
	for id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return out
}

// simCall is the part of the simulator's call record the run reads.
type simCall struct {
	UserData string `json:"user_data"`
	Result   string `json:"result"`
	Ended    bool   `json:"ended"`
}

// collect fills the report: every record read again, the simulator's calls, the gateway's and
// the workers' counters, what Redis still holds; then it stops every process.
func (c *chaos) collect(ctx context.Context, rdb *redis.Client) error {
	all := make(map[string]bool, len(c.jobs))
	for _, j := range c.jobs {
		all[j.id] = true
	}
	recs := c.records(ctx, all)
	var calls []simCall
	if err := c.getJSON(ctx, c.simURL+"/sim/calls", &calls); err != nil {
		return fmt.Errorf("read the simulator's calls: %w", err)
	}
	c.rep.tally(c.jobs, recs, calls)
	var stats struct {
		Refusals map[string]int `json:"refusals"`
	}
	if err := c.getJSON(ctx, c.simURL+"/sim/stats", &stats); err == nil {
		c.rep.simRefusals = stats.Refusals
	}

	gw, err := scrape(ctx, c.client, "http://"+c.gwAdmin+"/metrics")
	if err != nil {
		return fmt.Errorf("read the gateway's metrics: %w", err)
	}
	c.rep.spool = gw.by("voicequeue_spool_pushes_total", "result")
	c.rep.pushes = gw.by("voicequeue_pushes_received_total", "outcome")

	c.scrapeWorkers(ctx)
	for _, w := range c.workers {
		c.book.end(w.n)
	}
	ws := c.book.all()
	c.rep.workerProcs = c.book.processes()
	c.rep.breaker = ws.by("voicequeue_breaker_transitions_total", "to")
	c.rep.breakerRejections = ws.sum("voicequeue_breaker_rejections_total", nil)
	c.rep.retries = ws.by("voicequeue_job_retries_total", "reason")
	c.rep.provider = ws.by("voicequeue_provider_requests_total", "class")

	if n, err := c.slots.InUse(ctx, c.appKey); err == nil {
		c.rep.slotsHeld = n
	}
	c.rep.tasks = map[string]int{}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for q := range queue.Queues() {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			continue
		}
		c.rep.tasks["pending"] += info.Pending
		c.rep.tasks["active"] += info.Active
		c.rep.tasks["scheduled"] += info.Scheduled
		c.rep.tasks["retry"] += info.Retry
		c.rep.tasks["archived"] += info.Archived
	}
	return nil
}

func (c *chaos) getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// close stops every process: the workers first (SIGTERM, their shutdown timeout), then the
// gateway, the simulator and Redis.
func (c *chaos) close() {
	var wg sync.WaitGroup
	for _, w := range c.workers {
		if w.p != nil {
			wg.Go(func() { w.p.Stop(10 * time.Second) })
		}
	}
	wg.Wait()
	for _, p := range []*proc{c.gw, c.sim} {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
	if c.redis != nil {
		c.redis.stop()
	}
}

func (c *chaos) removeDir() {
	if c.ownDir {
		_ = os.RemoveAll(c.dir)
	}
}
