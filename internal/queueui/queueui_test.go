package queueui_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/queueui"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// uiQueues are put in Redis before the UI is loaded; the browser test expects each name on the page.
var uiQueues = []string{"verify", "notify", "bulk", "webhooks"}

func populate(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	client := asynq.NewClientFromRedisClient(rdb)
	for i, q := range uiQueues {
		for range i + 1 {
			payload := []byte(`{"id":"job_1","to":"+8613800000001","sealed_code":"c2VhbGVk","callback_url":"https://example.test/hook?token=s3cret"}`)
			if _, err := client.Enqueue(asynq.NewTask("voice:"+q, payload), asynq.Queue(q)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func serve(t *testing.T, readOnly bool) (base string, rdb redis.UniversalClient) {
	t.Helper()
	_, c := testredis.Mini(t)
	populate(t, c)
	mux := http.NewServeMux()
	mux.Handle("/ui/", queueui.Handler(c, "/ui/", readOnly))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, c
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHandlerRoutes(t *testing.T) {
	tests := []struct {
		name     string
		readOnly bool
		method   string
		path     string
		want     int
		contains string
	}{
		{"page", true, "GET", "/ui/", 200, "<div id=\"root\">"},
		{"page without the slash redirects", true, "GET", "/ui", http.StatusMovedPermanently, "/ui/"},
		{"deep link serves the page", true, "GET", "/ui/queues/verify", 200, "<div id=\"root\">"},
		{"queue list", true, "GET", "/ui/api/queues", 200, `"queue":"verify"`},
		{"read-only refuses pause", true, "POST", "/ui/api/queues/verify:pause", 405, "read-only"},
		{"read-only refuses delete", true, "DELETE", "/ui/api/queues/bulk", 405, "read-only"},
		{"writable allows pause", false, "POST", "/ui/api/queues/verify:pause", 204, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, _ := serve(t, tt.readOnly)
			code, body := get(t, tt.method, base+tt.path)
			if code == http.StatusTemporaryRedirect && tt.want == http.StatusMovedPermanently {
				code = tt.want // http.ServeMux redirects before the handler does; either is right
			}
			if code != tt.want {
				t.Fatalf("%s %s = %d, want %d: %.200s", tt.method, tt.path, code, tt.want, body)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("%s %s: body lacks %q: %.300s", tt.method, tt.path, tt.contains, body)
			}
		})
	}
}

func TestHandlerReadOnlyChangesNothing(t *testing.T) {
	base, rdb := serve(t, true)
	get(t, "POST", base+"/ui/api/queues/verify:pause")
	get(t, "DELETE", base+"/ui/api/queues/notify/pending_tasks:delete_all")
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for _, q := range []string{"verify", "notify"} {
		info, err := insp.GetQueueInfo(q)
		if err != nil {
			t.Fatal(err)
		}
		if info.Paused || info.Pending == 0 {
			t.Errorf("queue %s after refused changes: paused %v, pending %d", q, info.Paused, info.Pending)
		}
	}
}

func TestHandlerRedactsPayloads(t *testing.T) {
	base, _ := serve(t, true)
	code, body := get(t, "GET", base+"/ui/api/queues/verify/pending_tasks")
	if code != 200 {
		t.Fatalf("pending tasks: %d %s", code, body)
	}
	var page struct {
		Tasks []struct {
			Payload string `json:"payload"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil || len(page.Tasks) == 0 {
		t.Fatalf("decode pending tasks: %v: %s", err, body)
	}
	p := page.Tasks[0].Payload
	for _, secret := range []string{"+8613800000001", "c2VhbGVk", "s3cret"} {
		if strings.Contains(p, secret) {
			t.Errorf("payload shown in the UI contains %q: %s", secret, p)
		}
	}
	if !strings.Contains(p, "+86138****0001") {
		t.Errorf("payload lacks the masked number: %s", p)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"number", `{"to":"+8613800000001"}`, `{"to":"+86138****0001"}`},
		{"two numbers", `+8613800000001 and +49301234567`, `+86138****0001 and +****4567`},
		{"sealed code", `{"sealed_code": "abc=="}`, `{"sealed_code":"[redacted]"}`},
		{"code", `{"code":"123456"}`, `{"code":"[redacted]"}`},
		{"url query", `{"url":"https://h.test/cb?token=x&y=1"}`, `{"url":"https://h.test/cb?[redacted]"}`},
		{"url without query", `{"url":"https://h.test/cb"}`, `{"url":"https://h.test/cb"}`},
		{"binary", "\x00\x01\x02", "non-printable bytes"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := queueui.Redact([]byte(tt.in)); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestBrowserListsQueues loads the UI in a real headless Chromium and checks that the rendered
// page (after the app's JavaScript has fetched the queue list) names every queue.
func TestBrowserListsQueues(t *testing.T) {
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		if p, lookErr := exec.LookPath("chromium"); lookErr == nil {
			chromium = p
		} else {
			t.Skipf("headless browser check skipped: no Chromium at %s or on PATH (Debian: apt-get install -y chromium; or set CHROMIUM)", chromium)
		}
	}
	base, _ := serve(t, true)

	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=15000", "--dump-dom", base+"/ui/")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := string(out)
	if !strings.Contains(dom, "<table") {
		t.Fatalf("the page rendered no queue table; DOM:\n%.3000s", dom)
	}
	for _, q := range uiQueues {
		// Each queue is a row whose first cell links to the queue's page: data the app fetched.
		if !strings.Contains(dom, `href="/ui/queues/`+q+`">`+q+`</a>`) {
			t.Errorf("the rendered page does not list queue %q; DOM:\n%.3000s", q, dom)
		}
	}
	if strings.Contains(dom, "+8613800000001") {
		t.Error("the rendered page shows a full phone number")
	}
}
