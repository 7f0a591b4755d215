package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
)

// push is target 3: status and CDR pushes per second at the gateway (POST /callbacks/{secret}/
// status and /fee for existing jobs) under 32 concurrent connections, against a bare net/http
// handler doing one Redis write, same requests, same connections, same run.
//
// Each job gets what the platform sends for an answered call, in order: callout, alerting,
// answer, disconnect, then its CDR. The jobs exist (queued) before the clock starts; the
// gateway's slot release and metrics run as in production (call slots on).
func (b *bench) push(ctx context.Context) []result {
	fail := func(err error) []result {
		return []result{{Target: 3, Name: "push_per_second", Err: err}, {Target: 3, Name: "push_p99_ms", Err: err}}
	}
	n, conns := b.o.pushJobs, b.o.pushConns
	st, err := b.newStack(stackOptions{NoWorker: true, SimSpeed: 1, Env: map[string]string{"VOICEQUEUE_MAX_CONCURRENT_CALLS": "1000"}})
	if err != nil {
		return fail(err)
	}
	defer st.close()
	tagger := queue.NewTagger(st.cfg.Keys().UserData)
	statusURL, feeURL := st.cfg.PushURLs()

	// The bare anchor: read the body, one SET, answer 200.
	bareRdb, err := app.NewRedis(b.redisURL)
	if err != nil {
		return fail(err)
	}
	defer bareRdb.Close()
	var seq atomic.Int64
	bareSrv := newServers(b.log)
	defer bareSrv.stop()
	ln, err := listen()
	if err != nil {
		return fail(err)
	}
	bareURL := bareSrv.serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := bareRdb.Set(r.Context(), "vqbench:push:"+strconv.FormatInt(seq.Add(1), 10), body, time.Hour).Err(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))

	b.progress("push: creating %d jobs", n)
	ids, err := createJobs(ctx, st.gw.Store, n)
	if err != nil {
		return fail(err)
	}
	jobs := make([][]pushReq, n)
	for i, id := range ids {
		jobs[i] = pushesFor(i, tagger.Tag(queue.Reference{JobID: id, Attempt: 1}), statusURL, feeURL)
	}

	b.progress("push: bare handler, %d requests on %d connections", n*5, conns)
	bare, err := firePushes(ctx, jobs, conns, func(string) string { return bareURL + "/push" })
	if err != nil {
		return fail(fmt.Errorf("bare handler: %w", err))
	}
	b.progress("push: gateway, %d requests on %d connections", n*5, conns)
	ph := b.begin(ctx, "push-gateway")
	ours, err := firePushes(ctx, jobs, conns, func(u string) string { return u })
	cost := ph.end(ctx)
	if err != nil {
		return fail(fmt.Errorf("gateway: %w", err))
	}
	// Every job must have ended completed, with its CDR.
	bad := 0
	for _, id := range ids {
		rec, err := st.gw.Store.Get(ctx, id)
		if err != nil || rec.State != jobstatus.StateCompleted || rec.CDR == nil {
			bad++
		}
	}
	if bad > 0 {
		return fail(fmt.Errorf("%d of %d jobs did not end completed with a CDR", bad, n))
	}
	b.rp.note("3 push", "gateway", "%.0f pushes/s, p50 %.2f ms, p99 %.2f ms; process CPU %.0f µs/push (gateway + load generator); Redis CPU %.0f µs/push",
		ours.rate, ms(ours.p50), ms(ours.p99), perJob(float64(cost.cpu.Microseconds()), n*5), perJob(cost.redisCPU*1e6, n*5))
	b.rp.note("3 push", "bare net/http + 1 SET (anchor)", "%.0f requests/s, p50 %.2f ms, p99 %.2f ms", bare.rate, ms(bare.p50), ms(bare.p99))
	b.rp.note("3 push", "Redis time per push, gateway", "%s", cost.ri0.topCommands(cost.ri1, n*5, 8))
	b.rp.note("3 push", "checked", "%d jobs ended completed with their CDR (4 status pushes + 1 CDR push each)", n)
	return []result{
		{Target: 3, Name: "push_per_second", Value: ours.rate, Anchor: bare.rate, Cmp: ratioAtLeast, Bound: 0.5,
			Detail: fmt.Sprintf("%d connections; anchor: bare net/http handler doing one SET", conns)},
		{Target: 3, Name: "push_p99_ms", Value: ms(ours.p99), Anchor: ms(bare.p99), Cmp: below, Bound: 20,
			Detail: fmt.Sprintf("p50 %.2f ms; anchor: the bare handler's p99", ms(ours.p50))},
	}
}

