package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

// received is one request seen by a receiver.
type received struct {
	method string
	header http.Header
	body   []byte
}

// receiver is a producer's endpoint on 127.0.0.1 that answers status and
// records what it got.
type receiver struct {
	srv    *httptest.Server
	status int

	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{req.Method, req.Header.Clone(), body})
		r.mu.Unlock()
		if r.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "120")
		}
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, `{"ok":false,"detail":"some text to drain"}`)
	}))
	t.Cleanup(r.srv.Close)
	serverPort(t, r.srv)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// fixture is a Deliverer with loopback opened, a fixed clock, its metrics
// and its log output.
type fixture struct {
	d       *Deliverer
	metrics *Metrics
	logs    *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T, mod func(*DelivererOptions)) *fixture {
	t.Helper()
	f := &fixture{metrics: NewMetrics(nil), logs: &syncBuffer{}}
	opts := DelivererOptions{
		Key:     testKey,
		Guard:   NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}),
		Timeout: 5 * time.Second,
		Logger:  slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: f.metrics,
		Now:     func() time.Time { return testTime },
	}
	if mod != nil {
		mod(&opts)
	}
	f.d = NewDeliverer(opts)
	t.Cleanup(f.d.client.CloseIdleConnections)
	return f
}

func (f *fixture) count(result string) float64 {
	return testutil.ToFloat64(f.metrics.deliveries.WithLabelValues(result))
}

func mustTask(t *testing.T, p Payload) *asynq.Task {
	t.Helper()
	task, err := NewTask(p)
	if err != nil {
		t.Fatalf("NewTask: %v", err)
	}
	return task
}

func TestProcessTaskDelivered(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, http.StatusNoContent)
	f := newFixture(t, nil)
	body := json.RawMessage(`{"id":"job_123","state":"completed","cdr":{"duration_seconds":42}}`)
	task := mustTask(t, Payload{JobID: "job_123", URL: r.srv.URL + "/hooks/voice?token=s3cret", Body: body})

	if err := f.d.ProcessTask(context.Background(), task); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	got := r.got()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	req := got[0]
	if req.method != http.MethodPost {
		t.Errorf("method %s, want POST", req.method)
	}
	if !bytes.Equal(req.body, body) {
		t.Errorf("body %s, want %s", req.body, body)
	}
	for h, want := range map[string]string{
		"Content-Type": "application/json",
		JobIDHeader:    "job_123",
		"User-Agent":   "voicequeue-webhook/1",
	} {
		if v := req.header.Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}
	// What a producer does: verify with its copy of the key.
	sig := req.header.Get(SignatureHeader)
	if err := Verify([][]byte{testKey}, sig, req.body, testTime.Add(time.Minute), DefaultTolerance); err != nil {
		t.Errorf("receiver cannot verify %s = %q: %v", SignatureHeader, sig, err)
	}
	if err := Verify([][]byte{[]byte("another key")}, sig, req.body, testTime, DefaultTolerance); !errors.Is(err, ErrBadSignature) {
		t.Errorf("verify with another key = %v, want ErrBadSignature", err)
	}
	if n := f.count(ResultDelivered); n != 1 {
		t.Errorf("delivered = %v, want 1", n)
	}
	if n := testutil.CollectAndCount(f.metrics.duration); n != 1 {
		t.Errorf("duration series = %d, want 1", n)
	}
	if strings.Contains(f.logs.String(), "s3cret") {
		t.Errorf("logs hold the URL's query: %s", f.logs)
	}
	if !strings.Contains(f.logs.String(), `"url":"`+r.srv.URL+`/hooks/voice"`) {
		t.Errorf("logs lack the redacted URL: %s", f.logs)
	}
}

func TestProcessTaskRotationSignsWithEveryKey(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, http.StatusOK)
	newKey := []byte("the-next-key")
	f := newFixture(t, func(o *DelivererOptions) { o.ExtraKeys = [][]byte{newKey} })
	if err := f.d.ProcessTask(context.Background(), mustTask(t, Payload{JobID: "j", URL: r.srv.URL, Body: testBody})); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	req := r.got()[0]
	sig := req.header.Get(SignatureHeader)
	for name, k := range map[string][]byte{"old": testKey, "new": newKey} {
		if err := Verify([][]byte{k}, sig, req.body, testTime, 0); err != nil {
			t.Errorf("receiver with the %s key: %v (header %q)", name, err, sig)
		}
	}
}

