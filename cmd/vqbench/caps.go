package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// caps is the run of issue 4: 4 worker PROCESSES and a gateway process against the simulator
// process, the simulator's cap and ours both at 100 calls/s and 20 concurrent calls, 3,000 jobs.
// Everything it judges comes from the simulator's own /sim/stats. The run is repeated with one
// worker killed (SIGKILL) once half of the calls are placed; both runs wait until every job has
// ended.
func (b *bench) caps(ctx context.Context) []result {
	rs := b.capsRun(ctx, false)
	if !b.o.capsNoKill && ctx.Err() == nil {
		_ = b.flush(ctx)
		rs = append(rs, b.capsRun(ctx, true)...)
	}
	return rs
}

// capsFleet is the processes of one caps run.
type capsFleet struct {
	sim, gateway *proc
	workers      []*proc
	admins       []string // the workers' admin addresses
	simURL       string
	gwURL        string
	tag          string
	env          map[string]string // the workers' environment
	workerBin    string
}

func (f *capsFleet) stop() {
	for _, w := range f.workers {
		w.Stop(25 * time.Second)
	}
	if f.gateway != nil {
		f.gateway.Stop(10 * time.Second)
	}
	if f.sim != nil {
		f.sim.Stop(10 * time.Second)
	}
}

func (b *bench) startFleet(ctx context.Context, tag string) (*capsFleet, error) {
	bins, err := b.build(ctx)
	if err != nil {
		return nil, err
	}
	o := b.o
	f := &capsFleet{}
	simAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	gwAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	f.simURL, f.gwURL = "http://"+simAddr, "http://"+gwAddr
	simArgs := []string{"--addr", simAddr, "--app-key", b.sec.appKey, "--app-secret", b.sec.appSecret,
		"--rate", num(o.capsRate), "--ports", itoa(o.capsPorts), "--speed", num(o.capsSpeed)}
	simPath := bins.voicesim
	if simPath == "" {
		simPath, simArgs = bins.self, append([]string{"sim"}, simArgs...)
	} else {
		simArgs = append(simArgs, "--log-level", "warn")
	}
	if f.sim, err = b.start("caps"+tag+"-voicesim", simPath, simArgs, nil); err != nil {
		return f, err
	}
	if err := waitHTTP(ctx, f.simURL+"/healthz", f.sim, 20*time.Second); err != nil {
		return f, err
	}
	env := b.baseEnv(f.simURL, f.gwURL)
	env["VOICEQUEUE_CALL_RATE"] = num(o.capsRate)
	env["VOICEQUEUE_CALL_BURST"] = "1"
	env["VOICEQUEUE_MAX_CONCURRENT_CALLS"] = itoa(o.capsPorts)
	env["VOICEQUEUE_DIAL_RESOLVE_TIMEOUT"] = o.capsResolve.String()
	gwEnv := maps.Clone(env)
	gwEnv["VOICEQUEUE_HTTP_ADDR"] = gwAddr
	gwAdmin, err := freeAddr()
	if err != nil {
		return f, err
	}
	gwEnv["VOICEQUEUE_ADMIN_ADDR"] = gwAdmin
	if f.gateway, err = b.start("caps"+tag+"-gateway", bins.gateway, nil, gwEnv); err != nil {
		return f, err
	}
	if err := waitHTTP(ctx, "http://"+gwAdmin+"/readyz", f.gateway, 20*time.Second); err != nil {
		return f, err
	}
	f.tag, f.env, f.workerBin = tag, env, bins.worker
	return f, nil
}

