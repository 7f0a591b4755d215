package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// writeFile writes data to name in a fresh directory and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var summaryRe = regexp.MustCompile(`(?m)^submitted (\d+), rejected (\d+)(?:, not submitted (\d+))?`)

// summaryOf parses the summary line.
func summaryOf(t *testing.T, stderr string) (submitted, rejected, unsent int) {
	t.Helper()
	m := summaryRe.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary in stderr:\n%s", stderr)
	}
	submitted, _ = strconv.Atoi(m[1])
	rejected, _ = strconv.Atoi(m[2])
	unsent, _ = strconv.Atoi(m[3])
	return submitted, rejected, unsent
}

var lineErrRe = regexp.MustCompile(`(?m)^line (\d+): ([a-z_\[\]0-9.]+): (.+)$`)

// lineErrors returns the "line N: FIELD: message" reports by line.
func lineErrors(stderr string) map[int]string {
	out := map[int]string{}
	for _, m := range lineErrRe.FindAllStringSubmatch(stderr, -1) {
		n, _ := strconv.Atoi(m[1])
		out[n] = m[2] + ": " + m[3]
	}
	return out
}

func TestFileMixedResults(t *testing.T) {
	t.Parallel()
	const n = 1300 // a batch of 1,000 and one of 300
	for _, f := range []fileFormat{formatJSONL, formatCSV} {
		t.Run(string(f), func(t *testing.T) {
			t.Parallel()
			g := newFakeGateway(t)
			// The server refuses what the client can't know about: every 250th number.
			g.refuse = func(r queue.Request) *queue.FieldError {
				if k, _ := strconv.Atoi(r.To[len(r.To)-4:]); k%250 == 0 {
					return &queue.FieldError{Field: "to", Message: "on the do-not-call list"}
				}
				return nil
			}
			data := genFile(n, f) // every 100th line has a bad number
			path := writeFile(t, "jobs."+string(f), data)
			r := runCLI(t, nil, "", "file", path, "--ids", "--api", g.URL())
			if r.code != exitBadInput {
				t.Fatalf("exit %d, want 2 (lines rejected); stderr:\n%s", r.code, r.stderr)
			}
			offset := 0 // file line of job i is i+offset
			if f == formatCSV {
				offset = 1
			}
			errs := lineErrors(r.stderr)
			var wantIDs []string
			for i := 1; i <= n; i++ {
				line := i + offset
				switch {
				case i%100 == 0:
					if !strings.HasPrefix(errs[line], "to: not a valid phone number") {
						t.Errorf("line %d: reported %q, want the bad number", line, errs[line])
					}
				case i%250 == 0: // 250, 750, 1250
					if errs[line] != "to: on the do-not-call list" {
						t.Errorf("line %d: reported %q, want the server's refusal", line, errs[line])
					}
				default:
					if e, ok := errs[line]; ok {
						t.Errorf("line %d: unexpected report %q", line, e)
					}
					wantIDs = append(wantIDs, "j_"+strings.TrimPrefix(number(i), "+"))
				}
			}
			wantRejected := n/100 + 3
			sub, rej, unsent := summaryOf(t, r.stderr)
			if sub != len(wantIDs) || rej != wantRejected || unsent != 0 {
				t.Errorf("summary submitted %d rejected %d unsent %d, want %d, %d, 0", sub, rej, unsent, len(wantIDs), wantRejected)
			}
			if got := strings.Fields(r.stdout); strings.Join(got, " ") != strings.Join(wantIDs, " ") {
				t.Errorf("stdout has %d IDs, want %d in file order", len(got), len(wantIDs))
			}
			for _, b := range g.batches {
				if len(b) > queue.MaxBatch {
					t.Errorf("a batch of %d jobs", len(b))
				}
				for _, req := range b {
					if req.Bulk == nil || !*req.Bulk {
						t.Fatalf("notify job sent without bulk=true: %+v", req)
					}
				}
			}
		})
	}
}

