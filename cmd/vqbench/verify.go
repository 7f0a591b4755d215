package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/voicequeue/voicequeue/internal/app"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/voice"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// verify is target 2: while a backlog of bulk notify jobs drains at the cap (ours and the
// simulator's, 200 calls/s), verify jobs submitted over the API one every 100 ms must reach the
// provider with p99 time-to-dial under 250 ms, and the cap must stay fully used.
//
// Time-to-dial runs from just before the POST /v1/jobs to the simulator's accepted_at of the
// call. The anchor is the same measurement with no backlog at all. The cap's use comes from the
// simulator's own per-second counts, over the whole seconds between the first and the last bulk
// call accepted. The stack is the product's defaults except the cap and the simulator's speed
// (20: a call plays out in ~0.4 s, its pushes reach the gateway, which releases its slot).
func (b *bench) verify(ctx context.Context) []result {
	fail := func(err error) []result {
		return []result{{Target: 2, Name: "verify_p99_ms", Err: err}, {Target: 2, Name: "verify_cap_used_calls_per_second", Err: err}}
	}
	rate := b.o.verifyRate
	st, err := b.newStack(stackOptions{
		SimRate: rate, SimSpeed: 20,
		Env: map[string]string{
			"VOICEQUEUE_CALL_RATE":            num(rate),
			"VOICEQUEUE_MAX_CONCURRENT_CALLS": "2000",
		},
	})
	if err != nil {
		return fail(err)
	}
	defer st.close()
	cfg := st.cfg
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer hc.CloseIdleConnections()
	api := &apiClient{base: st.gwURL, token: b.sec.apiToken, hc: hc}
	st.startWorker()

	// The anchor: verify jobs with nothing else queued.
	b.progress("verify: idle anchor, %d verify jobs one every %v", b.o.verifyIdle, b.o.verifyEvery)
	idle := newVerifyProducer(api, b.o.verifyEvery, 0)
	idle.run(ctx, b.o.verifyIdle, nil)
	if err := waitCount(ctx, st.tap, int64(b.o.verifyIdle), 10*time.Second); err != nil {
		return fail(fmt.Errorf("idle verify jobs: %w", err))
	}

	// The backlog.
	b.progress("verify: submitting %d bulk notify jobs through POST /v1/jobs/batch", b.o.verifyBulk)
	t0 := time.Now()
	for i := 0; i < b.o.verifyBulk; i += queue.MaxBatch {
		n := min(queue.MaxBatch, b.o.verifyBulk-i)
		reqs := make([]queue.Request, n)
		for j := range reqs {
			reqs[j] = queue.Request{Kind: "notify", To: callee(1_000_000 + i + j), TemplateID: "tpl_arrears", TemplateParams: []string{"12.00", "2026/12/01"}}
		}
		if err := api.batch(ctx, reqs); err != nil {
			return fail(fmt.Errorf("submit bulk jobs: %w", err))
		}
	}
	submitted := time.Now()
	b.progress("verify: backlog submitted in %.1fs; verify jobs every %v until it has drained", submitted.Sub(t0).Seconds(), b.o.verifyEvery)

	// Verify jobs while the backlog drains.
	loaded := newVerifyProducer(api, b.o.verifyEvery, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { loaded.run(ctx, 0, stop) })
	bulkDone := make(chan struct{})
	go func() {
		defer close(bulkDone)
		for ctx.Err() == nil && st.tap.count(voice.PathNotify) < b.o.verifyBulk {
			time.Sleep(20 * time.Millisecond)
		}
	}()
	window := b.o.verifyWindow
	if window <= 0 {
		window = 10 * time.Minute
	}
	select {
	case <-bulkDone:
	case <-time.After(window):
	case <-ctx.Done():
	}
	close(stop)
	wg.Wait()
	drained := st.tap.count(voice.PathNotify)
	// Let the last verify jobs through.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && st.tap.count(voice.PathVerify) < b.o.verifyIdle+loaded.sent(); {
		time.Sleep(10 * time.Millisecond)
	}

	tagger := queue.NewTagger(cfg.Keys().UserData)
	calls := st.sim.Calls()
	stats := st.sim.Stats()
	accepted := map[string]time.Time{}
	var firstBulk, lastBulk time.Time
	for _, c := range calls {
		if c.API == voicesim.APINotify {
			if firstBulk.IsZero() || c.AcceptedAt.Before(firstBulk) {
				firstBulk = c.AcceptedAt
			}
			if c.AcceptedAt.After(lastBulk) {
				lastBulk = c.AcceptedAt
			}
			continue
		}
		if ref, err := tagger.Parse(c.UserData); err == nil {
			accepted[ref.JobID] = c.AcceptedAt
		}
	}
	idleTTD, idleMissing := idle.timesToDial(accepted)
	ttd, missing := loaded.timesToDial(accepted)
	if len(ttd) == 0 {
		return fail(fmt.Errorf("no verify job reached the provider (%d missing)", missing))
	}
	// A verify job that did not reach the provider within the run counts as slower than any that
	// did: a percentile that falls on one is +Inf.
	p50, p99, worst := pctMissing(ttd, missing, 50), pctMissing(ttd, missing, 99), pctMissing(ttd, missing, 100)
	ip50, ip99 := pctMissing(idleTTD, idleMissing, 50), pctMissing(idleTTD, idleMissing, 99)

	// The cap's use is judged over the window the verify jobs are judged in: from the end of the
	// backlog's submission (the first verify job) to the last bulk call. While the 20 batches are
	// still being submitted (a few seconds), the gateway's work competes with the dials for this
	// machine's 2 CPUs; that stretch is shown too, beside the judged window.
	from := firstBulk
	if submitted.After(from) {
		from = submitted
	}
	perSec := windowCounts(stats.CallsPerSecond, from, lastBulk)
	mean := meanOf(perSec)
	whole := windowCounts(stats.CallsPerSecond, firstBulk, lastBulk)
	refusals := 0
	for _, n := range stats.OverCapRefusals {
		refusals += n
	}
	b.rp.note("2 verify", "time-to-dial under backlog", "%d verify jobs: p50 %.1f ms, p99 %.1f ms, max %.1f ms; not dialled by the end of the run %d",
		len(ttd)+missing, p50, p99, worst, missing)
	b.rp.note("2 verify", "time-to-dial, no backlog (anchor)", "%d verify jobs: p50 %.1f ms, p99 %.1f ms; not dialled %d",
		len(idleTTD)+idleMissing, ip50, ip99, idleMissing)
	b.rp.note("2 verify", "bulk drained", "%d of %d bulk calls in %.1f s; calls per whole second from the first bulk call (the backlog took %.1f s to submit): %s; mean %.1f, judged from the first verify job on: %.1f",
		drained, b.o.verifyBulk, lastBulk.Sub(firstBulk).Seconds(), submitted.Sub(t0).Seconds(), joinInts(whole, 12), meanOf(whole), mean)
	b.rp.note("2 verify", "simulator", "max calls in any 1 s window %d (cap %s); over-cap refusals %v; all refusals %v",
		stats.MaxInAnySecond, num(rate), stats.OverCapRefusals, stats.Refusals)
	b.rp.note("2 verify", "policy and queue metrics", "%s", st.metrics("ratelimit_tokens", "ratelimit_wait", "jobs_deferred", "job_retries", "ratelimit_effective", "provider_requests"))
	b.rp.note("2 verify", "settings", "VOICEQUEUE_CALL_RATE=%s burst %d reserve %.2f, concurrency %d (verify %d), TaskCheckInterval %v (verify %v), DelayedTaskCheckInterval %v, LimitMaxWait %v; simulator --rate %s --speed 20",
		num(rate), cfg.CallBurst, cfg.RateReserve, cfg.Concurrency, app.VerifyConcurrency(cfg.Concurrency), cfg.TaskCheckInterval, cfg.VerifyTaskCheckInterval, cfg.DelayedTaskCheckInterval, cfg.LimitMaxWait, num(rate))
	return []result{
		{Target: 2, Name: "verify_p99_ms", Value: p99, Anchor: ip99, Cmp: below, Bound: 250,
			Detail: fmt.Sprintf("p50 %.1f ms, %d of %d not dialled; anchor: p99 with no backlog", p50, missing, len(ttd)+missing)},
		{Target: 2, Name: "verify_cap_used_calls_per_second", Value: mean, Anchor: rate, Cmp: ratioAtLeast, Bound: 0.95,
			Detail: fmt.Sprintf("mean over %d whole seconds of the drain from the first verify job on; %d over-cap refusals", len(perSec), refusals)},
	}
}