// startWorkers starts the fleet's worker processes, one after the other, each once it is ready.
func (b *bench) startWorkers(ctx context.Context, f *capsFleet) error {
	for i := range b.o.capsWorkers {
		wEnv := maps.Clone(f.env)
		admin, err := freeAddr()
		if err != nil {
			return err
		}
		wEnv["VOICEQUEUE_ADMIN_ADDR"] = admin
		f.admins = append(f.admins, admin)
		w, err := b.start(fmt.Sprintf("caps%s-worker%d", f.tag, i+1), f.workerBin, nil, wEnv)
		if err != nil {
			return err
		}
		f.workers = append(f.workers, w)
		if err := waitHTTP(ctx, "http://"+admin+"/readyz", w, 20*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) capsRun(ctx context.Context, kill bool) []result {
	o := b.o
	tag, label := "", "caps"
	if kill {
		tag, label = "_kill", "caps, 1 worker killed"
	}
	fail := func(err error) []result {
		return []result{{Target: 0, Name: "caps" + tag + "_max_calls_in_any_second", Err: err}}
	}
	b.progress("%s: starting the simulator and a gateway as processes", label)
	f, err := b.startFleet(ctx, tag)
	defer f.stop()
	if err != nil {
		return fail(err)
	}
	hc := &http.Client{Timeout: time.Minute}
	api := &apiClient{base: f.gwURL, token: b.sec.apiToken, hc: hc}
	inspector := asynq.NewInspectorFromRedisClient(b.rdb)
	store := jobstatus.New(b.rdb, jobstatus.Options{})

	b.progress("%s: submitting %d bulk notify jobs", label, o.capsJobs)
	var ids []string
	for i := 0; i < o.capsJobs; i += queue.MaxBatch {
		reqs := make([]queue.Request, min(queue.MaxBatch, o.capsJobs-i))
		for j := range reqs {
			reqs[j] = queue.Request{Kind: "notify", To: callee(6_000_000 + i + j), TemplateID: "tpl_arrears", TemplateParams: []string{"42.50", "2026/12/01"}}
		}
		var resp struct {
			Results []queue.BatchItem `json:"results"`
		}
		if err := api.post(ctx, "/v1/jobs/batch", map[string]any{"jobs": reqs}, &resp); err != nil {
			return fail(err)
		}
		for _, it := range resp.Results {
			if it.ID == "" {
				return fail(fmt.Errorf("batch item %d: %s", it.Index, it.Error))
			}
			ids = append(ids, it.ID)
		}
	}
	// The workers start once the backlog is in: on this machine's 2 CPUs, the gateway taking
	// 3,000 jobs would otherwise compete with the first calls (the caps judge the drain).
	b.progress("%s: starting %d workers as processes", label, o.capsWorkers)
	if err := b.startWorkers(ctx, f); err != nil {
		return fail(err)
	}
	t0 := time.Now()
	var backlogEnd, killedAt time.Time
	killedAfter := 0
	deadline := t0.Add(3 * time.Minute)
	if kill {
		deadline = t0.Add(5 * time.Minute)
	}
	var stats voicesim.Stats
	var states map[jobstatus.State]int
	lastCheck := time.Time{}
	for {
		if err := getJSON(ctx, hc, f.simURL+"/sim/stats", &stats); err != nil {
			return fail(fmt.Errorf("simulator stats: %w", err))
		}
		if kill && killedAt.IsZero() && stats.Accepted >= o.capsJobs/2 {
			f.workers[0].Kill()
			killedAt, killedAfter = time.Now(), stats.Accepted
			b.progress("%s: SIGKILL worker 1 (pid %d) after %d calls", label, f.workers[0].PID(), killedAfter)
		}
		if backlogEnd.IsZero() {
			if backlogEmpty(inspector, queue.QueueBulk) {
				backlogEnd = time.Now()
				b.progress("%s: backlog empty after %.1f s (%d calls placed)", label, backlogEnd.Sub(t0).Seconds(), stats.Accepted)
			}
		}
		// Job states are read (3,000 records) only once no job waits any more: a scan while the
		// backlog drains would take both CPUs for a moment every few seconds, and delay calls.
		if !backlogEnd.IsZero() && time.Since(lastCheck) > time.Second {
			lastCheck = time.Now()
			if states, err = countStates(ctx, store, ids); err != nil {
				return fail(err)
			}
			if finalCount(states) == len(ids) {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	ended := time.Since(t0)
	if finalCount(states) != len(ids) {
		// The deadline came first: read the states once more for the report.
		if st, err := countStates(context.WithoutCancel(ctx), store, ids); err == nil {
			states = st
		}
	}
	_ = getJSON(ctx, hc, f.simURL+"/sim/stats", &stats)
	var calls []voicesim.CallRecord
	_ = getJSON(ctx, hc, f.simURL+"/sim/calls", &calls)
	if backlogEnd.IsZero() {
		backlogEnd = time.Now()
	}
	var first time.Time
	for _, c := range calls {
		if first.IsZero() || c.AcceptedAt.Before(first) {
			first = c.AcceptedAt
		}
	}
	perSec := windowCounts(stats.CallsPerSecond, first, backlogEnd)
	mean := meanOf(perSec)
	refusals := 0
	for _, n := range stats.OverCapRefusals {
		refusals += n
	}
	var scraped []string
	for i, a := range f.admins {
		if !f.workers[i].Exited() {
			scraped = append(scraped, "http://"+a+"/metrics")
		}
	}
	workerMetrics := scrapeSum(ctx, hc, scraped, "voicequeue_jobs_deferred_total", "voicequeue_job_retries_total",
		"voicequeue_ratelimit_tokens_total", "voicequeue_ratelimit_effective_rate", "voicequeue_provider_requests_total{api=\"notify\",class=\"rate\"",
		"voicequeue_dial_token_lateness_seconds_bucket")
	final := finalCount(states)
	stateList := formatStates(states)
	b.rp.note(label, "simulator, per whole second while the backlog lasted", "%s", joinInts(perSec, 40))
	b.rp.note(label, "simulator totals", "accepted %d; max in any sliding 1 s %d, max per calendar second %d; over-cap refusals %v; all refusals %v; calls placed twice for one job %d; pushes %+v",
		stats.Accepted, stats.MaxInAnySecond, stats.MaxPerSecond, stats.OverCapRefusals, stats.Refusals, stats.DuplicateCalls, stats.Pushes)
	b.rp.note(label, "jobs", "%d of %d ended after %.1f s: %s; backlog lasted %.1f s", final, len(ids), ended.Seconds(), stateList, backlogEnd.Sub(t0).Seconds())
	b.rp.note(label, "worker metrics (summed over the live workers)", "%s", workerMetrics)
	if kill {
		b.rp.note(label, "kill", "worker 1 killed with SIGKILL after %d accepted calls, %.1f s into the run; its tasks come back after asynq's lease (30 s) + the recoverer's 30 s cutoff and 1 min period",
			killedAfter, killedAt.Sub(t0).Seconds())
	}
	b.rp.note(label, "settings", "%d worker processes, VOICEQUEUE_CALL_RATE=%s VOICEQUEUE_CALL_BURST=1 VOICEQUEUE_MAX_CONCURRENT_CALLS=%d VOICEQUEUE_DIAL_RESOLVE_TIMEOUT=%v, default concurrency; voicesim --rate %s --ports %d --speed %s (%s)",
		o.capsWorkers, num(o.capsRate), o.capsPorts, o.capsResolve, num(o.capsRate), o.capsPorts, num(o.capsSpeed), simName(b.bins))
	return []result{
		{Target: 0, Name: "caps" + tag + "_max_calls_in_any_second", Value: float64(stats.MaxInAnySecond), Anchor: o.capsRate, Cmp: atMost, Bound: o.capsRate,
			Detail: "most calls the simulator accepted in any sliding 1 s window; anchor: the cap"},
		{Target: 0, Name: "caps" + tag + "_mean_calls_per_second", Value: mean, Anchor: o.capsRate, Cmp: ratioAtLeast, Bound: 0.95,
			Detail: fmt.Sprintf("mean over %d whole seconds while jobs were waiting", len(perSec))},
		{Target: 0, Name: "caps" + tag + "_over_cap_refusals", Value: float64(refusals), Anchor: 0, Cmp: atMost, Bound: 0,
			Detail: "1013001 + 1020165 + 1010010 answers of the simulator"},
		{Target: 0, Name: "caps" + tag + "_jobs_ended", Value: float64(final), Anchor: float64(len(ids)), Cmp: atLeast, Bound: float64(len(ids)),
			Detail: stateList},
	}
}

func simName(bins *binaries) string {
	if bins != nil && bins.voicesim != "" {
		return "cmd/voicesim"
	}
	return "vqbench sim"
}

func finalCount(states map[jobstatus.State]int) int {
	n := 0
	for s, c := range states {
		if s.Final() {
			n += c
		}
	}
	return n
}

func formatStates(states map[jobstatus.State]int) string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(states)) {
		parts = append(parts, fmt.Sprintf("%s %d", s, states[s]))
	}
	return strings.Join(parts, ", ")
}

// getJSON fetches url and decodes its JSON body into out.
func getJSON(ctx context.Context, hc *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// scrapeSum fetches Prometheus text from urls and sums the series whose line starts with one of
// prefixes, by series.
func scrapeSum(ctx context.Context, hc *http.Client, urls []string, prefixes ...string) string {
	sums := map[string]float64{}
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			continue
		}
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		for _, line := range strings.Split(string(raw), "\n") {
			if line == "" || line[0] == '#' {
				continue
			}
			match := false
			for _, p := range prefixes {
				match = match || strings.HasPrefix(line, p)
			}
			i := strings.LastIndexByte(line, ' ')
			if !match || i < 0 {
				continue
			}
			var v float64
			if _, err := fmt.Sscan(line[i+1:], &v); err == nil && v != 0 {
				sums[strings.TrimPrefix(line[:i], "voicequeue_")] += v
			}
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(sums)) {
		parts = append(parts, k+"="+num(sums[k]))
	}
	return strings.Join(parts, "; ")
}

// backlogEmpty reports whether no task of queue is pending, scheduled or waiting to be retried.
// It lists at most one task of each (three short reads) rather than asking for the queue's info,
// which also samples the memory of its tasks: the bench looks every 200 ms while calls are being
// measured, and must stay light.
func backlogEmpty(in *asynq.Inspector, queue string) bool {
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		in.ListPendingTasks, in.ListScheduledTasks, in.ListRetryTasks,
	} {
		if tasks, err := list(queue, asynq.PageSize(1)); err != nil || len(tasks) > 0 {
			return false
		}
	}
	return true
}
