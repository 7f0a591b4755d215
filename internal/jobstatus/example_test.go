package jobstatus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
)

// A job's life as the API, the worker and the push handlers record it. Duplicated and late
// pushes change nothing; a CDR that arrives after the disconnect push attaches without an event.
func Example() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	store := jobstatus.New(rdb, jobstatus.Options{Now: func() time.Time { return t0 }})

	// API: create the job (idempotent on the producer's key).
	rec, created, _ := store.Create(ctx, jobstatus.Record{
		ID: "j_example", Kind: "verify", Queue: "verify", To: "+86138****0001", IdempotencyKey: "login-7",
	})
	_, again, _ := store.Create(ctx, jobstatus.Record{Kind: "verify", IdempotencyKey: "login-7"})
	fmt.Println(rec.ID, rec.State, created, again)

	// Worker: record the dial before the request leaves; a redelivered task is told not to dial.
	_, grant, _ := store.BeginDial(ctx, rec.ID, 1, t0.Add(time.Second))
	_, redelivered, _ := store.BeginDial(ctx, rec.ID, 2, t0.Add(9*time.Second))
	fmt.Println("granted:", grant.Granted, "redelivery already dialled:", redelivered.AlreadyDialled)

	const sess = "1200_366_0_20250301090000@callenabler.home1.com"
	apply := func(to jobstatus.State, source string, sec int, cdr *jobstatus.CDR) {
		_, out, err := store.Transition(ctx, rec.ID, jobstatus.Transition{
			To: to, At: t0.Add(time.Duration(sec) * time.Second), Source: source, SessionID: sess, CDR: cdr,
		})
		fmt.Printf("%-9s from %-11s changed=%-5v became_final=%v err=%v\n", to, out.Previous, out.Changed, out.BecameFinal, err)
	}
	apply(jobstatus.StateCalling, "worker", 2, nil)
	apply(jobstatus.StateAnswered, "status_push", 8, nil)
	apply(jobstatus.StateRinging, "status_push", 5, nil) // late: never backwards
	apply(jobstatus.StateCompleted, "status_push", 30, nil)
	apply(jobstatus.StateCompleted, "status_push", 30, nil) // duplicated
	apply(jobstatus.StateCompleted, "cdr_push", 31, &jobstatus.CDR{DurationSeconds: 22, Outcome: "completed"})

	rec, _ = store.Get(ctx, rec.ID)
	for _, ev := range rec.Events {
		fmt.Println(ev.At.Format("15:04:05"), ev.State, ev.Source)
	}
	fmt.Println("cdr:", rec.CDR.Outcome, rec.CDR.DurationSeconds, "s")
	id, _ := store.LookupSession(ctx, sess)
	fmt.Println("session belongs to", id)

	// Output:
	// j_example queued true false
	// granted: true redelivery already dialled: true
	// calling   from dispatching changed=true  became_final=false err=<nil>
	// answered  from calling     changed=true  became_final=false err=<nil>
	// ringing   from answered    changed=false became_final=false err=<nil>
	// completed from answered    changed=true  became_final=true err=<nil>
	// completed from completed   changed=false became_final=false err=<nil>
	// completed from completed   changed=true  became_final=false err=<nil>
	// 09:00:00 queued api
	// 09:00:01 dispatching worker
	// 09:00:02 calling worker
	// 09:00:08 answered status_push
	// 09:00:30 completed status_push
	// cdr: completed 22 s
	// session belongs to j_example
}