// The retry matrix: every status a producer may answer, and what follows.
func TestProcessTaskStatusMatrix(t *testing.T) {
	t.Parallel()
	const (
		done = iota
		retry
		permanent
	)
	tests := []struct {
		status int
		want   int
	}{
		{200, done}, {201, done}, {202, done}, {204, done},
		{300, permanent}, {304, permanent},
		{400, permanent}, {401, permanent}, {403, permanent}, {404, permanent}, {405, permanent},
		{409, permanent}, {410, permanent}, {413, permanent}, {415, permanent}, {422, permanent},
		{408, retry}, {429, retry},
		{500, retry}, {501, retry}, {502, retry}, {503, retry}, {504, retry},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, tt.status)
			f := newFixture(t, nil)
			err := f.d.ProcessTask(context.Background(), mustTask(t, Payload{JobID: "job_1", URL: r.srv.URL + "/cb", Body: testBody}))
			if len(r.got()) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(r.got()))
			}
			var se *StatusError
			switch tt.want {
			case done:
				if err != nil {
					t.Fatalf("ProcessTask = %v, want nil", err)
				}
				if f.count(ResultDelivered) != 1 {
					t.Fatal("delivered not counted")
				}
			case retry:
				if err == nil || errors.Is(err, asynq.SkipRetry) {
					t.Fatalf("ProcessTask = %v, want a retryable error", err)
				}
				if !errors.As(err, &se) || se.StatusCode != tt.status {
					t.Fatalf("ProcessTask = %v, want *StatusError %d", err, tt.status)
				}
				if f.count(ResultRetry) != 1 {
					t.Fatal("retry not counted")
				}
			case permanent:
				if !errors.Is(err, asynq.SkipRetry) {
					t.Fatalf("ProcessTask = %v, want asynq.SkipRetry", err)
				}
				if !errors.As(err, &se) || se.StatusCode != tt.status {
					t.Fatalf("ProcessTask = %v, want *StatusError %d", err, tt.status)
				}
				if f.count(ResultFailed) != 1 {
					t.Fatal("failed not counted")
				}
			}
		})
	}
}

func TestProcessTaskRetryAfter(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, http.StatusTooManyRequests) // answers Retry-After: 120
	f := newFixture(t, nil)
	task := mustTask(t, Payload{JobID: "j", URL: r.srv.URL, Body: testBody})
	err := f.d.ProcessTask(context.Background(), task)
	var se *StatusError
	if !errors.As(err, &se) || se.RetryAfter != 2*time.Minute {
		t.Fatalf("ProcessTask = %v, want *StatusError with RetryAfter 2m", err)
	}
	if d := RetryDelay(0, err, task); d != 2*time.Minute {
		t.Fatalf("RetryDelay after Retry-After: 120 = %v, want 2m", d)
	}
}

func TestProcessTaskTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hang until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	serverPort(t, srv)

	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		mod  func(*DelivererOptions)
	}{
		{"attempt timeout", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			func(o *DelivererOptions) { o.Timeout = 50 * time.Millisecond }},
		{"task deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.mod)
			ctx, cancel := tt.ctx()
			defer cancel()
			err := f.d.ProcessTask(ctx, mustTask(t, Payload{JobID: "j", URL: srv.URL + "/slow?token=s3cret", Body: testBody}))
			if err == nil || errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("ProcessTask = %v, want a retryable error", err)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("ProcessTask = %v, want a timeout", err)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(f.logs.String(), "s3cret") {
				t.Fatalf("error or logs hold the URL query: %v / %s", err, f.logs)
			}
			if f.count(ResultRetry) != 1 {
				t.Fatal("retry not counted")
			}
		})
	}
}

func TestProcessTaskConnectionRefusedRetries(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	f := newFixture(t, nil)
	err = f.d.ProcessTask(context.Background(), mustTask(t, Payload{JobID: "j", URL: "http://user@" + addr + "/x?token=s3cret", Body: testBody}))
	// userinfo is refused at the edge check: permanent.
	if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("ProcessTask with userinfo = %v, want SkipRetry and ErrInvalidURL", err)
	}
	err = f.d.ProcessTask(context.Background(), mustTask(t, Payload{JobID: "j", URL: "http://" + addr + "/x?token=s3cret", Body: testBody}))
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask to a closed port = %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(f.logs.String(), "s3cret") {
		t.Fatalf("error or logs hold the URL query: %v / %s", err, f.logs)
	}
	if f.count(ResultRetry) != 1 || f.count(ResultFailed) != 0 || f.count(ResultRefused) != 1 {
		t.Fatalf("counts retry=%v failed=%v refused=%v, want 1 0 1", f.count(ResultRetry), f.count(ResultFailed), f.count(ResultRefused))
	}
}

