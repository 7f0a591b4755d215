package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
)

// report is what a run found.
type report struct {
	seed          int64
	jobs, workers int
	redisAddr     string
	aof           bool

	buildTime, submitTime, drained, total time.Duration

	submitted, rejected int
	byState             map[string]int
	unexpected          map[string]int // "kind expected → got"
	lost                []string
	lostStates          map[string]int
	simCalls            int
	foreignCalls        int
	dialledTwice        []string
	notDialled          map[string]int // final jobs the simulator has no call for, by state
	cdrWithoutCall      int
	redialled           int // jobs with more than one dial attempt (transient retries)
	unrecordedAccepts   int // calls whose acceptance a push recorded before the worker could
	unrecordedTwice     int // of those, dialled more than once
	simRefusals         map[string]int

	kills, workerStarts, selfExits, workerProcs int
	redisRestarted                              bool
	redisDown                                   time.Duration
	redisKeysBefore, redisKeysAfter             int64
	outage                                      string

	spool, pushes                        map[string]float64 // by result
	breaker                              map[string]float64 // transitions by state entered
	breakerRejections                    float64
	retries, provider                    map[string]float64 // by reason, by class
	slotsHeld                            int
	slotSamples, samplesAtSlotLimit      int
	peakSlots, peakActive, peakIdleSlots int
	tasks                                map[string]int
	timeline                             []string
}

// passed is the verdict: every job submitted, none lost, none dialled twice.
func (r *report) passed() bool {
	return r.submitted == r.jobs && r.rejected == 0 && len(r.lost) == 0 && len(r.dialledTwice) == 0
}

// print writes the report.
func (r *report) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("vqchaos: %d jobs, %d worker processes, seed %d", r.jobs, r.workers, r.seed)
	p("  timing: build %.1fs, submit %.1fs, all jobs final at %s, total %.1fs",
		r.buildTime.Seconds(), r.submitTime.Seconds(), orNever(r.drained), r.total.Seconds())
	p("")
	p("jobs submitted         %d (refused at submission: %d)", r.submitted, r.rejected)
	p("jobs ended by state    %s", formatCounts(r.byState))
	p("jobs lost              %d%s", len(r.lost), lostDetail(r))
	p("jobs dialled twice     %d (the simulator accepted %d calls; %s)", len(r.dialledTwice), r.simCalls, dialledDetail(r))
	p("pushes spooled         %s (replayed %s; %s)", num(r.spool["spooled"]), num(r.spool["replayed"]), otherSpool(r.spool))
	p("breaker transitions    %s (dials held back by the open breaker: %s)", formatFloats(r.breaker), num(r.breakerRejections))
	p("")
	p("faults injected")
	p("  worker SIGKILLs      %d (worker processes run: %d; exited by themselves: %d)", r.kills, r.workerStarts, r.selfExits)
	if r.redisRestarted {
		p("  Redis restart        1 (down %.2fs; %d keys before the SIGTERM, %d after loading the AOF; appendonly %v)",
			r.redisDown.Seconds(), r.redisKeysBefore, r.redisKeysAfter, r.aof)
	} else {
		p("  Redis restart        failed (see the timeline)")
	}
	p("  provider outage      %s", orNone(r.outage))
	p("")
	p("mechanisms at work (worker counters summed over all %d worker processes, each scraped just before its SIGKILL)", r.workerProcs)
	p("  dial guard           calls placed whose reply the worker never recorded (killed mid-request, Redis down, held reply): %d,",
		r.unrecordedAccepts)
	p("                       of which dialled again: %d; redeliveries that waited on an open dial: %s;",
		r.unrecordedTwice, num(r.retries["dial_guard"]))
	p("                       jobs ended unknown (open dial, no call placed or no push came): %d", r.byState["unknown"])
	p("  retries              jobs dialled more than once after a transient failure: %d", r.redialled)
	p("  retry policy         job retries by reason: %s", formatFloats(r.retries))
	p("  provider replies     by class: %s; simulator refusals: %s", formatFloats(r.provider), formatCounts(r.simRefusals))
	p("  pushes at gateway    by result: %s", formatFloats(r.pushes))
	p("")
	p("consistency")
	p("  outcome ≠ script     %s", orNone(formatCounts(r.unexpected)))
	p("  final, never dialled %s", orNone(formatCounts(r.notDialled)))
	p("  CDR but no call      %d", r.cdrWithoutCall)
	p("  calls of other jobs  %d", r.foreignCalls)
	p("  call slots held      %d at the end; peak %d held while the simulator had at most %d calls up (peak held with no call: %d;",
		r.slotsHeld, r.peakSlots, r.peakActive, r.peakIdleSlots)
	p("                       %d of %d one-second samples at the limit of %d)", r.samplesAtSlotLimit, r.slotSamples, maxConcurrentCalls)
	p("  asynq tasks left     %s", orNone(formatCounts(r.tasks)))
	p("")
	p("timeline")
	for _, l := range r.timeline {
		p("  %s", l)
	}
	p("")
	if r.passed() {
		p("PASS: no job lost, no job dialled twice")
	} else {
		p("FAIL: %d jobs lost, %d jobs dialled twice, %d of %d submitted", len(r.lost), len(r.dialledTwice), r.submitted, r.jobs)
	}
}

