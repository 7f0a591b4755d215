package main

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
)

// rssBudget is the worker's memory budget at concurrency 100 under load. The issue sets no
// number; this one fits a 128 MiB container limit with room for Go's GC headroom.
const rssBudget = 100 // MiB

// footprint is target 5: the RSS of a worker PROCESS (cmd/worker, built, VmRSS from
// /proc/PID/status sampled every 50 ms) at concurrency 100 while it runs a load of jobs to their
// end, and the Redis bytes of a finished job record (MEMORY USAGE of the record key of jobs that
// completed with six events and a CDR). The gateway and the simulator run in this process.
func (b *bench) footprint(ctx context.Context) []result {
	fail := func(err error) []result {
		return []result{{Target: 5, Name: "worker_rss_mib", Err: err}, {Target: 5, Name: "record_bytes", Err: err}}
	}
	n, conc := b.o.footprintJobs, b.o.footprintConc
	bins, err := b.build(ctx)
	if err != nil {
		return fail(err)
	}
	st, err := b.newStack(stackOptions{NoWorker: true, SimSpeed: 100, Env: map[string]string{
		"VOICEQUEUE_CONCURRENCY":          strconv.Itoa(conc),
		"VOICEQUEUE_CALL_RATE":            "1000000",
		"VOICEQUEUE_CALL_BURST":           "1000",
		"VOICEQUEUE_MAX_CONCURRENT_CALLS": "1000000",
	}})
	if err != nil {
		return fail(err)
	}
	defer st.close()
	admin, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	env := maps.Clone(st.env)
	env["VOICEQUEUE_ADMIN_ADDR"] = admin
	wp, err := b.start("footprint-worker", bins.worker, nil, env)
	if err != nil {
		return fail(err)
	}
	defer wp.Stop(20 * time.Second)
	if err := waitHTTP(ctx, "http://"+admin+"/readyz", wp, 20*time.Second); err != nil {
		return fail(err)
	}
	time.Sleep(time.Second)
	idleRSS, _, err := procStatus(wp.PID())
	if err != nil {
		return fail(err)
	}
	mem0 := b.usedMemory(ctx)

	b.progress("footprint: %d notify jobs through a worker process at concurrency %d", n, conc)
	sampler := sampleRSS(wp.PID(), 50*time.Millisecond)
	cpu0 := procCPU(wp.PID())
	t0 := time.Now()
	ids := make([]string, n)
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
				res, err := st.gw.Submit.Submit(ctx, queue.Request{Kind: "notify", To: callee(4_000_000 + int(i)),
					TemplateID: "tpl_arrears", TemplateParams: []string{"42.50", "2026/12/01"}})
				if err != nil {
					errc <- err
					return
				}
				ids[i] = res.ID
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		sampler.end()
		return fail(fmt.Errorf("submit: %w", err))
	}
	if err := waitCount(ctx, st.tap, int64(n), 3*time.Minute); err != nil {
		sampler.end()
		return fail(err)
	}
	dialled := time.Since(t0)
	workerCPU := procCPU(wp.PID()) - cpu0
	peak, mean := sampler.end()
	_, hwm, _ := procStatus(wp.PID())

	// Wait for the calls to play out and their pushes to end every job.
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err = st.sim.WaitIdle(waitCtx)
	cancel()
	if err != nil {
		return fail(err)
	}
	states, err := countStates(ctx, st.gw.Store, ids)
	if err != nil {
		return fail(err)
	}
	if states[jobstatus.StateCompleted] != n {
		return fail(fmt.Errorf("not every job completed: %v", states))
	}
	mem1 := b.usedMemory(ctx)

	sample := min(b.o.footprintKeys, n)
	var recBytes, recMax, sessBytes, strBytes int64
	for i := range sample {
		id := ids[i*n/sample]
		// The key layout of internal/jobstatus (keys.go): <prefix>:{<job id>}:job.
		u, err := b.rdb.MemoryUsage(ctx, "voicequeue:{"+id+"}:job").Result()
		if err != nil {
			return fail(fmt.Errorf("MEMORY USAGE of job %s: %w", id, err))
		}
		l, _ := b.rdb.StrLen(ctx, "voicequeue:{"+id+"}:job").Result()
		recBytes += u
		recMax = max(recMax, u)
		strBytes += l
	}
	sessions, _, _ := b.rdb.Scan(ctx, 0, "voicequeue:session:*", int64(sample)).Result()
	for _, k := range sessions {
		u, _ := b.rdb.MemoryUsage(ctx, k).Result()
		sessBytes += u
	}
	avg := float64(recBytes) / float64(sample)
	b.rp.note("5 footprint", "worker process RSS", "idle %.1f MiB; under load peak %.1f MiB, mean %.1f MiB (VmHWM %.1f MiB); concurrency %d; %d jobs dialled in %.1f s (%.0f/s), worker CPU %.0f µs/job",
		mib(idleRSS), mib(peak), mib(mean), mib(hwm), conc, n, dialled.Seconds(), float64(n)/dialled.Seconds(), perJob(float64(workerCPU.Microseconds()), n))
	b.rp.note("5 footprint", "finished job record", "MEMORY USAGE mean %.0f B, max %d B over %d records (JSON %.0f B); session index key %.0f B; Redis used_memory grew %.0f B per finished job (all keys)",
		avg, recMax, sample, float64(strBytes)/float64(sample), perJob(float64(sessBytes), len(sessions)), perJob(float64(mem1-mem0), n))
	return []result{
		{Target: 5, Name: "worker_rss_mib", Value: mib(peak), Anchor: mib(idleRSS), Cmp: atMost, Bound: rssBudget,
			Detail: fmt.Sprintf("peak VmRSS of the worker process (pid %d) at concurrency %d; anchor: the same process idle; budget %d MiB (our choice)", wp.PID(), conc, rssBudget)},
		{Target: 5, Name: "record_bytes", Value: avg, Anchor: 1024, Cmp: atMost, Bound: 1024,
			Detail: "MEMORY USAGE of a completed job's record (6 events + CDR); anchor: 1 KiB"},
	}
}

// usedMemory is the Redis server's used_memory.
func (b *bench) usedMemory(ctx context.Context) int64 {
	raw, err := b.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(parseInfo(raw)["used_memory"], 10, 64)
	return v
}

// countStates reads every job and counts the states.
func countStates(ctx context.Context, store *jobstatus.Store, ids []string) (map[jobstatus.State]int, error) {
	out := map[jobstatus.State]int{}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, producers)
	for range producers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(ids)) {
					return
				}
				rec, err := store.Get(ctx, ids[i])
				state := rec.State
				if err != nil {
					state = "missing"
				}
				mu.Lock()
				out[state]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errc)
	return out, <-errc
}