func TestProcessTaskRefused(t *testing.T) {
	t.Parallel()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/iam/security-credentials/", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	port := serverPort(t, redirector)

	tests := []struct {
		name string
		url  string
		mod  func(*DelivererOptions)
	}{
		{"private literal", "http://10.0.0.1/hook", nil},
		{"metadata literal", "http://169.254.169.254/latest/meta-data/", nil},
		{"metadata name", "http://metadata.google.internal/computeMetadata/v1/", nil},
		{"loopback without allow-list", redirector.URL + "/hook", func(o *DelivererOptions) { o.Guard = nil }},
		{"name resolving to loopback", "http://hooks.example.com:" + port + "/hook", func(o *DelivererOptions) {
			g := NewGuard(nil)
			g.resolver = fakeResolver(t, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"))
			o.Guard = g
		}},
		{"redirect to metadata", redirector.URL + "/hook", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.mod)
			rec := &hostRecorder{next: f.d.client.Transport, names: f.d.guard.resolver != nil}
			f.d.client.Transport = rec
			err := f.d.ProcessTask(context.Background(), mustTask(t, Payload{JobID: "j", URL: tt.url, Body: testBody}))
			if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("ProcessTask(%s) = %v, want SkipRetry and ErrForbiddenAddress", tt.url, err)
			}
			if f.count(ResultRefused) != 1 {
				t.Fatal("refused not counted")
			}
			for _, h := range rec.seen() {
				if !strings.HasPrefix(h, "127.0.0.1:") && !strings.HasPrefix(h, "hooks.example.com:") {
					t.Fatalf("a request was sent to %s", h)
				}
			}
		})
	}
}