func TestFileAllGood(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	var b bytes.Buffer
	b.WriteString("kind,to,template_id,template_params,bulk,code,from\n")
	b.WriteString("notify,+8613800000001,T1,a|b,false,,\n")
	b.WriteString("verify,13800000002,,,,1234,\n")
	b.WriteString("click2call,+8613800000003,,,,,+8613800000004\n")
	path := writeFile(t, "jobs.csv", b.Bytes())
	r := runCLI(t, nil, "", "file", "--api", g.URL(), path)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q without --ids, want nothing", r.stdout)
	}
	if sub, rej, _ := summaryOf(t, r.stderr); sub != 3 || rej != 0 {
		t.Errorf("summary %d/%d:\n%s", sub, rej, r.stderr)
	}
	notify, _ := g.job("j_8613800000001")
	if notify.Req.Bulk == nil || *notify.Req.Bulk {
		t.Errorf("bulk=false on the line was not kept: %+v", notify.Req)
	}
	if v, ok := g.job("j_8613800000002"); !ok || v.Req.Code != "1234" || v.Req.Bulk != nil {
		t.Errorf("verify job %+v (ok %v)", v.Req, ok)
	}
}

func TestFileFromStdin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input string
		args        []string
	}{
		{"jsonl sniffed", `{"kind":"verify","to":"+8613800000001"}` + "\n", nil},
		{"csv sniffed", "kind,to\nverify,+8613800000001\n", nil},
		{"format given", "kind,to\nverify,+8613800000001\n", []string{"--format", "csv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newFakeGateway(t)
			args := append([]string{"file", "-", "--ids", "--api", g.URL()}, tt.args...)
			r := runCLI(t, nil, tt.input, args...)
			if r.code != 0 || r.stdout != "j_8613800000001\n" {
				t.Fatalf("exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestFileHeaderErrorAndEmptyFile(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	r := runCLI(t, nil, "", "file", writeFile(t, "x.csv", []byte("kind,to,colour\nverify,+8613800000001,red\n")), "--api", g.URL())
	if r.code != exitBadInput || !strings.Contains(r.stderr, `enqueue: line 1: header: unknown column "colour"`) {
		t.Errorf("exit %d stderr %s", r.code, r.stderr)
	}
	r = runCLI(t, nil, "", "file", writeFile(t, "x.jsonl", nil), "--api", g.URL())
	if r.code != 0 || !strings.Contains(r.stderr, "submitted 0, rejected 0") {
		t.Errorf("empty file: exit %d stderr %s", r.code, r.stderr)
	}
	if n := g.requests.Load(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// unsentLines reads the ranges reported as not submitted.
func unsentLines(t *testing.T, stderr string, lastLine int) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	for _, m := range regexp.MustCompile(`(?m)^enqueue: (?:lines (\d+)-(\d+)|line (\d+)|lines from (\d+) on) not submitted`).FindAllStringSubmatch(stderr, -1) {
		var from, to int
		switch {
		case m[1] != "":
			from, _ = strconv.Atoi(m[1])
			to, _ = strconv.Atoi(m[2])
		case m[3] != "":
			from, _ = strconv.Atoi(m[3])
			to = from
		default:
			from, _ = strconv.Atoi(m[4])
			to = lastLine
		}
		for l := from; l <= to; l++ {
			out[l] = true
		}
	}
	return out
}

// TestFileBatchFailures: a batch that fails as a whole is reported by line range, nothing is
// submitted silently half-way, and the exit status is 1. Every line ends up in exactly one of:
// submitted (the gateway has it), reported bad, or inside a range reported as not submitted.
func TestFileBatchFailures(t *testing.T) {
	t.Parallel()
	const n = 1000 // in batches of 125; every 100th line is bad
	tests := []struct {
		name      string
		token     string
		failBatch func(reqs []queue.Request) int
		wantErr   string
		// with one batch in flight the outcome is exact:
		wantFailed string // the failed batch's range (its good lines)
		wantFrom   int    // "lines from N on not submitted"
	}{
		{"unauthorized", "s3cret", nil, "HTTP 401", "lines 1-125", 126},
		{"server error on the third batch", "", failWhenHolding(number(251), http.StatusInternalServerError), "HTTP 500", "lines 251-375", 376},
		{"connection dropped on the second batch", "", failWhenHolding(number(126), -1), "not confirmed", "lines 126-250", 251},
		{"bad reply envelope on the last batch", "", failWhenHolding(number(876), http.StatusBadRequest), "HTTP 400", "lines 876-999", 0},
	}
	for _, tt := range tests {
		for _, inFlight := range []string{"1", "4"} {
			t.Run(tt.name+"/concurrency "+inFlight, func(t *testing.T) {
				t.Parallel()
				g := newFakeGateway(t)
				g.token = tt.token
				g.failBatch = tt.failBatch
				path := writeFile(t, "jobs.jsonl", genFile(n, formatJSONL))
				r := runCLI(t, nil, "", "file", path, "--api", g.URL(), "--batch-size", "125", "--concurrency", inFlight, "--timeout", "10m")
				if r.code != exitFailure {
					t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
				}
				if !strings.Contains(r.stderr, tt.wantErr) {
					t.Errorf("stderr does not say %q:\n%s", tt.wantErr, r.stderr)
				}
				if inFlight == "1" {
					if !strings.Contains(r.stderr, "enqueue: "+tt.wantFailed+" not submitted") {
						t.Errorf("stderr does not report %s:\n%s", tt.wantFailed, r.stderr)
					}
					if tt.wantFrom != 0 && !strings.Contains(r.stderr, fmt.Sprintf("enqueue: lines from %d on not submitted (stopped after the error above)", tt.wantFrom)) {
						t.Errorf("stderr does not report lines from %d on:\n%s", tt.wantFrom, r.stderr)
					}
				}
				unsent := unsentLines(t, r.stderr, n)
				if len(unsent) == 0 {
					t.Fatalf("no line range reported as not submitted:\n%s", r.stderr)
				}
				bad := lineErrors(r.stderr)
				submitted := 0
				for i := 1; i <= n; i++ {
					_, atGateway := g.job("j_" + strings.TrimPrefix(number(i), "+"))
					_, reported := bad[i]
					if atGateway {
						submitted++
					}
					if i%100 == 0 { // a bad line: reported, or never validated because not sent
						if atGateway || !reported && !unsent[i] {
							t.Errorf("bad line %d: at gateway %v, reported %v, in an unsent range %v", i, atGateway, reported, unsent[i])
						}
						continue
					}
					if atGateway == unsent[i] {
						t.Fatalf("line %d: at the gateway %v, reported not submitted %v\n%s", i, atGateway, unsent[i], r.stderr)
					}
				}
				sub, _, notSent := summaryOf(t, r.stderr)
				if sub != submitted || notSent == 0 {
					t.Errorf("summary submitted %d (gateway has %d), not submitted %d", sub, submitted, notSent)
				}
			})
		}
	}
}

// failWhenHolding fails a batch that holds the number with status (-1: drop the connection).
func failWhenHolding(num string, status int) func([]queue.Request) int {
	return func(reqs []queue.Request) int {
		for _, r := range reqs {
			if r.To == num {
				return status
			}
		}
		return 0
	}
}

func TestFileRerunWithKeyPrefixIsSafe(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	path := writeFile(t, "jobs.jsonl", genFile(150, formatJSONL))
	first := runCLI(t, nil, "", "file", path, "--idempotency-key", "campaign-7", "--ids", "--api", g.URL())
	second := runCLI(t, nil, "", "file", path, "--idempotency-key", "campaign-7", "--ids", "--api", g.URL())
	if first.code != exitBadInput || second.code != exitBadInput { // line 100 is bad
		t.Fatalf("exits %d, %d", first.code, second.code)
	}
	if first.stdout != second.stdout || g.jobCount() != 149 {
		t.Errorf("rerun made new jobs: %d jobs", g.jobCount())
	}
	if !strings.Contains(second.stderr, "149 already existed") {
		t.Errorf("summary does not count existing jobs:\n%s", second.stderr)
	}
	job, _ := g.job("j_8613800000042")
	if job.Req.IdempotencyKey != "campaign-7-42" {
		t.Errorf("idempotency key %q, want campaign-7-42", job.Req.IdempotencyKey)
	}
}

func TestFileProgress(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	path := writeFile(t, "jobs.csv", genFile(100, formatCSV))
	tests := []struct {
		name    string
		args    []string
		stdin   string
		tty     bool
		wantBar bool
	}{
		{"hidden when stderr is not a terminal", []string{path}, "", false, false},
		{"forced", []string{path, "--progress"}, "", false, true},
		{"shown on a terminal", []string{path}, "", true, true},
		{"hidden on a terminal when asked", []string{path, "--progress=false"}, "", true, false},
		{"stdin: a count without a total", []string{"-", "--progress"}, string(genFile(100, formatJSONL)), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			c := &cli{getenv: func(string) string { return "" }, stdin: strings.NewReader(tt.stdin), stdout: &out, stderr: &errb,
				isTerminal: func(io.Writer) bool { return tt.tty }}
			code := c.run(context.Background(), append([]string{"file", "--ids", "--api", g.URL()}, tt.args...))
			if code != exitBadInput { // the 100th job is bad
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if got := strings.Contains(errb.String(), "submitting"); got != tt.wantBar {
				t.Errorf("progress bar shown %v, want %v:\n%q", got, tt.wantBar, errb.String())
			}
			if len(strings.Fields(out.String())) != 99 || strings.Contains(out.String(), "submitting") {
				t.Errorf("stdout is not just the 99 IDs:\n%q", out.String())
			}
		})
	}
}

// TestFileInterrupted: when the context ends (Ctrl-C) mid-file, the batch in flight and the
// rest of the file are reported as not submitted, and the exit status is 1.
func TestFileInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var batches atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Jobs []queue.Request `json:"jobs"`
		}
		_ = json.NewDecoder(r.Body).Decode(&env)
		if batches.Add(1) == 2 {
			cancel()
			<-r.Context().Done() // the client gives up
			return
		}
		res := make([]queue.BatchItem, len(env.Jobs))
		for i, j := range env.Jobs {
			res[i] = queue.BatchItem{Index: i, ID: "j_" + j.To[1:], State: "queued"}
		}
		writeJSON(w, http.StatusOK, map[string]any{"accepted": len(res), "results": res})
	}))
	t.Cleanup(srv.Close)
	path := writeFile(t, "jobs.jsonl", genFile(500, formatJSONL))
	var out, errb bytes.Buffer
	c := &cli{getenv: func(string) string { return "" }, stdout: &out, stderr: &errb, isTerminal: func(io.Writer) bool { return false }}
	code := c.run(ctx, []string{"file", path, "--api", srv.URL, "--batch-size", "100", "--concurrency", "1"})
	if code != exitFailure {
		t.Fatalf("exit %d, want 1:\n%s", code, errb.String())
	}
	for _, want := range []string{"enqueue: lines 101-199 not submitted", "context canceled", "enqueue: lines from 201 on not submitted (interrupted: context canceled)",
		"submitted 99, rejected 2, not submitted 199 and the rest of the file"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr does not contain %q:\n%s", want, errb.String())
		}
	}
}

