package app_test

import (
	"context"
	"flag"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/config"
)

// TestDevDemo runs the embedded demo (what `make run` starts) and waits for its jobs to reach
// the states the README promises: completed, busy and no answer.
func TestDevDemo(t *testing.T) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	cfg := app.Bind(config.NewSet(fs, func(string) string { return "" }), "worker")
	cfg.HTTPAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.RunDev(ctx, cfg, slog.New(slog.DiscardHandler), app.DevOptions{Speed: 50, Out: out})
	}()
	want := []string{"verify      completed", "notify      busy", "notify      no_answer", "notify      completed"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		text := out.String()
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("demo never printed %q; output:\n%s", missing, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunDev: %v", err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, " j_") && strings.Contains(line, "8613800000") {
			t.Errorf("demo state line shows a full phone number: %s", line)
		}
	}
}
