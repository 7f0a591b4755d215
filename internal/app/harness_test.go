package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/testredis"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
	"github.com/voicequeue/voicequeue/internal/webhook"
)

// harness runs the whole product for end-to-end tests: the simulator, the gateway and the worker
// on the real Redis (a database of the test's own), all on loopback.
type harness struct {
	t        *testing.T
	mr       *miniredis.Miniredis // set when the harness runs on miniredis
	rdb      redis.UniversalClient
	sim      *voicesim.Simulator
	api      string // gateway base URL
	token    string
	cfg      *app.Config
	hooks    *hookRecorder
	logs     *syncBuffer
	registry *prometheus.Registry
	// stopWorker shuts the worker down gracefully (as SIGTERM does) and waits for it.
	stopWorker func()
}

type harnessOptions struct {
	simConfig func(*voicesim.Config)
	cfg       func(*app.Config)
	mini      bool // miniredis instead of the real Redis
	// rdb, when set, is used instead of the real Redis (e.g. a Redis Cluster client); the caller
	// owns it and closes it.
	rdb redis.UniversalClient
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	var rdb redis.UniversalClient
	var mr *miniredis.Miniredis
	switch {
	case o.rdb != nil:
		rdb = o.rdb
	case o.mini:
		mr, rdb = testredis.Mini(t)
	default:
		_, rdb = testredis.Real(t)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	simCfg := voicesim.Config{AppKey: "e2e-app-key", AppSecret: "e2e-app-secret-0123456789", Speed: 40, Logger: log.With("component", "voicesim")}
	if o.simConfig != nil {
		o.simConfig(&simCfg)
	}
	sim, err := voicesim.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim.Handler())

	hooks := newHookRecorder()
	cfg := &app.Config{
		RedisURL: testredis.URL(), ProviderURL: simSrv.URL, AppKey: simCfg.AppKey, AppSecret: simCfg.AppSecret,
		DisplayNumber: "+8675500000001", PushSecret: "e2ePushSecret0123456789",
		APITokens: "e2e-producer-token-0123456789", DefaultRegion: "CN",
		Concurrency: 10, MaxAttempts: 3, Retention: time.Hour, ShutdownTimeout: 5 * time.Second,
		ProviderTimeout: 2 * time.Second, RateBackoff: 200 * time.Millisecond, DialResolve: 3 * time.Second,
		VerifyPreTone: "verify_pre.wav", VerifyTimes: 2, CodeLength: 6,
		CallbackAllow:     "127.0.0.1/32",
		SpoolDir:          t.TempDir(),
		TaskCheckInterval: 20 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond,
	}
	if o.cfg != nil {
		o.cfg(cfg)
	}
	reg := app.NewRegistry()
	m := app.NewMetrics(reg)
	deps := app.Deps{Redis: rdb, Registry: reg, Logger: log}

	gwSrv := httptest.NewUnstartedServer(nil)
	gwSrv.Start()
	cfg.PushBaseURL = gwSrv.URL
	gw, err := app.NewGateway(cfg, deps, m, false)
	if err != nil {
		t.Fatal(err)
	}
	gwSrv.Config.Handler = gw.Handler

	wk, err := app.NewWorker(cfg, deps, m, app.WorkerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	gwDone := make(chan struct{})
	go func() { gw.Run(ctx); close(gwDone) }()
	wctx, wcancel := context.WithCancel(ctx)
	go func() { done <- wk.Run(wctx) }()
	var stopOnce sync.Once
	var werr error
	stopWorker := func() { stopOnce.Do(func() { wcancel(); werr = <-done }) }
	t.Cleanup(func() {
		cancel()
		stopWorker()
		if werr != nil {
			t.Errorf("worker: %v", werr)
		}
		<-gwDone
		gwSrv.Close()
		_ = sim.Close()
		simSrv.Close()
		hooks.close()
		checkLogsLeakNothing(t, logs.String(), cfg)
	})
	return &harness{t: t, mr: mr, rdb: rdb, sim: sim, api: gwSrv.URL, token: "e2e-producer-token-0123456789",
		cfg: cfg, hooks: hooks, logs: logs, registry: reg, stopWorker: stopWorker}
}

// do sends an API request and decodes the JSON answer into out (when not nil).
func (h *harness) do(method, path string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.api+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// submit posts a job and returns its ID.
func (h *harness) submit(job map[string]any) string {
	h.t.Helper()
	var res struct{ ID, State, Error, Field string }
	if code := h.do("POST", "/v1/jobs", job, &res); code != http.StatusAccepted {
		h.t.Fatalf("POST /v1/jobs = %d %+v", code, res)
	}
	return res.ID
}

// record reads a job record through the API.
func (h *harness) record(id string) jobstatus.Record {
	h.t.Helper()
	var rec jobstatus.Record
	if code := h.do("GET", "/v1/jobs/"+id, nil, &rec); code != http.StatusOK {
		h.t.Fatalf("GET /v1/jobs/%s = %d", id, code)
	}
	return rec
}

// waitFor polls the record until cond holds or the timeout passes.
func (h *harness) waitFor(id string, timeout time.Duration, cond func(jobstatus.Record) bool) jobstatus.Record {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var rec jobstatus.Record
		code := h.do("GET", "/v1/jobs/"+id, nil, &rec)
		if code == http.StatusOK && cond(rec) {
			return rec
		}
		if code != http.StatusOK && code != http.StatusServiceUnavailable {
			h.t.Fatalf("GET /v1/jobs/%s = %d", id, code)
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("job %s: condition not met within %s; record: %+v", id, timeout, rec)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitSettled waits for a final state with a CDR attached (the CDR is the last push of a call).
func (h *harness) waitSettled(id string, withCDR bool) jobstatus.Record {
	h.t.Helper()
	return h.waitFor(id, 20*time.Second, func(r jobstatus.Record) bool {
		return r.State.Final() && r.State != jobstatus.StateUnknown && (!withCDR || r.CDR != nil)
	})
}

// callsFor counts the requests the simulator accepted for a job (its userData starts with the job ID).
func (h *harness) callsFor(id string) int {
	n := 0
	for _, c := range h.sim.Calls() {
		if strings.HasPrefix(c.UserData, id+".") {
			n++
		}
	}
	return n
}

// hookRecorder is a producer's webhook receiver.
type hookRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string][]hookHit
}

type hookHit struct {
	body      []byte
	signature string
}

func newHookRecorder() *hookRecorder {
	r := &hookRecorder{hits: map[string][]hookHit{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		id := req.Header.Get("X-Voicequeue-Job-Id")
		r.hits[id] = append(r.hits[id], hookHit{body: body, signature: req.Header.Get(webhook.SignatureHeader)})
		r.mu.Unlock()
	}))
	return r
}

func (r *hookRecorder) url(path string) string { return r.srv.URL + path }

func (r *hookRecorder) get(id string) []hookHit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookHit(nil), r.hits[id]...)
}