// createJobs records n queued notify jobs, as the submitter does, without tasks.
func createJobs(ctx context.Context, store *jobstatus.Store, n int) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, producers)
	now := time.Now().UTC()
	for range producers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				rec, _, err := store.Create(ctx, jobstatus.Record{
					Kind: "notify", Queue: queue.QueueNotify, To: "+86139****0001",
					CreatedAt: now, DispatchBy: now.Add(24 * time.Hour),
				})
				if err != nil {
					errc <- err
					return
				}
				ids[i] = rec.ID
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("create jobs: %w", err)
	}
	return ids, nil
}

// pushReq is one push: where (the gateway's URL) and what.
type pushReq struct {
	url  string
	body []byte
}

// pushesFor returns the pushes of an answered notify call, in the platform's order.
func pushesFor(i int, userData, statusURL, feeURL string) []pushReq {
	session := fmt.Sprintf("1200_%d_0_20261125100000@callenabler.vqbench", i)
	called := callee(i)
	status := func(event, extra string) pushReq {
		return pushReq{statusURL, fmt.Appendf(nil,
			`{"eventType":%q,"statusInfo":{"sessionId":%q,"timestamp":"2026-11-25 10:00:00","caller":%q,"called":%q%s,"userData":%q}}`,
			event, session, displayNumber, called, extra, userData)}
	}
	fee := pushReq{feeURL, fmt.Appendf(nil,
		`{"eventType":"fee","feeLst":[{"direction":0,"spId":"sp_vqbench","appKey":"vqbench-app-key","icid":"%016x","bindNum":%q,`+
			`"sessionId":%q,"callerNum":%q,"calleeNum":%q,"callOutStartTime":"2026-11-25 10:00:00",`+
			`"callOutAlertingTime":"2026-11-25 10:00:02","callOutAnswerTime":"2026-11-25 10:00:05","callEndTime":"2026-11-25 10:00:17",`+
			`"callOutUnaswRsn":0,"ulFailReason":0,"sipStatusCode":0,"ttsPlayTimes":1,"ttsTransDuration":1,"serviceType":"001",`+
			`"hostName":"callenabler.vqbench","userData":%q}]}`,
		i, displayNumber, session, displayNumber, called, userData)}
	return []pushReq{
		status("callout", ""),
		status("alerting", ""),
		status("answer", ""),
		status("disconnect", `,"stateCode":0,"stateDesc":"The user releases the call."`),
		fee,
	}
}

// pushRun is what firing the pushes measured.
type pushRun struct {
	rate     float64
	p50, p99 time.Duration
}

// firePushes sends every job's pushes in order, jobs shared out over conns connections, and
// measures each request. target maps a push URL to where it is sent.
func firePushes(ctx context.Context, jobs [][]pushReq, conns int, target func(string) string) (pushRun, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	lat := make([][]time.Duration, conns)
	errc := make(chan error, conns)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := range conns {
		wg.Go(func() {
			for {
				j := next.Add(1) - 1
				if j >= int64(len(jobs)) {
					return
				}
				for _, p := range jobs[j] {
					t0 := time.Now()
					resp, err := hc.Post(target(p.url), "application/json;charset=UTF-8", bytes.NewReader(p.body))
					if err != nil {
						errc <- err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						errc <- fmt.Errorf("push answered %s", resp.Status)
						return
					}
					lat[c] = append(lat[c], time.Since(t0))
				}
				if ctx.Err() != nil {
					errc <- ctx.Err()
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return pushRun{}, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return pushRun{rate: float64(len(all)) / elapsed.Seconds(), p50: percentile(all, 50), p99: percentile(all, 99)}, nil
}
