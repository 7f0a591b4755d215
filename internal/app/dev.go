package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/httpserver"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// DevOptions configures the embedded demo.
type DevOptions struct {
	// Speed is the simulator's time scale (default 4: a call plays out in a few seconds).
	Speed float64
	// NoDemoJobs skips the demo jobs (tests submit their own).
	NoDemoJobs bool
	// Out receives the live state-change lines (default: the logger only).
	Out io.Writer
	// Ready, when set, is closed once the gateway listens.
	Ready chan<- string
}

// RunDev runs the embedded demo until ctx ends: an in-process miniredis, the provider simulator,
// the gateway and the worker, all bound to loopback. cfg supplies the addresses and tunables;
// credentials and secrets are generated for the run. Nothing needs installing.
func RunDev(ctx context.Context, cfg *Config, log *slog.Logger, o DevOptions) error {
	if o.Speed <= 0 {
		o.Speed = 4
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return fmt.Errorf("start miniredis: %w", err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	appKey, appSecret := "demo-app-key", randomAlnum(32)
	sim, err := voicesim.New(voicesim.Config{
		AppKey: appKey, AppSecret: appSecret, Speed: o.Speed, Logger: log.With("component", "voicesim"),
	})
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	defer sim.Close()
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen simulator: %w", err)
	}

	apiLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s (move it with --http-addr): %w", cfg.HTTPAddr, err)
	}
	apiBase := "http://" + apiLn.Addr().String()

	cfg.RedisURL = "redis://" + mr.Addr()
	cfg.ProviderURL = "http://" + simLn.Addr().String()
	cfg.AppKey, cfg.AppSecret = appKey, appSecret
	if cfg.DisplayNumber == "" {
		cfg.DisplayNumber = "+8675500000001"
	}
	cfg.PushBaseURL = apiBase
	cfg.PushSecret = randomAlnum(24)
	cfg.APITokens = ""
	spoolDir, err := os.MkdirTemp("", "voicequeue-demo-spool-")
	if err != nil {
		return fmt.Errorf("spool dir: %w", err)
	}
	defer os.RemoveAll(spoolDir)
	cfg.SpoolDir = spoolDir
	if cfg.CallbackAllow == "" {
		cfg.CallbackAllow = "127.0.0.0/8,::1/128" // demo callbacks may go to a local receiver
	}
	// The demo dials at any hour: with the production default (08:00–21:00 in the callee's
	// zone) its notify jobs to Chinese numbers would wait for the morning after 13:00 UTC.
	// A window other than the default is kept.
	windowsOff := false
	for _, g := range []string{"notify", "bulk"} {
		if w := cfg.Windows[g]; w != nil && *w == DefaultCallingWindow {
			*w, windowsOff = "off", true
		}
	}

	reg := NewRegistry()
	deps := Deps{Redis: rdb, Registry: reg, Logger: log}
	m := NewMetrics(reg)
	gw, err := NewGateway(cfg, deps, m, true)
	if err != nil {
		return err
	}
	wk, err := NewWorker(cfg, deps, m, WorkerOptions{})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	serve := func(name string, srv *http.Server, ln net.Listener) {
		wg.Go(func() {
			if err := httpserver.Serve(ctx, srv, ln, 5*time.Second); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		})
	}
	serve("simulator", httpserver.New("", sim.Handler(), log), simLn)
	serve("gateway", httpserver.New("", gw.Handler, log), apiLn)
	if cfg.AdminAddr != "" {
		adminLn, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			return fmt.Errorf("listen admin %s: %w", cfg.AdminAddr, err)
		}
		serve("admin", httpserver.New("", gw.Admin, log), adminLn)
	}
	wg.Go(func() { gw.Run(ctx) })
	wg.Go(func() {
		if err := wk.Run(ctx); err != nil {
			errc <- err
			cancel()
		}
	})

	out := o.Out
	if out == nil {
		out = io.Discard
	}
	fmt.Fprintf(out, "voicequeue demo: API %s (no token needed), provider simulator %s, Redis in process\n", apiBase, cfg.ProviderURL)
	if windowsOff {
		fmt.Fprintf(out, "calling windows off in the demo (production: %s in the callee's zone; set VOICEQUEUE_CALLING_WINDOW_NOTIFY to another window to try one)\n", DefaultCallingWindow)
	}
	fmt.Fprintf(out, "try: go run ./cmd/enqueue verify --api %s --to +8613800000001   |   curl -s %s/v1/jobs/ID\n", apiBase, apiBase)
	if o.Ready != nil {
		o.Ready <- apiBase
	}
	if !o.NoDemoJobs {
		if err := submitDemoJobs(ctx, gw.Submit, out); err != nil {
			fmt.Fprintf(out, "demo jobs: %v\n", err)
		}
	}
	wg.Go(func() { watchJobs(ctx, rdb, gw.Store, out) })

	<-ctx.Done()
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// demoJobs end in the states the README promises: completed, busy, no answer.
var demoJobs = []struct {
	label string
	req   queue.Request
}{
	{"verify, answered", queue.Request{Kind: "verify", To: "+8613800000001"}},
	{"notify, answered (presses 1)", queue.Request{Kind: "notify", To: "+8613800000111", TemplateID: "tpl_arrears", TemplateParams: []string{"42.50", "2026/12/01"}, CollectDigits: 1}},
	{"notify, busy", queue.Request{Kind: "notify", To: "+8613800000486", TemplateID: "tpl_arrears", TemplateParams: []string{"12.00", "2026/12/01"}}},
	{"notify, no answer", queue.Request{Kind: "notify", To: "+8613800000480", VoiceFile: "reminder.wav"}},
}

func submitDemoJobs(ctx context.Context, sub *queue.Submitter, out io.Writer) error {
	for _, d := range demoJobs {
		res, err := sub.Submit(ctx, d.req)
		if err != nil {
			return fmt.Errorf("submit %s: %w", d.label, err)
		}
		fmt.Fprintf(out, "submitted %-28s %s\n", d.label, res.ID)
	}
	return nil
}

// watchJobs prints every new event of every job, live. It scans the (small, in-process) demo
// Redis; it is demo code, not something to run against a production Redis.
func watchJobs(ctx context.Context, rdb *redis.Client, store *jobstatus.Store, out io.Writer) {
	seen := map[string]int{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var ids []string
		iter := rdb.Scan(ctx, 0, "*:job", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			if i, j := strings.Index(k, "{"), strings.Index(k, "}"); i >= 0 && j > i {
				ids = append(ids, k[i+1:j])
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			rec, err := store.Get(ctx, id)
			if err != nil {
				continue
			}
			for _, ev := range rec.Events[min(seen[id], len(rec.Events)):] {
				line := fmt.Sprintf("%s  %-10s %-11s %-12s", ev.At.Local().Format("15:04:05.000"), id, rec.Kind, ev.State)
				if ev.Detail != "" {
					line += "  " + ev.Detail
				}
				if ev.State.Final() && rec.CDR != nil && rec.CDR.Outcome != "" {
					line += fmt.Sprintf("  (talk %ds, %s)", rec.CDR.DurationSeconds, rec.CDR.Outcome)
				}
				fmt.Fprintln(out, line)
			}
			seen[id] = len(rec.Events)
		}
	}
}

func randomAlnum(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