func (r *hookRecorder) close() { r.srv.Close() }

// syncBuffer collects log lines from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// leakPatterns are what must never appear in a log line: full phone numbers of the tests (they
// all start +86138000… or are the display number) and the verification codes the tests give.
var leakPatterns = regexp.MustCompile(`13800000\d{3}|8675500000001|\b4711\b`)

// checkLogsLeakNothing asserts that no log line (at debug level, from every component: gateway,
// worker, asynq, simulator) holds a secret, a token, a verification code or a full phone number.
func checkLogsLeakNothing(t *testing.T, logs string, cfg *app.Config) {
	t.Helper()
	secrets := map[string]string{
		"app secret": cfg.AppSecret, "push secret": cfg.PushSecret, "API token": cfg.APITokens,
	}
	for i, line := range strings.Split(logs, "\n") {
		for what, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				t.Errorf("log line %d holds the %s: %s", i+1, what, line)
			}
		}
		if m := leakPatterns.FindString(line); m != "" {
			t.Errorf("log line %d holds %q (a phone number or code): %s", i+1, m, line)
		}
	}
	if !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Error("no debug lines were logged: the leak check saw too little")
	}
}

func states(rec jobstatus.Record) string {
	var s []string
	for _, e := range rec.Events {
		s = append(s, string(e.State))
	}
	return strings.Join(s, ",")
}

var _ = fmt.Sprintf

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
