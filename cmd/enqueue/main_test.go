package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicequeue/voicequeue/internal/queue"
)

func TestBadInputExitsTwoNamingTheField(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	dir := t.TempDir()
	txt := filepath.Join(dir, "jobs.txt")
	if err := os.WriteFile(txt, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyToken := filepath.Join(dir, "token")
	if err := os.WriteFile(emptyToken, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	to := "+8613800000001"
	tests := []struct {
		name string
		args []string
		want string // in stderr: the field or flag named
	}{
		{"no command", nil, "Usage"},
		{"unknown command", []string{"dial"}, `unknown command "dial"`},
		{"notify without to", []string{"notify", "--template", "T1"}, "enqueue: to: is required"},
		{"notify bad number", []string{"notify", "--to", "12345", "--template", "T1"}, "enqueue: to: not a valid phone number"},
		{"notify letters as number", []string{"notify", "--to", "call-me", "--template", "T1"}, "enqueue: to: not a phone number"},
		{"notify without template", []string{"notify", "--to", to}, "enqueue: template_id:"},
		{"notify template and voice file", []string{"notify", "--to", to, "--template", "T1", "--voice-file", "a.wav"}, "enqueue: voice_file:"},
		{"notify template with space", []string{"notify", "--to", to, "--template", "T 1"}, "enqueue: template_id:"},
		{"notify empty param", []string{"notify", "--to", to, "--template", "T1", "--param", ""}, "enqueue: template_params[0]:"},
		{"notify param too long", []string{"notify", "--to", to, "--template", "T1", "--param", strings.Repeat("x", 33)}, "enqueue: template_params[0]:"},
		{"notify collect digits not a number", []string{"notify", "--to", to, "--template", "T1", "--collect-digits", "abc"}, "collect-digits"},
		{"notify collect digits too many", []string{"notify", "--to", to, "--template", "T1", "--collect-digits", "99"}, "enqueue: collect_digits:"},
		{"notify stray argument", []string{"notify", "--to", to, "--template", "T1", "extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"notify", "--to", to, "--template", "T1", "--colour", "red"}, "colour"},
		{"verify short code", []string{"verify", "--to", to, "--code", "1"}, "enqueue: code:"},
		{"verify letters in code", []string{"verify", "--to", to, "--code", "12ab"}, "enqueue: code:"},
		{"verify without to", []string{"verify"}, "enqueue: to:"},
		{"click2call without from", []string{"click2call", "--to", to}, "enqueue: from:"},
		{"click2call bad from", []string{"click2call", "--from", "1", "--to", to}, "enqueue: from:"},
		{"click2call duration too long", []string{"click2call", "--from", to, "--to", "+8613800000002", "--max-duration", "5000"}, "enqueue: max_duration_minutes:"},
		{"click2call duration not a number", []string{"click2call", "--from", to, "--to", "+8613800000002", "--max-duration", "1h"}, "max-duration"},
		{"at not RFC 3339", []string{"verify", "--to", to, "--at", "tomorrow"}, "enqueue: scheduled_at:"},
		{"ttl not a duration", []string{"verify", "--to", to, "--ttl", "soon"}, "enqueue: ttl:"},
		{"ttl too long", []string{"verify", "--to", to, "--ttl", "1000h"}, "enqueue: ttl:"},
		{"callback not http", []string{"verify", "--to", to, "--callback-url", "ftp://example.com/x"}, "enqueue: callback_url:"},
		{"idempotency key not printable", []string{"verify", "--to", to, "--idempotency-key", "a\tb"}, "enqueue: idempotency_key:"},
		{"unknown time zone", []string{"verify", "--to", to, "--timezone", "Mars/Olympus"}, "enqueue: timezone:"},
		{"bad region", []string{"verify", "--to", "13800000001", "--region", "XX"}, "region:"},
		{"api not a URL", []string{"verify", "--to", to, "--api", "localhost:8080"}, "api:"},
		{"api with credentials", []string{"verify", "--to", to, "--api", "http://u:p@127.0.0.1"}, "api:"},
		{"zero timeout", []string{"verify", "--to", to, "--timeout", "0s"}, "timeout:"},
		{"empty token file", []string{"verify", "--to", to, "--token-file", emptyToken}, "token-file:"},
		{"missing token file", []string{"verify", "--to", to, "--token-file", filepath.Join(dir, "nope")}, "token-file:"},
		{"redis and api", []string{"verify", "--to", to, "--redis", "redis://127.0.0.1:1", "--api", "http://127.0.0.1:1"}, "redis:"},
		{"redis not a URL", []string{"verify", "--to", to, "--redis", "mysql://x"}, "redis:"},
		{"status without ID", []string{"status"}, "id:"},
		{"status bad ID", []string{"status", "../../etc"}, "id:"},
		{"status two IDs", []string{"status", "j_a", "j_b"}, `unexpected argument "j_b"`},
		{"cancel without ID", []string{"cancel"}, "id:"},
		{"file without path", []string{"file"}, "path:"},
		{"file unknown extension", []string{"file", txt}, "format:"},
		{"file bad format flag", []string{"file", txt, "--format", "xml"}, "format:"},
		{"file missing", []string{"file", filepath.Join(dir, "nope.csv")}, "path:"},
		{"file batch too big", []string{"file", "-", "--batch-size", "1001"}, "batch-size:"},
		{"file concurrency zero", []string{"file", "-", "--concurrency", "0"}, "concurrency:"},
		{"file bad default ttl", []string{"file", "-", "--ttl", "forever"}, "enqueue: ttl:"},
		{"file bad default callback", []string{"file", "-", "--callback-url", "mailto:x@example.com"}, "enqueue: callback_url:"},
		{"file key prefix too long", []string{"file", "-", "--idempotency-key", strings.Repeat("k", 125)}, "enqueue: idempotency_key:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := tt.args
			if len(args) > 0 && args[0] != "dial" && !contains(args, "--api") && !contains(args, "--redis") {
				args = append(append([]string(nil), args...), "--api", g.URL())
			}
			r := runCLI(t, nil, "", args...)
			if r.code != exitBadInput {
				t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr does not name %q:\n%s", tt.want, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
	t.Cleanup(func() {
		if n := g.requests.Load(); n != 0 {
			t.Errorf("%d requests reached the gateway; bad input must be refused before sending", n)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestSingleSubmitPrintsOnlyTheID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want queue.Request // what the gateway must receive
	}{
		{
			name: "notify with params",
			args: []string{"notify", "--to", "+8613800000001", "--template", "T1", "--param", "Alice", "--param", "42"},
			want: queue.Request{Kind: "notify", To: "+8613800000001", TemplateID: "T1", TemplateParams: []string{"Alice", "42"}},
		},
		{
			name: "notify bulk with voice file and digits, flags after nothing",
			args: []string{"notify", "--to", "+8613800000002", "--voice-file", "hello.wav", "--collect-digits", "1", "--bulk"},
			want: queue.Request{Kind: "notify", To: "+8613800000002", VoiceFile: "hello.wav", CollectDigits: 1, Bulk: ptr(true)},
		},
		{
			name: "verify national number read with the region from env",
			args: []string{"verify", "--to", "2025550123", "--code", "1234"},
			env:  map[string]string{"VOICEQUEUE_DEFAULT_REGION": "US"},
			want: queue.Request{Kind: "verify", To: "+12025550123", Code: "1234"},
		},
		{
			name: "verify national number read with the default region",
			args: []string{"verify", "--to", "13800000003"},
			want: queue.Request{Kind: "verify", To: "+8613800000003"},
		},
		{
			name: "click2call with common flags",
			args: []string{"click2call", "--from", "+8613800000004", "--to", "+8613800000005", "--max-duration", "30", "--record",
				"--idempotency-key", "order-7", "--callback-url", "https://example.com/hook", "--at", "2020-01-02T15:04:05Z", "--ttl", "2h", "--timezone", "Asia/Shanghai"},
			want: queue.Request{Kind: "click2call", From: "+8613800000004", To: "+8613800000005", MaxDurationMinutes: 30, Record: true,
				IdempotencyKey: "order-7", CallbackURL: "https://example.com/hook", ScheduledAt: "2020-01-02T15:04:05Z", TTL: "2h", Timezone: "Asia/Shanghai"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newFakeGateway(t)
			env := map[string]string{"VOICEQUEUE_API": g.URL()}
			for k, v := range tt.env {
				env[k] = v
			}
			r := runCLI(t, env, "", tt.args...)
			if r.code != exitOK {
				t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
			}
			id := strings.TrimSuffix(r.stdout, "\n")
			if id == "" || strings.ContainsAny(id, " \n") {
				t.Fatalf("stdout = %q, want the job ID alone on one line", r.stdout)
			}
			job, ok := g.job(id)
			if !ok {
				t.Fatalf("the gateway has no job %q", id)
			}
			got, _ := json.Marshal(job.Req)
			want, _ := json.Marshal(tt.want)
			if !bytes.Equal(got, want) {
				t.Errorf("gateway received\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestIdempotentResubmitReturnsTheSameID(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	args := []string{"verify", "--to", "+8613800000001", "--idempotency-key", "k1", "--api", g.URL()}
	first := runCLI(t, nil, "", args...)
	second := runCLI(t, nil, "", args...)
	if first.code != 0 || second.code != 0 {
		t.Fatalf("exits %d, %d: %s %s", first.code, second.code, first.stderr, second.stderr)
	}
	if first.stdout != second.stdout {
		t.Errorf("IDs differ: %q then %q", first.stdout, second.stdout)
	}
	if !strings.Contains(second.stderr, "already exists") {
		t.Errorf("stderr does not say the job existed: %q", second.stderr)
	}
	if g.jobCount() != 1 {
		t.Errorf("%d jobs, want 1", g.jobCount())
	}
}

func TestGatewayReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		token    string // the gateway's
		env      map[string]string
		args     []string
		refuse   *queue.FieldError
		status   int // a handler answering every request with this status
		wantCode int
		want     string
	}{
		{name: "token from env", token: "s3cret", env: map[string]string{"VOICEQUEUE_API_TOKEN": "s3cret"}, wantCode: 0},
		{name: "token flag wins over env", token: "s3cret", env: map[string]string{"VOICEQUEUE_API_TOKEN": "wrong"}, args: []string{"--token", "s3cret"}, wantCode: 0},
		{name: "no token", token: "s3cret", wantCode: 1, want: "HTTP 401"},
		{name: "wrong token", token: "s3cret", env: map[string]string{"VOICEQUEUE_API_TOKEN": "nope"}, wantCode: 1, want: "VOICEQUEUE_API_TOKEN"},
		{name: "server refuses a field", refuse: &queue.FieldError{Field: "callback_url", Message: "refused: private address"}, wantCode: 2, want: "enqueue: callback_url: refused: private address"},
		{name: "server error", status: http.StatusServiceUnavailable, wantCode: 1, want: "HTTP 503"},
		{name: "body too large", status: http.StatusRequestEntityTooLarge, wantCode: 2, want: "HTTP 413"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newFakeGateway(t)
			g.token = tt.token
			if tt.refuse != nil {
				g.refuse = func(queue.Request) *queue.FieldError { return tt.refuse }
			}
			url := g.URL()
			if tt.status != 0 {
				url = statusServer(t, tt.status)
			}
			args := append([]string{"notify", "--to", "+8613800000001", "--template", "T1", "--api", url}, tt.args...)
			r := runCLI(t, tt.env, "", args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr does not contain %q:\n%s", tt.want, r.stderr)
			}
			if tt.wantCode != 0 && r.stdout != "" {
				t.Errorf("stdout = %q, want nothing on failure", r.stdout)
			}
			if strings.Contains(r.stderr, "s3cret") {
				t.Errorf("stderr shows the token: %s", r.stderr)
			}
		})
	}
}

// statusServer answers every request with status and a JSON error.
func statusServer(t *testing.T, status int) string {
	t.Helper()
	srv := newStatusServer(status)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestNetworkFailureExitsOne(t *testing.T) {
	t.Parallel()
	srv := newStatusServer(200)
	url := srv.URL
	srv.Close() // nothing listens there now
	r := runCLI(t, nil, "", "verify", "--to", "+8613800000001", "--api", url)
	if r.code != exitFailure {
		t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "/v1/jobs") {
		t.Errorf("stderr does not say what failed: %s", r.stderr)
	}
}

func TestTokenSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("good-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"--token-file beats the environment", map[string]string{"VOICEQUEUE_API_TOKEN": "env-loses"}, []string{"--token-file", file}},
		{"VOICEQUEUE_API_TOKEN_FILE", map[string]string{"VOICEQUEUE_API_TOKEN": "env-loses", "VOICEQUEUE_API_TOKEN_FILE": file}, nil},
		{"first of a rotation list", map[string]string{"VOICEQUEUE_API_TOKEN": " good-token , old-token"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newFakeGateway(t)
			g.token = "good-token"
			r := runCLI(t, tt.env, "", append([]string{"verify", "--to", "+8613800000001", "--api", g.URL()}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
		})
	}
}

func TestStatusAndCancel(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	env := map[string]string{"VOICEQUEUE_API": g.URL()}
	sub := runCLI(t, env, "", "notify", "--to", "+8613800000001", "--template", "T1")
	id := strings.TrimSpace(sub.stdout)
	other := runCLI(t, env, "", "notify", "--to", "+8613800000002", "--template", "T1")
	dialled := strings.TrimSpace(other.stdout)
	g.setState(dialled, "calling")

	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantState string // in the JSON on stdout
		wantErr   string
	}{
		{"status", []string{"status", id}, 0, "queued", ""},
		{"status with flags after the ID", []string{"status", id, "--timeout", "5s"}, 0, "queued", ""},
		{"status after --", []string{"status", "--timeout", "5s", "--", id}, 0, "queued", ""},
		{"status unknown", []string{"status", "j_nope"}, 1, "", "job not found"},
		{"cancel dialled", []string{"cancel", dialled}, 1, "", "already dispatched"},
		{"cancel unknown", []string{"cancel", "j_nope"}, 1, "", "job not found"},
		{"cancel", []string{"cancel", id}, 0, "canceled", ""},
		{"status after cancel", []string{"status", id}, 0, "canceled", ""},
	}
	for _, tt := range tests { // in order: cancel changes the record
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, env, "", tt.args...)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s", r.code, tt.wantCode, r.stderr)
			}
			if tt.wantErr != "" {
				if !strings.Contains(r.stderr, tt.wantErr) || r.stdout != "" {
					t.Errorf("stdout %q stderr %q, want nothing and %q", r.stdout, r.stderr, tt.wantErr)
				}
				return
			}
			var rec struct {
				ID    string `json:"id"`
				State string `json:"state"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil {
				t.Fatalf("stdout is not the record JSON: %v\n%s", err, r.stdout)
			}
			if rec.ID != tt.args[1] && rec.ID != id || rec.State != tt.wantState {
				t.Errorf("record %+v, want state %s", rec, tt.wantState)
			}
			if !strings.Contains(r.stdout, "\n  \"") {
				t.Errorf("record is not indented:\n%s", r.stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		r := runCLI(t, nil, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "enqueue file") || !strings.Contains(r.stdout, "Exit status") {
			t.Errorf("%v: exit %d, stdout:\n%s", args, r.code, r.stdout)
		}
	}
	for _, cmd := range []string{"notify", "verify", "click2call", "status", "cancel", "file"} {
		for _, args := range [][]string{{cmd, "--help"}, {"help", cmd}, {cmd, "-h"}} {
			r := runCLI(t, map[string]string{"VOICEQUEUE_API_TOKEN": "s3cret"}, "", args...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage: enqueue "+cmd) || !strings.Contains(r.stdout, "--api URL") {
				t.Errorf("%v: exit %d, stdout:\n%s", args, r.code, r.stdout)
			}
			if strings.Contains(r.stdout, "s3cret") {
				t.Errorf("%v: help shows the token", args)
			}
		}
	}
	r := runCLI(t, nil, "", "notify", "--help")
	for _, flag := range []string{"--to NUMBER", "--template ID", "--param VALUE", "--voice-file FILE", "--collect-digits N", "--bulk",
		"--idempotency-key KEY", "--callback-url URL", "--at TIME", "--ttl DURATION", "--token-file FILE", "--redis URL", "--region", "--timeout"} {
		if !strings.Contains(r.stdout, flag) {
			t.Errorf("notify --help does not document %s", flag)
		}
	}
}

// TestRun goes through run itself, with the process environment.
func TestRun(t *testing.T) {
	g := newFakeGateway(t)
	t.Setenv("VOICEQUEUE_API", g.URL())
	t.Setenv("VOICEQUEUE_API_TOKEN", "")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"verify", "--to", "+8613800000001"}, strings.NewReader(""), &out, &errb)
	if code != 0 || !strings.HasPrefix(out.String(), "j_8613800000001") || errb.Len() != 0 {
		t.Errorf("exit %d stdout %q stderr %q", code, out.String(), errb.String())
	}
}