func lostDetail(r *report) string {
	if len(r.lost) == 0 {
		return ""
	}
	ids := r.lost[:min(len(r.lost), 10)]
	return fmt.Sprintf(" (%s; e.g. %s)", formatCounts(r.lostStates), strings.Join(ids, " "))
}

func dialledDetail(r *report) string {
	if len(r.dialledTwice) == 0 {
		return "none for the same job twice"
	}
	return "e.g. " + strings.Join(r.dialledTwice[:min(len(r.dialledTwice), 10)], ", ")
}

func otherSpool(m map[string]float64) string {
	var parts []string
	for _, k := range []string{"refused_full", "skipped", "dropped_corrupt"} {
		parts = append(parts, k+" "+num(m[k]))
	}
	return strings.Join(parts, ", ")
}

func orNever(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// formatCounts writes non-zero counts largest first: "completed 1700, busy 150".
func formatCounts(m map[string]int) string {
	f := make(map[string]float64, len(m))
	for k, v := range m {
		f[k] = float64(v)
	}
	return formatFloats(f)
}

// formatFloats writes non-zero values largest first, ties by name.
func formatFloats(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = `""`
		}
		parts[i] = name + " " + num(m[k])
	}
	return strings.Join(parts, ", ")
}

// num writes a counter: whole numbers without decimals.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

// tally fills the job counts from the final records (a missing record has an empty State; an
// unreadable one is absent) and the simulator's accepted calls, grouped by the job ID that
// starts their userData ("<job id>.<attempt>.<tag>").
func (r *report) tally(jobs []job, recs map[string]jobstatus.Record, calls []simCall) {
	ours := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		ours[j.id] = true
	}
	perJob := map[string]int{}
	for _, call := range calls {
		id, _, _ := strings.Cut(call.UserData, ".")
		if !ours[id] {
			r.foreignCalls++
			continue
		}
		perJob[id]++
	}
	r.simCalls = len(calls)
	for _, j := range jobs {
		rec, ok := recs[j.id]
		switch {
		case !ok:
			r.lost = append(r.lost, j.id)
			r.lostStates["unreadable"]++
		case rec.State == "":
			r.lost = append(r.lost, j.id)
			r.lostStates["no record"]++
		case !rec.State.Final():
			r.lost = append(r.lost, j.id)
			r.lostStates[string(rec.State)]++
		default:
			r.byState[string(rec.State)]++
			if rec.State != j.expect {
				r.unexpected[j.kind+" "+string(j.expect)+" → "+string(rec.State)]++
			}
			if perJob[j.id] == 0 {
				r.notDialled[string(rec.State)]++
			}
		}
		if n := perJob[j.id]; n > 1 {
			r.dialledTwice = append(r.dialledTwice, fmt.Sprintf("%s ×%d", j.id, n))
		}
		if perJob[j.id] == 0 && rec.CDR != nil {
			r.cdrWithoutCall++
		}
		dials, unrecorded := dialHistory(rec.Events)
		if dials > 1 {
			r.redialled++
		}
		if unrecorded {
			r.unrecordedAccepts++
			if perJob[j.id] > 1 {
				r.unrecordedTwice++
			}
		}
	}
}

// dialHistory reads a job's events: how many dial attempts began (dispatching events), and
// whether the outcome of the last one was first recorded by a push rather than by the worker
// that dialled (the worker died, or Redis was down, or the reply never came, between the
// provider accepting the call and the worker recording it).
func dialHistory(events []jobstatus.Event) (dials int, unrecorded bool) {
	last := -1
	for i, e := range events {
		if e.State == jobstatus.StateDispatching {
			dials, last = dials+1, i
		}
	}
	if last >= 0 && last+1 < len(events) {
		next := events[last+1]
		unrecorded = next.Source != "worker" && next.State != jobstatus.StateQueued
	}
	return dials, unrecorded
}
