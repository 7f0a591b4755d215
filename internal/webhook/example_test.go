package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicequeue/voicequeue/internal/webhook"
)

// A producer's endpoint verifying voicequeue webhooks: read the raw body
// (bounded), verify the signature over exactly those bytes before parsing
// them, answer 2xx fast, and treat a repeated (id, state) as a duplicate.
func Example_producerVerifies() {
	// The shared webhook signing key, from the producer's secret store.
	keys := [][]byte{[]byte("voicequeue-demo-key")}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		err = webhook.Verify(keys, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute)
		switch {
		case errors.Is(err, webhook.ErrStale):
			http.Error(w, "stale signature", http.StatusUnauthorized) // a replay, or a wrong clock
			return
		case err != nil:
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var job struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
		if err := json.Unmarshal(body, &job); err != nil {
			http.Error(w, "bad JSON", http.StatusBadRequest)
			return
		}
		fmt.Println("job", job.ID, "ended", job.State)
		w.WriteHeader(http.StatusNoContent)
	})

	// What voicequeue sends, and two things it never sends.
	body := `{"id":"job_123","state":"completed"}`
	send := func(header, body string) {
		req := httptest.NewRequest(http.MethodPost, "/hooks/voicequeue", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.SignatureHeader, header)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	signed := webhook.Sign(keys[0], time.Now(), []byte(body))
	send(signed, body)
	send(signed, strings.Replace(body, "completed", "failed", 1))
	send(webhook.Sign(keys[0], time.Now().Add(-time.Hour), []byte(body)), body)
	// Output:
	// job job_123 ended completed
	// 204
	// 401
	// 401
}

func ExampleSign() {
	key := []byte("voicequeue-demo-key")
	body := []byte(`{"id":"job_123","state":"completed"}`)
	// The signed string is "1767225600." followed by the body, byte for byte.
	fmt.Println(webhook.SignatureHeader + ": " + webhook.Sign(key, time.Unix(1767225600, 0), body))
	// Output:
	// X-Voicequeue-Signature: t=1767225600,v1=243791d622c40a8cd226d0179b81ad711ef74b4a64944b85bf644486f128f3c1
}

func ExampleGuard_CheckURL() {
	// In a demo, open loopback; in production pass nil (or a VPN range).
	g := webhook.NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	for _, u := range []string{
		"https://hooks.example.com/voicequeue?token=abc",
		"http://127.0.0.1:9000/hook",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:10.0.0.1]/",
		"http://2130706433/",
		"https://user:pw@hooks.example.com/",
	} {
		err := g.CheckURL(u)
		var ue *webhook.URLError
		switch {
		case err == nil:
			fmt.Println("ok     ", u)
		case errors.Is(err, webhook.ErrForbiddenAddress) && errors.As(err, &ue):
			fmt.Println("refused", ue.URL, "-", ue.Reason)
		case errors.Is(err, webhook.ErrInvalidURL) && errors.As(err, &ue):
			fmt.Println("invalid", ue.URL, "-", ue.Reason)
		}
	}
	// Output:
	// ok      https://hooks.example.com/voicequeue?token=abc
	// ok      http://127.0.0.1:9000/hook
	// refused http://169.254.169.254/latest/meta-data/ - address is link-local / cloud metadata (169.254/16)
	// refused http://[::ffff:10.0.0.1]/ - address is IPv4-mapped private (10/8)
	// refused http://2130706433/ - host is an ambiguous numeric IPv4 form
	// invalid https://hooks.example.com/ - userinfo not allowed
}

// Wiring the Deliverer into an asynq worker and enqueueing a delivery when a
// job ends. (Compiled, not run: it needs Redis.)
func ExampleDeliverer() {
	guard := webhook.NewGuard(nil) // the same Guard checks callback_url at the API edge
	d := webhook.NewDeliverer(webhook.DelivererOptions{
		Key:     []byte("from VOICEQUEUE_WEBHOOK_KEY or a mounted file"),
		Guard:   guard,
		Logger:  slog.Default(),
		Metrics: webhook.NewMetrics(prometheus.NewRegistry()),
	})
	mux := asynq.NewServeMux()
	mux.Handle(webhook.TaskType, d)

	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: "127.0.0.1:6379"}, asynq.Config{
		Queues: map[string]int{"verify": 6, "notify": 3, webhook.QueueName: 2, "bulk": 1},
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if t.Type() == webhook.TaskType {
				return webhook.RetryDelay(n, err, t)
			}
			return asynq.DefaultRetryDelayFunc(n, err, t)
		},
	})
	_ = srv.Start(mux)

	// When a job reaches its end state:
	record := json.RawMessage(`{"id":"job_123","state":"completed"}`)
	task, err := webhook.NewTask(webhook.Payload{JobID: "job_123", URL: "https://hooks.example.com/cb", Body: record},
		asynq.TaskID("webhook:job_123:completed")) // one delivery per job and end state
	if err != nil {
		return
	}
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: "127.0.0.1:6379"})
	defer client.Close()
	if _, err := client.EnqueueContext(context.Background(), task); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		slog.Error("enqueue webhook", "error", err)
	}
}
