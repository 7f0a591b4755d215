package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, env(nil), &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, name := range []string{"addr", "app-key", "app-secret", "app-secret-file", "rate", "ports", "speed",
		"display-numbers", "latency", "error-rate", "outage", "flow-control-rate", "duplicate-pushes",
		"reorder-pushes", "delay-pushes", "random", "sign-pushes", "cdr-retry-interval", "skew-window"} {
		if !strings.Contains(out.String(), "-"+name+" ") && !strings.Contains(out.String(), "-"+name+"\n") {
			t.Errorf("--help does not document --%s", name)
		}
		if !strings.Contains(out.String(), "VOICESIM_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))) {
			t.Errorf("--help does not name the environment variable of --%s", name)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("fromFile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, cfg voicesim.Config, opts options)
		wantErr string
	}{
		{name: "reviewer command line",
			args: []string{"--addr", "127.0.0.1:9999", "--app-key", "KEY", "--app-secret", "SECRET", "--rate", "5", "--ports", "3", "--speed", "10"},
			check: func(t *testing.T, cfg voicesim.Config, opts options) {
				if opts.addr != "127.0.0.1:9999" || cfg.AppKey != "KEY" || cfg.AppSecret != "SECRET" || cfg.Rate != 5 || cfg.Ports != 3 || cfg.Speed != 10 {
					t.Errorf("cfg %+v opts %+v", cfg, opts)
				}
				if cfg.DisplayNumbers != nil || cfg.Random != nil || cfg.MaxCDRRetries != voicesim.DefaultMaxCDRRetries {
					t.Errorf("defaults wrong: %+v", cfg)
				}
			}},
		{name: "environment defaults, flags win",
			args: []string{"--ports", "7"},
			env:  map[string]string{"VOICESIM_APP_KEY": "envKey", "VOICESIM_APP_SECRET": "envSecret", "VOICESIM_PORTS": "2", "VOICESIM_SIGN_PUSHES": "true", "VOICESIM_DISPLAY_NUMBERS": "+8675500000001, +8675500000002"},
			check: func(t *testing.T, cfg voicesim.Config, _ options) {
				if cfg.AppKey != "envKey" || cfg.AppSecret != "envSecret" || cfg.Ports != 7 || !cfg.SignPushes || len(cfg.DisplayNumbers) != 2 {
					t.Errorf("cfg %+v", cfg)
				}
			}},
		{name: "secret file",
			args: []string{"--app-key", "k", "--app-secret-file", secretFile},
			check: func(t *testing.T, cfg voicesim.Config, _ options) {
				if cfg.AppSecret != "fromFile" {
					t.Errorf("secret %q", cfg.AppSecret)
				}
			}},
		{name: "faults",
			args: []string{"--app-key", "k", "--app-secret", "s", "--outage", "30s+10s:503", "--random", "busy=0.5,seed=3", "--error-rate", "0.1", "--max-cdr-retries", "0"},
			check: func(t *testing.T, cfg voicesim.Config, _ options) {
				if len(cfg.Faults.Outages) != 1 || cfg.Random == nil || cfg.Random.Busy != 0.5 || cfg.Faults.ErrorRate != 0.1 || cfg.MaxCDRRetries != -1 {
					t.Errorf("cfg %+v", cfg)
				}
			}},
		{name: "missing secret", args: []string{"--app-key", "k"}, wantErr: "required"},
		{name: "bad outage", args: []string{"--app-key", "k", "--app-secret", "s", "--outage", "soon:503"}, wantErr: "outage"},
		{name: "bad environment value", args: []string{"--app-key", "k", "--app-secret", "s"}, env: map[string]string{"VOICESIM_RATE": "fast"}, wantErr: "VOICESIM_RATE"},
		{name: "stray argument", args: []string{"--app-key", "k", "--app-secret", "s", "extra"}, wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, opts, err := parseFlags(tt.args, env(tt.env), &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg, opts)
		})
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a log sink safe for the server's goroutines.
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

// start runs the command until the test ends and returns its address.
func start(t *testing.T, extra ...string) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	args := append([]string{"--addr", addr, "--app-key", "KEY", "--app-secret", "SECRET", "--speed", "1000"}, extra...)
	go func() { done <- run(ctx, args, env(nil), logs, logs) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d, logs:\n%s", code, logs)
		}
		if strings.Contains(logs.String(), "SECRET") {
			t.Error("the secret appears in the logs")
		}
	})
	return addr
}

func TestRunServes(t *testing.T) {
	t.Parallel()
	addr := start(t)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // waiting for a real listener: no clock to fake
	}
	res, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", res.StatusCode)
	}
}

func TestRefuseOutageClosesListener(t *testing.T) {
	t.Parallel()
	addr := start(t, "--outage", "0s+1h:refuse")
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial: %v, want connection refused", err)
			}
			return
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections during a refuse outage")
		}
		time.Sleep(10 * time.Millisecond) // the listener closes on the next poll
	}
}