// TestOrderItems: a batch reply must account for each job exactly once.
func TestOrderItems(t *testing.T) {
	t.Parallel()
	ok := func(i int) queue.BatchItem {
		return queue.BatchItem{Index: i, ID: fmt.Sprintf("j_%d", i), State: "queued"}
	}
	tests := []struct {
		name    string
		items   []queue.BatchItem
		wantErr bool
	}{
		{"in order", []queue.BatchItem{ok(0), ok(1), ok(2)}, false},
		{"out of order", []queue.BatchItem{ok(2), {Index: 0, Error: "x", Field: "to"}, ok(1)}, false},
		{"missing", []queue.BatchItem{ok(0), ok(2)}, true},
		{"repeated", []queue.BatchItem{ok(0), ok(0), ok(1)}, true},
		{"out of range", []queue.BatchItem{ok(0), ok(1), ok(3)}, true},
		{"negative", []queue.BatchItem{ok(-1), ok(1), ok(2)}, true},
		{"extra", []queue.BatchItem{ok(0), ok(1), ok(2), ok(3)}, true},
		{"neither ID nor error", []queue.BatchItem{ok(0), {Index: 1}, ok(2)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := orderItems(tt.items, 3)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			for i, it := range got {
				if it.Index != i {
					t.Errorf("item %d has index %d", i, it.Index)
				}
			}
		})
	}
}

