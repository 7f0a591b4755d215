package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// benchLines is the size of the file of issue 7, target 4.
const benchLines = 100_000

// benchGateway answers POST /v1/jobs/batch the way cmd/gateway does ({"accepted", "rejected",
// "results": [{"index", "id", "state"}…]}) while doing as little as it can, so that a benchmark
// of the CLI measures the CLI: it counts the jobs of a body by their opening `{"kind":` and
// replies with a body built once per batch size.
type benchGateway struct {
	srv     *httptest.Server
	mu      sync.Mutex
	replies map[int][]byte
	bufs    sync.Pool
}

func newBenchGateway(tb testing.TB) *benchGateway {
	tb.Helper()
	g := &benchGateway{replies: map[int][]byte{}, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.batch))
	tb.Cleanup(g.srv.Close)
	return g
}

var kindKey = []byte(`{"kind":`)

func (g *benchGateway) batch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/jobs/batch" {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	buf := g.bufs.Get().(*bytes.Buffer)
	defer g.bufs.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(r.Body); err != nil {
		http.Error(w, `{"error":"read body"}`, http.StatusBadRequest)
		return
	}
	n := bytes.Count(buf.Bytes(), kindKey)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(g.reply(n))
}

// reply is the gateway's answer to a batch of n good jobs.
func (g *benchGateway) reply(n int) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.replies[n]; ok {
		return b
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"accepted":%d,"rejected":0,"results":[`, n)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"index":%d,"id":"j_%020d","state":"queued"}`, i, i)
	}
	b.WriteString("]}\n")
	g.replies[n] = b.Bytes()
	return g.replies[n]
}

// benchFile writes the 100,000-line file of `make bench` (notify jobs with a template and two
// parameters, all good) in the given format.
func benchFile(tb testing.TB, f fileFormat) string {
	tb.Helper()
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if f == formatCSV {
		w.WriteString("kind,to,template_id,template_params\n")
	}
	for i := range benchLines {
		to := fmt.Sprintf("+86139%07d1", 3_000_000+i)
		if f == formatCSV {
			fmt.Fprintf(w, "notify,%s,tpl_arrears,42.50|2026/12/01\n", to)
		} else {
			fmt.Fprintf(w, `{"kind":"notify","to":%q,"template_id":"tpl_arrears","template_params":["42.50","2026/12/01"]}`+"\n", to)
		}
	}
	_ = w.Flush()
	return writeFile(tb, "jobs."+string(f), b.Bytes())
}

// BenchmarkFileCommand runs `enqueue file PATH --api URL --progress` in-process on a
// 100,000-line file against benchGateway: the CLI's own CPU per line (parse, validate, encode,
// send, decode the reply, progress bar), which `make bench` shares with the gateway and Redis.
//
//	go test -run '^$' -bench FileCommand -benchtime 3x -cpuprofile cpu.out -memprofile mem.out ./cmd/enqueue/
func BenchmarkFileCommand(b *testing.B) {
	for _, f := range []fileFormat{formatCSV, formatJSONL} {
		b.Run(string(f), func(b *testing.B) {
			g := newBenchGateway(b)
			path := benchFile(b, f)
			want := fmt.Sprintf("submitted %d, rejected 0", benchLines)
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				var errb strings.Builder
				c := &cli{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: io.Discard,
					stderr: &errb, isTerminal: func(io.Writer) bool { return false }}
				code := c.run(context.Background(), []string{"file", path, "--api", g.srv.URL, "--progress"})
				if code != exitOK || !strings.Contains(errb.String(), want) {
					b.Fatalf("exit %d: %s", code, tail(errb.String(), 500))
				}
			}
			cpu := processCPU() - cpu0
			perLine := float64(b.Elapsed().Nanoseconds()) / float64(b.N*benchLines)
			b.ReportMetric(perLine, "ns/line")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*benchLines), "cpu-ns/line")
			b.ReportMetric(1e9/perLine, "lines/s")
		})
	}
}

// processCPU is the CPU time (user and system) the process has used so far; the benchmark
// gateway's share is small, since it does no work per job.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
