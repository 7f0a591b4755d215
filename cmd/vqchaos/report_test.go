package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
)

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	text := `# HELP voicequeue_spool_pushes_total Pushes through the local spool.
# TYPE voicequeue_spool_pushes_total counter
voicequeue_spool_pushes_total{kind="fee",result="replayed"} 3
voicequeue_spool_pushes_total{kind="status",result="replayed"} 12
voicequeue_spool_pushes_total{kind="status",result="spooled"} 15
voicequeue_breaker_rejections_total 4.5e+01
weird{a="x\"y\\z",b="line\nbreak"} 1
broken{a="unterminated} 2
novalue{a="b"}
`
	ss, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"sum with a label", ss.sum("voicequeue_spool_pushes_total", map[string]string{"result": "replayed"}), 15},
		{"sum of all series", ss.sum("voicequeue_spool_pushes_total", nil), 30},
		{"no labels, exponent", ss.sum("voicequeue_breaker_rejections_total", nil), 45},
		{"escaped label values", ss.sum("weird", map[string]string{"a": `x"y\z`, "b": "line\nbreak"}), 1},
		{"unterminated label skipped", ss.sum("broken", nil), 0},
		{"line without a value skipped", ss.sum("novalue", nil), 0},
		{"absent metric", ss.sum("nothing", nil), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if by := ss.by("voicequeue_spool_pushes_total", "result"); by["replayed"] != 15 || by["spooled"] != 15 || len(by) != 2 {
		t.Errorf("by result: %v", by)
	}
}

func TestCounterBookSumsEveryProcess(t *testing.T) {
	t.Parallel()
	open := func(v float64) samples {
		return samples{{name: "voicequeue_breaker_transitions_total", labels: map[string]string{"to": "open"}, value: v}}
	}
	b := newCounterBook()
	b.update(1, open(1))
	b.update(2, open(2))
	b.update(1, open(3)) // a later scrape of the same process replaces the earlier one
	b.end(1)             // worker 1 killed: its last scrape is kept
	b.update(1, open(1)) // its successor starts from zero
	b.end(3)             // ending a slot never scraped changes nothing
	if got := b.all().sum("voicequeue_breaker_transitions_total", nil); got != 6 {
		t.Errorf("total %v, want 6 (3 from the killed worker, 1 from its successor, 2 from worker 2)", got)
	}
	if got := b.processes(); got != 3 {
		t.Errorf("%d processes, want 3", got)
	}
}

func TestTally(t *testing.T) {
	t.Parallel()
	ev := func(pairs ...string) []jobstatus.Event {
		var out []jobstatus.Event
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, jobstatus.Event{State: jobstatus.State(pairs[i]), Source: pairs[i+1]})
		}
		return out
	}
	jobs := []job{
		{id: "j_ok", kind: "verify", expect: jobstatus.StateCompleted},
		{id: "j_busy", kind: "notify", expect: jobstatus.StateBusy},
		{id: "j_twice", kind: "notify", expect: jobstatus.StateCompleted},
		{id: "j_stuck", kind: "notify", expect: jobstatus.StateCompleted},
		{id: "j_gone", kind: "verify", expect: jobstatus.StateCompleted},
		{id: "j_unread", kind: "verify", expect: jobstatus.StateCompleted},
		{id: "j_guard", kind: "verify", expect: jobstatus.StateCompleted},
		{id: "j_unknown", kind: "click2call", expect: jobstatus.StateCompleted},
	}
	recs := map[string]jobstatus.Record{
		"j_ok":      {ID: "j_ok", State: jobstatus.StateCompleted, Events: ev("queued", "api", "dispatching", "worker", "calling", "worker", "completed", "status_push")},
		"j_busy":    {ID: "j_busy", State: jobstatus.StateBusy, Events: ev("queued", "api", "dispatching", "worker", "queued", "worker", "dispatching", "worker", "calling", "worker", "busy", "status_push")},
		"j_twice":   {ID: "j_twice", State: jobstatus.StateCompleted},
		"j_stuck":   {ID: "j_stuck", State: jobstatus.StateQueued},
		"j_gone":    {ID: "j_gone"},
		"j_guard":   {ID: "j_guard", State: jobstatus.StateCompleted, Events: ev("queued", "api", "dispatching", "worker", "calling", "status_push", "completed", "status_push")},
		"j_unknown": {ID: "j_unknown", State: jobstatus.StateUnknown, Events: ev("queued", "api", "dispatching", "worker", "unknown", "worker")},
	}
	calls := []simCall{
		{UserData: "j_ok.1.tag"}, {UserData: "j_busy.2.tag"}, {UserData: "j_twice.1.tag"}, {UserData: "j_twice.2.tag"},
		{UserData: "j_guard.1.tag"}, {UserData: "j_other.1.tag"}, {UserData: ""},
	}
	r := &report{byState: map[string]int{}, unexpected: map[string]int{}, lostStates: map[string]int{}, notDialled: map[string]int{}}
	r.tally(jobs, recs, calls)

	if want := []string{"j_stuck", "j_gone", "j_unread"}; !slices.Equal(r.lost, want) {
		t.Errorf("lost %v, want %v", r.lost, want)
	}
	if r.lostStates["queued"] != 1 || r.lostStates["no record"] != 1 || r.lostStates["unreadable"] != 1 {
		t.Errorf("lost states %v", r.lostStates)
	}
	if want := []string{"j_twice ×2"}; !slices.Equal(r.dialledTwice, want) {
		t.Errorf("dialled twice %v, want %v", r.dialledTwice, want)
	}
	if r.byState["completed"] != 3 || r.byState["busy"] != 1 || r.byState["unknown"] != 1 {
		t.Errorf("by state %v", r.byState)
	}
	if r.unexpected["click2call completed → unknown"] != 1 || len(r.unexpected) != 1 {
		t.Errorf("unexpected %v", r.unexpected)
	}
	if r.notDialled["unknown"] != 1 || len(r.notDialled) != 1 {
		t.Errorf("not dialled %v", r.notDialled)
	}
	if r.foreignCalls != 2 || r.simCalls != 7 {
		t.Errorf("foreign %d of %d calls, want 2 of 7", r.foreignCalls, r.simCalls)
	}
	if r.redialled != 1 || r.unrecordedAccepts != 1 || r.unrecordedTwice != 0 {
		t.Errorf("redialled %d, unrecorded %d (twice %d), want 1, 1, 0", r.redialled, r.unrecordedAccepts, r.unrecordedTwice)
	}
	r.jobs, r.submitted = len(jobs), len(jobs)
	if r.passed() {
		t.Error("a run with lost jobs and a double dial passed")
	}
}