// TestFileBadBatchReply: a reply that does not account for every job fails that batch, by range.
func TestFileBadBatchReply(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"accepted": 1, "results": []map[string]any{{"index": 0, "id": "j_1", "state": "queued"}}})
	}))
	t.Cleanup(srv.Close)
	input := "kind,to\nverify,+8613800000001\nverify,+8613800000002\n"
	r := runCLI(t, nil, input, "file", "-", "--api", srv.URL)
	if r.code != exitFailure || !strings.Contains(r.stderr, "enqueue: lines 2-3 not submitted: submit batch: the reply has 1 results for 2 jobs") {
		t.Errorf("exit %d stderr:\n%s", r.code, r.stderr)
	}
}

// BenchmarkFileSubmit pushes 100,000 generated lines through `enqueue file` against a minimal
// gateway that accepts everything: the CLI's own ceiling in jobs per second (parse, validate,
// encode, send, decode), before any real gateway or Redis cost.
func BenchmarkFileSubmit(b *testing.B) {
	const lines = 100_000
	var seq atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Jobs []json.RawMessage `json:"jobs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res := make([]queue.BatchItem, len(env.Jobs))
		for i := range res {
			res[i] = queue.BatchItem{Index: i, ID: "j_" + strconv.FormatInt(seq.Add(1), 10), State: "queued"}
		}
		writeJSON(w, http.StatusOK, map[string]any{"accepted": len(res), "results": res})
	}))
	b.Cleanup(srv.Close)
	path := writeFile(b, "jobs.jsonl", genFile(lines, formatJSONL))
	for b.Loop() {
		r := runCLI(b, nil, "", "file", path, "--api", srv.URL)
		if r.code != exitBadInput { // 1% bad lines
			b.Fatalf("exit %d: %s", r.code, r.stderr[max(0, len(r.stderr)-500):])
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestFileManySmallBatches sends a file in many small batches, so that every batch is recycled
// many times (batchPool) while four are in flight: each line must reach the gateway exactly as
// written, with nothing left over from the lines a recycled batch held before; bad lines come
// out once each, in file order, and the IDs in file order.
func TestFileManySmallBatches(t *testing.T) {
	t.Parallel()
	const n = 2000
	g := newFakeGateway(t)
	var data bytes.Buffer
	want := map[int]queue.Request{} // good lines
	for i := 1; i <= n; i++ {
		var req queue.Request
		switch i % 3 {
		case 0:
			req = queue.Request{Kind: "verify", To: number(i), Code: strconv.Itoa(1000 + i%9000)}
		case 1:
			req = queue.Request{Kind: "notify", To: number(i), TemplateID: "T" + strconv.Itoa(i%5),
				TemplateParams: []string{strconv.Itoa(i)}, CallbackURL: "https://example.com/cb/" + strconv.Itoa(i)}
		default:
			req = queue.Request{Kind: "click2call", To: number(i), From: number(n + i), Record: i%2 == 0, MaxDurationMinutes: i % 60}
		}
		if i%37 == 0 {
			req.To = "12345"
		}
		line, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		data.Write(append(line, '\n'))
		if i%37 != 0 {
			if req.Kind == "notify" {
				req.Bulk = ptr(true)
			}
			want[i] = req
		}
	}
	path := writeFile(t, "jobs.jsonl", data.Bytes())
	r := runCLI(t, nil, "", "file", path, "--ids", "--api", g.URL(), "--batch-size", "7", "--concurrency", "4")
	if r.code != exitBadInput {
		t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, tail(r.stderr, 2000))
	}
	last := 0
	for _, m := range lineErrRe.FindAllStringSubmatch(r.stderr, -1) {
		line, _ := strconv.Atoi(m[1])
		if line <= last || line%37 != 0 || m[2] != "to" {
			t.Errorf("after line %d: report %q", last, m[0])
		}
		last = line
	}
	if last != n/37*37 {
		t.Errorf("the last bad line reported is %d, want %d", last, n/37*37)
	}
	var wantIDs []string
	for i := 1; i <= n; i++ {
		req, good := want[i]
		if !good {
			continue
		}
		id := "j_" + strings.TrimPrefix(req.To, "+")
		wantIDs = append(wantIDs, id)
		job, ok := g.job(id)
		if !ok {
			t.Errorf("line %d did not reach the gateway", i)
			continue
		}
		if !reflect.DeepEqual(job.Req, req) {
			t.Errorf("line %d reached the gateway as\n%+v\nwant\n%+v", i, job.Req, req)
		}
	}
	if got := strings.Fields(r.stdout); !slices.Equal(got, wantIDs) {
		t.Errorf("stdout has %d IDs, want %d in file order", len(got), len(wantIDs))
	}
	if sub, rej, unsent := summaryOf(t, r.stderr); sub != len(want) || rej != n/37 || unsent != 0 || g.jobCount() != len(want) {
		t.Errorf("summary submitted %d, rejected %d, not submitted %d; the gateway has %d jobs; want %d, %d, 0, %d",
			sub, rej, unsent, g.jobCount(), len(want), n/37, len(want))
	}
}

// TestBatchPool: a batch comes back empty, keeps its capacity and holds no reference to what
// it carried; the pool keeps at most its size and allocates when empty.
func TestBatchPool(t *testing.T) {
	t.Parallel()
	p := newBatchPool(3, 1)
	b := p.get(0)
	b.recs = append(b.recs, record{Line: 7, Req: queue.Request{To: "+8613800000001"}})
	b.reqs = append(b.reqs, queue.Request{To: "+8613800000001"})
	b.sent = append(b.sent, 0)
	p.put(b)
	p.put(&batch{}) // beyond the pool's size: dropped
	again := p.get(5)
	if again != b || again.seq != 5 || len(again.recs)+len(again.reqs)+len(again.sent) != 0 || cap(again.recs) != 3 {
		t.Fatalf("got batch %p seq %d with %d/%d/%d items (cap %d), want %p seq 5, empty, cap 3",
			again, again.seq, len(again.recs), len(again.reqs), len(again.sent), cap(again.recs), b)
	}
	if !reflect.DeepEqual(again.recs[:1][0], record{}) || !reflect.DeepEqual(again.reqs[:1][0], queue.Request{}) {
		t.Errorf("a recycled batch still holds %+v, %+v", again.recs[:1][0], again.reqs[:1][0])
	}
	if fresh := p.get(6); fresh == b || cap(fresh.reqs) != 3 {
		t.Errorf("an empty pool returned %p with capacity %d, want a new batch of 3", fresh, cap(fresh.reqs))
	}
}
