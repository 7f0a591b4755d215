package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/ratelimit"
	"github.com/voicequeue/voicequeue/internal/redisstats"
	"github.com/voicequeue/voicequeue/internal/voice"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// rung is one step of the ladder from bare asynq to voicequeue: bare asynq tasks whose producer
// and handler do one more of voicequeue's parts than the step before, with the same producers,
// concurrency and Redis. Where a rung's rate falls shows what each part costs on this machine,
// and the best voicequeue could reach with those parts however lean its own code.
type rung struct {
	name string // short name for the table
	what string // what the rung adds
	w    work
	run  pipeRun // the best measured
}

// ladder holds the rungs between bare asynq (the anchor) and voicequeue:
//
//	http      + one loopback HTTP POST per task to a trivial server (a new connection each)
//	provider  + instead, the provider request through voice.Client to the simulator
//	records   + job records: created by the producer, the dial and the accepted call recorded
//	capacity  + the capacity claim (rate token and call slot, one script) before the dial
//
// The last rung is voicequeue's dispatch path without its own code around it: the submitter's
// validation and payload, the handler's policy checks, metrics and logs.
type ladder struct {
	rungs []*rung
	close func()
}

// measure runs every rung once and keeps each rung's best run.
func (l *ladder) measure(ctx context.Context, b *bench, n, conc int, cfg *app.Config) error {
	for _, r := range l.rungs {
		b.progress("pipeline: ladder: bare asynq %s", r.what)
		run, err := b.bareAsynq(ctx, n, conc, cfg, r.w, "pipeline-ladder-"+r.name, false)
		_ = b.flush(ctx)
		if err != nil {
			return fmt.Errorf("ladder rung %s: %w", r.name, err)
		}
		if run.rate > r.run.rate {
			r.run = run
		}
	}
	return nil
}

// newLadder builds the rungs and what they call: a trivial HTTP server, the simulator, a job
// store and a Capacity on their own Redis client.
func (b *bench) newLadder(cfg *app.Config) (l *ladder, err error) {
	srv := newServers(b.log)
	var closers []func()
	l = &ladder{close: func() {
		for _, c := range closers {
			c()
		}
		srv.stop()
	}}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	ln, err := listen()
	if err != nil {
		return nil, err
	}
	okURL := srv.serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"resultcode":"0","resultdesc":"Success","sessionId":"x"}`)
	}))
	hc := &http.Client{Timeout: 10 * time.Second}
	body := strings.Repeat("x", benchPayloadSize)
	post := func(ctx context.Context, _ int, _ string) error {
		resp, err := hc.Post(okURL, "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}

	// The simulator as in the pipeline run, but slower still: it serves every round, and its
	// first push would come 500 s after a call was accepted, after the pipeline target ends.
	sim, err := voicesim.New(voicesim.Config{
		AppKey: b.sec.appKey, AppSecret: b.sec.appSecret, Speed: 0.001,
		Logger: b.log.With("component", "voicesim"), MaxRecords: 200_000,
	})
	if err != nil {
		return nil, fmt.Errorf("new simulator: %w", err)
	}
	closers = append(closers, func() { _ = sim.Close() })
	simLn, err := listen()
	if err != nil {
		return nil, err
	}
	client, err := voice.NewClient(voice.Config{BaseURL: srv.serve(simLn, sim.Handler()), AppKey: b.sec.appKey, AppSecret: b.sec.appSecret})
	if err != nil {
		return nil, fmt.Errorf("provider client: %w", err)
	}
	tagger := queue.NewTagger(queue.DeriveKey(b.sec.appSecret, "bench-userdata"))
	status, fee := voice.EncodedURL("http://127.0.0.1:1/callbacks/status"), voice.EncodedURL("http://127.0.0.1:1/callbacks/fee")
	notify := func(ctx context.Context, i int, jobID string) (*voice.Response, error) {
		return client.Notify(ctx, &voice.NotifyRequest{
			DisplayNbr: displayNumber, CalleeNbr: callee(i),
			PlayInfoList: []voice.PlayItem{{TemplateID: "tpl_arrears", TemplateParas: []string{"42.50", "2026/12/01"}}},
			StatusURL:    status, FeeURL: fee, UserData: tagger.Tag(queue.Reference{JobID: jobID, Attempt: 1}),
		})
	}

	rdb, err := app.NewRedis(b.redisURL)
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = rdb.Close() })
	trips := &redisstats.RoundTrips{}
	rdb.AddHook(trips)
	store := jobstatus.New(rdb, jobstatus.Options{})
	create := func(ctx context.Context, i int) (string, error) {
		rec, _, err := store.Create(ctx, jobstatus.Record{Kind: "notify", Queue: queue.QueueBulk, To: voice.MaskNumber(callee(i))})
		return rec.ID, err
	}
	dialRecorded := func(ctx context.Context, i int, id string) error {
		if _, _, err := store.BeginDialAs(ctx, id, "t", jobstatus.NextAttempt, time.Now()); err != nil {
			return err
		}
		resp, err := notify(ctx, i, id)
		if err != nil {
			return err
		}
		_, _, err = store.Apply(ctx, id, jobstatus.Transition{To: jobstatus.StateCalling, Source: "worker", Attempt: 1, SessionID: resp.SessionID})
		return err
	}
	capacity, err := ratelimit.NewCapacity(rdb, ratelimit.CapacityOptions{Reserve: cfg.RateReserve, Margin: cfg.RateMargin})
	if err != nil {
		return nil, err
	}

	l.rungs = []*rung{
		{name: "http", what: "+ 1 loopback HTTP POST/task (trivial server)", w: work{handle: post}},
		{name: "provider", what: "+ instead, the provider request (voice.Client → simulator)", w: work{handle: func(ctx context.Context, i int, id string) error {
			_, err := notify(ctx, i, id)
			return err
		}}},
		{name: "records", what: "+ job records (create; dial; calling)", w: work{before: create, handle: dialRecorded}},
		{name: "capacity", what: "+ capacity claim (token and slot)", w: work{before: create, handle: func(ctx context.Context, i int, id string) error {
			r, err := capacity.Take(ctx, "bench", ratelimit.Claim{
				Rate: ratelimit.Limit{Rate: 1e6, Burst: 1000}, Priority: ratelimit.PriorityLow,
				Slots: 1_000_000, Holder: id, Lease: time.Minute,
			}, 500*time.Millisecond)
			switch {
			case err != nil:
				return err
			case !r.Allowed:
				return fmt.Errorf("capacity refused: %s", r.Short)
			}
			time.Sleep(time.Until(r.Due))
			return dialRecorded(ctx, i, id)
		}}},
	}
	for _, r := range l.rungs {
		r.w.trips = trips
	}
	return l, nil
}
