package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/voicequeue/voicequeue/internal/queue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// result is what one run of the CLI produced.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the CLI in-process with the given environment (nothing from the real one) and
// stdin; stderr is not a terminal.
func runCLI(t testing.TB, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{
		getenv:     func(k string) string { return env[k] },
		stdin:      strings.NewReader(stdin),
		stdout:     &out,
		stderr:     &errb,
		isTerminal: func(io.Writer) bool { return false },
	}
	code := c.run(context.Background(), args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// fakeGateway is an httptest stand-in for cmd/gateway's producer API, written to the contract
// the CLI is built against. IDs are derived from the callee number ("j_" + its digits), so a
// test knows which ID belongs to which line whatever the order batches arrive in.
type fakeGateway struct {
	t     testing.TB
	srv   *httptest.Server
	token string // "" = no auth

	// refuse, when set, refuses an item (single or in a batch) with a field error.
	refuse func(req queue.Request) *queue.FieldError
	// failBatch, when set, decides the fate of a whole batch before it is looked at: return 0 to
	// process it, an HTTP status to answer with, or -1 to drop the connection.
	failBatch func(reqs []queue.Request) int

	requests atomic.Int64 // every request that reached the server
	mu       sync.Mutex
	jobs     map[string]fakeJob
	keys     map[string]string // idempotency key → ID
	auths    []string          // Authorization headers seen
	batches  [][]queue.Request
}

type fakeJob struct {
	Req   queue.Request
	State string
}

func newFakeGateway(t testing.TB) *fakeGateway {
	t.Helper()
	g := &fakeGateway{t: t, jobs: map[string]fakeJob{}, keys: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/jobs", g.submit)
	mux.HandleFunc("POST /v1/jobs/batch", g.batch)
	mux.HandleFunc("GET /v1/jobs/{id}", g.get)
	mux.HandleFunc("DELETE /v1/jobs/{id}", g.cancel)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		g.mu.Lock()
		g.auths = append(g.auths, r.Header.Get("Authorization"))
		g.mu.Unlock()
		if g.token != "" && r.Header.Get("Authorization") != "Bearer "+g.token {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or bad bearer token"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGateway) URL() string { return g.srv.URL }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// accept records one request. It does not validate: the CLI has done that, and the tests that
// need a refusal set refuse.
func (g *fakeGateway) accept(req queue.Request) (queue.SubmitResult, *queue.FieldError) {
	if g.refuse != nil {
		if fe := g.refuse(req); fe != nil {
			return queue.SubmitResult{}, fe
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if id, ok := g.keys[req.IdempotencyKey]; ok && req.IdempotencyKey != "" {
		return queue.SubmitResult{ID: id, State: g.jobs[id].State, Existing: true}, nil
	}
	id := "j_" + strings.TrimPrefix(req.To, "+")
	if _, dup := g.jobs[id]; dup {
		id = fmt.Sprintf("%s_%d", id, len(g.jobs))
	}
	g.jobs[id] = fakeJob{Req: req, State: "queued"}
	if req.IdempotencyKey != "" {
		g.keys[req.IdempotencyKey] = id
	}
	return queue.SubmitResult{ID: id, State: "queued"}, nil
}

func (g *fakeGateway) submit(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	req, err := queue.DecodeRequest(data)
	if err != nil {
		var fe *queue.FieldError
		errors.As(err, &fe)
		writeJSON(w, http.StatusBadRequest, fe)
		return
	}
	res, fe := g.accept(req)
	if fe != nil {
		writeJSON(w, http.StatusBadRequest, fe)
		return
	}
	status := http.StatusAccepted
	if res.Existing {
		status = http.StatusOK
	}
	writeJSON(w, status, res)
}

func (g *fakeGateway) batch(w http.ResponseWriter, r *http.Request) {
	var env struct {
		Jobs []queue.Request `json:"jobs"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || len(env.Jobs) == 0 || len(env.Jobs) > queue.MaxBatch {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad batch envelope", "field": "jobs"})
		return
	}
	g.mu.Lock()
	g.batches = append(g.batches, env.Jobs)
	g.mu.Unlock()
	if g.failBatch != nil {
		switch status := g.failBatch(env.Jobs); {
		case status == -1:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				g.t.Errorf("hijack: %v", err)
				return
			}
			_ = conn.Close()
			return
		case status != 0:
			writeJSON(w, status, map[string]string{"error": "injected failure"})
			return
		}
	}
	type item struct {
		Index    int    `json:"index"`
		ID       string `json:"id,omitempty"`
		State    string `json:"state,omitempty"`
		Existing bool   `json:"existing,omitempty"`
		Error    string `json:"error,omitempty"`
		Field    string `json:"field,omitempty"`
	}
	rep := struct {
		Accepted int    `json:"accepted"`
		Rejected int    `json:"rejected"`
		Results  []item `json:"results"`
	}{}
	for i, req := range env.Jobs {
		res, fe := g.accept(req)
		if fe != nil {
			rep.Rejected++
			rep.Results = append(rep.Results, item{Index: i, Error: fe.Message, Field: fe.Field})
			continue
		}
		rep.Accepted++
		rep.Results = append(rep.Results, item{Index: i, ID: res.ID, State: res.State, Existing: res.Existing})
	}
	writeJSON(w, http.StatusOK, rep)
}

func (g *fakeGateway) record(id string, job fakeJob) map[string]any {
	return map[string]any{"id": id, "kind": job.Req.Kind, "state": job.State, "attempts": 0,
		"events": []map[string]string{{"state": job.State}}}
}

func (g *fakeGateway) get(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	job, ok := g.jobs[r.PathValue("id")]
	g.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "job not found"})
		return
	}
	writeJSON(w, http.StatusOK, g.record(r.PathValue("id"), job))
}

func (g *fakeGateway) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g.mu.Lock()
	job, ok := g.jobs[id]
	if ok && job.State == "queued" {
		job.State = "canceled"
		g.jobs[id] = job
	}
	g.mu.Unlock()
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "job not found"})
	case job.State != "canceled":
		writeJSON(w, http.StatusConflict, map[string]string{"error": "job " + id + " already dispatched"})
	default:
		writeJSON(w, http.StatusOK, g.record(id, job))
	}
}

// setState puts a job in a state (e.g. "calling") for cancel tests.
func (g *fakeGateway) setState(id, state string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	job := g.jobs[id]
	job.State = state
	g.jobs[id] = job
}

func (g *fakeGateway) job(id string) (fakeJob, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, ok := g.jobs[id]
	return j, ok
}

func (g *fakeGateway) jobCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.jobs)
}

// number returns a valid Chinese mobile number unique to n.
func number(n int) string { return fmt.Sprintf("+86138%08d", n) }

// newStatusServer answers every request with status and a JSON error.
func newStatusServer(status int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, status, map[string]string{"error": http.StatusText(status)})
	}))
}