// windowCounts returns the per-second counts of the whole seconds strictly inside (from, to):
// the first and the last second are partial and left out.
func windowCounts(secs []voicesim.SecondCount, from, to time.Time) []int {
	var out []int
	for _, s := range secs {
		if s.Second.Unix() > from.Unix() && s.Second.Unix() < to.Unix() {
			out = append(out, s.Calls)
		}
	}
	return out
}

func meanOf(vs []int) float64 {
	if len(vs) == 0 {
		return 0
	}
	sum := 0
	for _, v := range vs {
		sum += v
	}
	return float64(sum) / float64(len(vs))
}

// waitCount waits until the tap has counted n accepted calls.
func waitCount(ctx context.Context, t *tap, n int64, limit time.Duration) error {
	select {
	case <-t.await(n):
		return nil
	case <-time.After(limit):
		return fmt.Errorf("%d of %d calls accepted after %v", t.total.Load(), n, limit)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apiClient talks to the gateway's producer API.
type apiClient struct {
	base, token string
	hc          *http.Client
}

func (a *apiClient) post(ctx context.Context, path string, body any, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return a.postRaw(ctx, path, raw, out)
}

func (a *apiClient) postRaw(ctx context.Context, path string, raw []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// batch submits one batch and fails unless every item was accepted.
func (a *apiClient) batch(ctx context.Context, reqs []queue.Request) error {
	var resp struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
	}
	if err := a.post(ctx, "/v1/jobs/batch", map[string]any{"jobs": reqs}, &resp); err != nil {
		return err
	}
	if resp.Rejected > 0 || resp.Accepted != len(reqs) {
		return fmt.Errorf("batch: %d accepted, %d rejected of %d", resp.Accepted, resp.Rejected, len(reqs))
	}
	return nil
}

// verifyProducer submits verify jobs at a steady pace and remembers when each was submitted.
type verifyProducer struct {
	api     *apiClient
	every   time.Duration
	seq     int
	mu      sync.Mutex
	started map[string]time.Time
	errs    int
}

func newVerifyProducer(api *apiClient, every time.Duration, seq int) *verifyProducer {
	return &verifyProducer{api: api, every: every, seq: seq * 100_000, started: map[string]time.Time{}}
}

// run submits n jobs (0: until stop is closed), one every p.every; each POST runs on its own so
// that a slow answer does not delay the next submission.
func (p *verifyProducer) run(ctx context.Context, n int, stop <-chan struct{}) {
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; n == 0 || i < n; i++ {
		p.seq++
		to := callee(5_000_000 + p.seq)
		wg.Go(func() {
			start := time.Now()
			var res struct {
				ID string `json:"id"`
			}
			err := p.api.post(ctx, "/v1/jobs", queue.Request{Kind: "verify", To: to}, &res)
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil || res.ID == "" {
				p.errs++
				return
			}
			p.started[res.ID] = start
		})
		select {
		case <-tick.C:
		case <-stop:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (p *verifyProducer) sent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.started)
}

// timesToDial matches the submitted jobs with the simulator's accept times.
func (p *verifyProducer) timesToDial(accepted map[string]time.Time) ([]time.Duration, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []time.Duration
	missing := p.errs
	for id, start := range p.started {
		at, ok := accepted[id]
		if !ok {
			missing++
			continue
		}
		out = append(out, at.Sub(start))
	}
	return out, missing
}

// pctMissing is the p-th percentile in ms (nearest rank) of the dialled times plus missing jobs
// that count as slower than all of them (+Inf when the rank falls on one).
func pctMissing(dialled []time.Duration, missing int, p float64) float64 {
	total := len(dialled) + missing
	if total == 0 {
		return math.NaN()
	}
	rank := min(max(int(math.Ceil(p/100*float64(total))), 1), total)
	if rank > len(dialled) {
		return math.Inf(1)
	}
	s := slices.Clone(dialled)
	slices.Sort(s)
	return ms(s[rank-1])
}
