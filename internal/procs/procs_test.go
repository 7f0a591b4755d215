package procs

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStartStopTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name       string
		script     string
		wantOwn    bool // stopped by SIGTERM within the grace period
		wantOutput string
	}{
		{"stops on SIGTERM", `echo "hello $GREETING"; exec sleep 30`, true, "hello world"},
		{"killed when it ignores SIGTERM", `trap '' TERM; echo stubborn; while :; do sleep 0.05; done`, false, "stubborn"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(tt.name, "/bin/sh", []string{"-c", tt.script}, map[string]string{"GREETING": "world"},
				filepath.Join(dir, string(rune('a'+i))+".log"), true)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(p.Tail(5), tt.wantOutput) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(p.Tail(5), tt.wantOutput) {
				t.Fatalf("log %q lacks %q", p.Tail(5), tt.wantOutput)
			}
			if p.Exited() || p.PID() <= 0 {
				t.Fatalf("exited %v pid %d", p.Exited(), p.PID())
			}
			if own := p.Stop(300 * time.Millisecond); own != tt.wantOwn {
				t.Errorf("Stop reported %v, want %v", own, tt.wantOwn)
			}
			if !p.Exited() || p.Err() == nil {
				t.Errorf("after Stop: exited %v err %v", p.Exited(), p.Err())
			}
		})
	}
}

func TestWaitHTTP(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // not ready on the first look
		}
	}))
	defer srv.Close()
	if err := WaitHTTP(t.Context(), srv.URL, nil, 5*time.Second); err != nil {
		t.Fatalf("ready server: %v", err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitHTTP(t.Context(), "http://"+addr, nil, 200*time.Millisecond); err == nil {
		t.Error("WaitHTTP on a closed port succeeded")
	}
	p, err := Start("quitter", "/bin/sh", []string{"-c", "echo bye; exit 3"}, nil, filepath.Join(t.TempDir(), "q.log"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitHTTP(t.Context(), "http://"+addr, p, 5*time.Second); err == nil || !strings.Contains(err.Error(), "bye") {
		t.Errorf("WaitHTTP for an exited process: %v, want its log in the error", err)
	}
}