func TestPassed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    report
		want bool
	}{
		{"clean", report{jobs: 5, submitted: 5}, true},
		{"lost", report{jobs: 5, submitted: 5, lost: []string{"j_a"}}, false},
		{"dialled twice", report{jobs: 5, submitted: 5, dialledTwice: []string{"j_a ×2"}}, false},
		{"not all submitted", report{jobs: 5, submitted: 4}, false},
		{"refused at submission", report{jobs: 5, submitted: 5, rejected: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.passed(); got != tt.want {
				t.Errorf("passed() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJobSpec(t *testing.T) {
	t.Parallel()
	kinds, expect, suffixes := map[string]int{}, map[jobstatus.State]int{}, map[string]int{}
	seen := map[string]bool{}
	for i := range 2000 {
		spec, j := jobSpec(i, 7)
		kinds[j.kind]++
		expect[j.expect]++
		to := spec["to"].(string)
		suffixes[to[len(to)-4:]]++
		if spec["kind"] != j.kind || len(to) != len("+8613900000000") {
			t.Fatalf("job %d: %v", i, spec)
		}
		key := spec["idempotency_key"].(string)
		if seen[key] {
			t.Fatalf("idempotency key %s twice", key)
		}
		seen[key] = true
	}
	if kinds["verify"] != 600 || kinds["notify"] != 1000 || kinds["click2call"] != 400 {
		t.Errorf("kinds %v", kinds)
	}
	if expect[jobstatus.StateBusy] != 150 || expect[jobstatus.StateNoAnswer] != 100 {
		t.Errorf("expected states %v", expect)
	}
	if suffixes["0408"] != 40 || suffixes["0503"] != 40 || suffixes["0404"] != 0 {
		t.Errorf("scripted suffixes %v", suffixes)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*options)
		want string
	}{
		{"defaults", func(*options) {}, ""},
		{"no jobs", func(o *options) { o.jobs = 0 }, "--jobs"},
		{"kills too often", func(o *options) { o.killEvery = time.Millisecond }, "--kill-every"},
		{"bad outage mode", func(o *options) { o.outageMode = "drop" }, "--outage-mode"},
		{"outage past the fault phase", func(o *options) { o.outageAt = 55 * time.Second }, "within --chaos"},
		{"error rate of one", func(o *options) { o.errorRate = 1 }, "--provider-error-rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultOptions()
			tt.mod(&o)
			err := o.validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestPrintNamesEveryFigure(t *testing.T) {
	t.Parallel()
	r := &report{jobs: 2, workers: 3, submitted: 2, byState: map[string]int{"completed": 2},
		spool: map[string]float64{"spooled": 4, "replayed": 4}, breaker: map[string]float64{"open": 1, "closed": 1}}
	var out bytes.Buffer
	r.print(&out)
	for _, want := range []string{"jobs submitted         2", "jobs ended by state    completed 2", "jobs lost              0",
		"jobs dialled twice     0", "pushes spooled         4 (replayed 4", "breaker transitions    closed 1, open 1", "PASS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