func TestProcessTaskBadPayload(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	tests := []struct {
		name    string
		payload string
	}{
		{"not JSON", `{"job_id":`},
		{"no job id", `{"url":"https://hooks.example.com/","body":{}}`},
		{"no url", `{"job_id":"j","body":{}}`},
		{"no body", `{"job_id":"j","url":"https://hooks.example.com/"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.d.ProcessTask(context.Background(), asynq.NewTask(TaskType, []byte(tt.payload)))
			if !errors.Is(err, asynq.SkipRetry) {
				t.Fatalf("ProcessTask(%s) = %v, want SkipRetry", tt.payload, err)
			}
		})
	}
	if n := f.count(ResultFailed); n != float64(len(tests)) {
		t.Fatalf("failed = %v, want %d", n, len(tests))
	}
}

// trackingBody records whether it was read to the end and closed.
type trackingBody struct {
	r      io.Reader
	eof    bool
	closed bool
}

func (b *trackingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *trackingBody) Close() error { b.closed = true; return nil }

type fakeTransport struct {
	status int
	body   *trackingBody
}

func (f *fakeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{StatusCode: f.status, Header: http.Header{}, Body: f.body, Request: req}, nil
}

func TestProcessTaskDrainsAndClosesBodies(t *testing.T) {
	t.Parallel()
	for _, status := range []int{200, 400, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			ft := &fakeTransport{status: status, body: &trackingBody{r: strings.NewReader(strings.Repeat("x", 10<<10))}}
			f := newFixture(t, func(o *DelivererOptions) { o.Client = &http.Client{Transport: ft} })
			_ = f.d.ProcessTask(context.Background(), mustTask(t, Payload{JobID: "j", URL: "https://hooks.example.com/cb", Body: testBody}))
			if !ft.body.eof || !ft.body.closed {
				t.Fatalf("response body read to EOF %v, closed %v; want both", ft.body.eof, ft.body.closed)
			}
		})
	}
}

func TestNewTask(t *testing.T) {
	t.Parallel()
	if _, err := NewTask(Payload{JobID: "j", URL: "https://x.example/", Body: json.RawMessage(`{"a":`)}); err == nil {
		t.Fatal("NewTask with invalid JSON body succeeded")
	}
	if _, err := NewTask(Payload{URL: "https://x.example/", Body: testBody}); err == nil {
		t.Fatal("NewTask without job ID succeeded")
	}

	backends := []struct {
		name string
		rdb  func(t *testing.T) *redis.Client
	}{
		{"miniredis", func(t *testing.T) *redis.Client { _, c := testredis.Mini(t); return c }},
		{"redis", func(t *testing.T) *redis.Client { _, c := testredis.Real(t); return c }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			client := asynq.NewClientFromRedisClient(b.rdb(t))
			p := Payload{JobID: "job_9", URL: "https://hooks.example.com/cb", Body: testBody}

			def, err := client.Enqueue(mustTask(t, p))
			if err != nil {
				t.Fatalf("enqueue: %v", err)
			}
			if def.Type != TaskType || def.Queue != QueueName || def.MaxRetry != DefaultMaxRetry || def.Timeout != DefaultTaskTimeout {
				t.Fatalf("defaults: type %q queue %q max retry %d timeout %v", def.Type, def.Queue, def.MaxRetry, def.Timeout)
			}
			var back Payload
			if err := json.Unmarshal(def.Payload, &back); err != nil || back.JobID != p.JobID || back.URL != p.URL || !bytes.Equal(back.Body, p.Body) {
				t.Fatalf("payload round trip: %+v, %v", back, err)
			}

			task, err := NewTask(p, asynq.MaxRetry(3), asynq.TaskID("webhook:job_9:completed"))
			if err != nil {
				t.Fatal(err)
			}
			over, err := client.Enqueue(task)
			if err != nil {
				t.Fatalf("enqueue with options: %v", err)
			}
			if over.MaxRetry != 3 || over.ID != "webhook:job_9:completed" || over.Queue != QueueName {
				t.Fatalf("overrides: max retry %d id %q queue %q", over.MaxRetry, over.ID, over.Queue)
			}
			if _, err := client.Enqueue(task); !errors.Is(err, asynq.ErrTaskIDConflict) {
				t.Fatalf("second enqueue with the same TaskID = %v, want ErrTaskIDConflict", err)
			}
		})
	}
}

// The Deliverer as a real asynq handler: a 2xx completes the task, a 400 is
// archived at once without retries, and a 500 on the last allowed attempt is
// counted as failed (not retry) and archived.
func TestDelivererUnderAsynq(t *testing.T) {
	t.Parallel()
	backends := []struct {
		name string
		rdb  func(t *testing.T) *redis.Client
	}{
		{"miniredis", func(t *testing.T) *redis.Client { _, c := testredis.Mini(t); return c }},
		{"redis", func(t *testing.T) *redis.Client { _, c := testredis.Real(t); return c }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			rdb := b.rdb(t)
			ok := newReceiver(t, http.StatusNoContent)
			bad := newReceiver(t, http.StatusBadRequest)
			down := newReceiver(t, http.StatusInternalServerError)
			f := newFixture(t, func(o *DelivererOptions) { o.Now = nil })

			done := make(chan error, 3)
			mux := asynq.NewServeMux()
			mux.HandleFunc(TaskType, func(ctx context.Context, task *asynq.Task) error {
				err := f.d.ProcessTask(ctx, task)
				done <- err
				return err
			})
			srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
				Concurrency:       2,
				Queues:            map[string]int{QueueName: 1},
				TaskCheckInterval: 10 * time.Millisecond,
				RetryDelayFunc:    RetryDelay,
				LogLevel:          asynq.FatalLevel,
			})
			if err := srv.Start(mux); err != nil {
				t.Fatalf("start asynq server: %v", err)
			}
			client := asynq.NewClientFromRedisClient(rdb)
			okInfo, err := client.Enqueue(mustTask(t, Payload{JobID: "job_ok", URL: ok.srv.URL + "/cb", Body: testBody}), asynq.Retention(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			badInfo, err := client.Enqueue(mustTask(t, Payload{JobID: "job_bad", URL: bad.srv.URL + "/cb", Body: testBody}))
			if err != nil {
				t.Fatal(err)
			}
			downInfo, err := client.Enqueue(mustTask(t, Payload{JobID: "job_down", URL: down.srv.URL + "/cb", Body: testBody}), asynq.MaxRetry(0))
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					t.Fatal("tasks not processed within 30 s")
				}
			}
			srv.Shutdown() // waits for the workers, so the results are recorded

			insp := asynq.NewInspectorFromRedisClient(rdb)
			if info, err := insp.GetTaskInfo(QueueName, okInfo.ID); err != nil || info.State != asynq.TaskStateCompleted {
				t.Fatalf("delivered task: %+v, %v; want completed", info, err)
			}
			info, err := insp.GetTaskInfo(QueueName, badInfo.ID)
			if err != nil || info.State != asynq.TaskStateArchived || info.Retried != 0 {
				t.Fatalf("400 task: %+v, %v; want archived with no retry", info, err)
			}
			if !strings.Contains(info.LastErr, "400") {
				t.Fatalf("archived task's last error %q does not name the status", info.LastErr)
			}
			if info, err := insp.GetTaskInfo(QueueName, downInfo.ID); err != nil || info.State != asynq.TaskStateArchived {
				t.Fatalf("500 task with MaxRetry(0): %+v, %v; want archived", info, err)
			}
			if d, fl, r := f.count(ResultDelivered), f.count(ResultFailed), f.count(ResultRetry); d != 1 || fl != 2 || r != 0 {
				t.Fatalf("delivered %v failed %v retry %v, want 1 2 0", d, fl, r)
			}
			sig := ok.got()[0].header.Get(SignatureHeader)
			if err := Verify([][]byte{testKey}, sig, ok.got()[0].body, time.Now(), 0); err != nil {
				t.Fatalf("receiver cannot verify: %v", err)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	for n := range 25 {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			base := MaxRetryDelay
			if n < 12 {
				base = min(MinRetryDelay<<n, MaxRetryDelay)
			}
			lo := max(MinRetryDelay, base*4/5)
			hi := min(MaxRetryDelay, base*6/5)
			seen := map[time.Duration]bool{}
			for range 200 {
				d := RetryDelay(n, errors.New("boom"), nil)
				if d < lo || d > hi {
					t.Fatalf("RetryDelay(%d) = %v, want within [%v, %v]", n, d, lo, hi)
				}
				seen[d] = true
			}
			if len(seen) < 2 {
				t.Fatalf("RetryDelay(%d) has no jitter: %v", n, seen)
			}
		})
	}
	t.Run("Retry-After longer than backoff", func(t *testing.T) {
		t.Parallel()
		if d := RetryDelay(0, &StatusError{StatusCode: 503, RetryAfter: 30 * time.Minute}, nil); d != 30*time.Minute {
			t.Fatalf("RetryDelay = %v, want 30m", d)
		}
	})
	t.Run("Retry-After capped", func(t *testing.T) {
		t.Parallel()
		err := fmtWrap(&StatusError{StatusCode: 429, RetryAfter: 5 * time.Hour})
		if d := RetryDelay(0, err, nil); d != MaxRetryDelay {
			t.Fatalf("RetryDelay = %v, want %v", d, MaxRetryDelay)
		}
	})
}

func fmtWrap(err error) error { return errors.Join(errors.New("deliver webhook"), err) }

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"-5", 0},
		{"soon", 0},
		{"99999999", MaxRetryDelay},
		{testTime.Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second},
		{testTime.Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := parseRetryAfter(tt.in, testTime); got != tt.want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDelivererOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts DelivererOptions
		ok   bool
	}{
		{"key only", DelivererOptions{Key: testKey}, true},
		{"no key", DelivererOptions{}, false},
		{"empty extra key", DelivererOptions{Key: testKey, ExtraKeys: [][]byte{nil}}, false},
		{"negative timeout", DelivererOptions{Key: testKey, Timeout: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.opts.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NewDeliverer without a key did not panic")
		}
	}()
	NewDeliverer(DelivererOptions{})
}

func TestMetricsLint(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	m.observe(120 * time.Millisecond)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	// Every known result is exported at 0 before anything happens.
	want := `
# HELP voicequeue_webhook_deliveries_total Webhook delivery attempts by result: delivered, retry, failed (permanent or out of attempts), refused (address not allowed).
# TYPE voicequeue_webhook_deliveries_total counter
voicequeue_webhook_deliveries_total{result="delivered"} 0
voicequeue_webhook_deliveries_total{result="failed"} 0
voicequeue_webhook_deliveries_total{result="refused"} 0
voicequeue_webhook_deliveries_total{result="retry"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "voicequeue_webhook_deliveries_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Fatalf("duration histogram series = %d, want 1", n)
	}
	var nilMetrics *Metrics // a nil *Metrics is a no-op
	nilMetrics.result(ResultDelivered)
	nilMetrics.observe(time.Second)
}
