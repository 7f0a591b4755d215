package queue

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/voicequeue/voicequeue/internal/redisstats"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

func newTestSubmitter(t testing.TB, rdb redis.UniversalClient) *Submitter {
	t.Helper()
	sub, err := NewSubmitter(SubmitterOptions{Redis: rdb, DefaultRegion: "CN", CodeKey: DeriveKey("s", "code")})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func bulkRequests(n int, keyPrefix string) []Request {
	bulk := true
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{Kind: "notify", To: fmt.Sprintf("+86138%08d", i), VoiceFile: "a.wav", Bulk: &bulk}
		if keyPrefix != "" {
			reqs[i].IdempotencyKey = fmt.Sprintf("%s-%d", keyPrefix, i)
		}
	}
	return reqs
}

// TestSubmitBatchRoundTrips counts the Redis round trips of a batch: the record creates are
// pipelined (one round trip per batch, two with idempotency keys), each asynq enqueue is one.
func TestSubmitBatchRoundTrips(t *testing.T) {
	_, rdb := testredis.Mini(t)
	sub := newTestSubmitter(t, rdb)
	c := &redisstats.RoundTrips{}
	rdb.AddHook(c)
	// Warm up: the first use of each script costs a NOSCRIPT reply, and asynq's client registers
	// a queue on its first enqueues.
	if _, err := sub.SubmitBatch(t.Context(), bulkRequests(50, "warm")); err != nil {
		t.Fatal(err)
	}
	const n = 100
	for _, tt := range []struct {
		keys      string
		wantTrips int64
	}{
		{"", 1 + n},  // one pipeline of creates, one enqueue per job
		{"k", 2 + n}, // claims, creates, enqueues
	} {
		keys := tt.keys
		c.Take()
		items, err := sub.SubmitBatch(t.Context(), bulkRequests(n, keys))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.Error != "" {
				t.Fatalf("item %d: %s", it.Index, it.Error)
			}
		}
		trips, cmds := c.Take()
		t.Logf("batch of %d, idempotency keys %v: %d round trips (%.2f per job), %d commands", n, keys != "", trips, float64(trips)/n, cmds)
		if trips != tt.wantTrips {
			t.Errorf("idempotency keys %v: %d round trips, want %d", keys != "", trips, tt.wantTrips)
		}
	}
}

// pendingJobs lists the jobs whose tasks wait in queue q.
func pendingJobs(t *testing.T, sub *Submitter, q string) map[string]Job {
	t.Helper()
	tasks, err := sub.inspector.ListPendingTasks(q, asynq.PageSize(MaxBatch))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	out := make(map[string]Job)
	for _, ti := range tasks {
		job, err := DecodeJob(ti.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if job.ID != ti.ID {
			t.Errorf("task %s carries job %s", ti.ID, job.ID)
		}
		out[job.ID] = job
	}
	return out
}

// TestSubmitBatch: one result per item, in order; invalid items never stop valid ones; an
// idempotency key known before, repeated in the batch, or claimed by a submitter that died before
// writing its record, resolves as Submit resolves it; exactly the jobs created get a task.
func TestSubmitBatch(t *testing.T) {
	for name, newRedis := range map[string]func(t *testing.T) *redis.Client{
		"miniredis": func(t *testing.T) *redis.Client { _, rdb := testredis.Mini(t); return rdb },
		"redis":     func(t *testing.T) *redis.Client { _, rdb := testredis.Real(t); return rdb },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			rdb := newRedis(t)
			sub := newTestSubmitter(t, rdb)
			known, err := sub.Submit(ctx, Request{Kind: "notify", To: "+8613800000001", VoiceFile: "a.wav", IdempotencyKey: "known"})
			if err != nil {
				t.Fatal(err)
			}
			// A submitter claimed "orphan" for j_orphaned and died before writing the record.
			sum := sha256.Sum256([]byte("orphan"))
			if err := rdb.Set(ctx, "voicequeue:idem:"+hex.EncodeToString(sum[:16]), "j_orphaned", 0).Err(); err != nil {
				t.Fatal(err)
			}
			bulk := true
			reqs := []Request{
				{Kind: "notify", To: "+8613800000002", VoiceFile: "a.wav", Bulk: &bulk},
				{Kind: "notify", To: "12", VoiceFile: "a.wav"},
				{Kind: "verify", To: "+8613800000003", Code: "4321", IdempotencyKey: "dup"},
				{Kind: "notify", To: "+8613800000001", VoiceFile: "a.wav", IdempotencyKey: "known"},
				{Kind: "verify", To: "+8613800000003", Code: "4321", IdempotencyKey: "dup"},
				{Kind: "verify", To: "+8613800000004", Code: "9876", IdempotencyKey: "orphan"},
			}
			items, err := sub.SubmitBatch(ctx, reqs)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != len(reqs) {
				t.Fatalf("%d items for %d requests", len(items), len(reqs))
			}
			for i, it := range items {
				if it.Index != i {
					t.Errorf("item %d has index %d", i, it.Index)
				}
			}
			check := func(i int, wantID string, existing bool, state string) {
				t.Helper()
				it := items[i]
				if it.Error != "" || it.Existing != existing || it.State != state || it.ID == "" || (wantID != "" && it.ID != wantID) {
					t.Errorf("item %d = %+v; want id %q existing %v state %s", i, it, wantID, existing, state)
				}
			}
			check(0, "", false, "queued")
			if items[1].Error == "" || items[1].Field != "to" {
				t.Errorf("item 1 = %+v, want an error naming to", items[1])
			}
			check(2, "", false, "queued")
			check(3, known.ID, true, "queued")
			check(4, items[2].ID, true, "queued")
			check(5, "j_orphaned", false, "queued")

			bulkJobs, verifyJobs := pendingJobs(t, sub, QueueBulk), pendingJobs(t, sub, QueueVerify)
			if len(bulkJobs) != 1 || len(verifyJobs) != 2 {
				t.Fatalf("tasks: %d bulk, %d verify; want 1 and 2", len(bulkJobs), len(verifyJobs))
			}
			if _, ok := bulkJobs[items[0].ID]; !ok {
				t.Errorf("no task for item 0")
			}
			for _, i := range []int{2, 5} {
				job, ok := verifyJobs[items[i].ID]
				if !ok {
					t.Errorf("no task for item %d", i)
					continue
				}
				if code, err := sub.sealer.Open(job.ID, job.SealedCode); err != nil || code != reqs[i].Code {
					t.Errorf("item %d: sealed code opens to %q, %v", i, code, err)
				}
				if rec, err := sub.Get(ctx, job.ID); err != nil || rec.State != "queued" {
					t.Errorf("item %d: record %+v, %v", i, rec, err)
				}
			}
		})
	}
}

// failEnqueueHook fails asynq's enqueue of any task whose payload holds match.
type failEnqueueHook struct{ match string }

func (h failEnqueueHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h failEnqueueHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			for _, a := range cmd.Args() {
				if b, ok := a.([]byte); ok && bytes.Contains(b, []byte(h.match)) {
					cmd.SetErr(errors.New("injected enqueue failure"))
					return cmd.Err()
				}
			}
		}
		return next(ctx, cmd)
	}
}

func (h failEnqueueHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestSubmitBatchEnqueueFailure: a job whose record was written but whose task could not be
// enqueued ends `failed` and its item reports the error; the others are submitted. Nothing is
// left recorded as queued without a task.
func TestSubmitBatchEnqueueFailure(t *testing.T) {
	_, rdb := testredis.Mini(t)
	sub := newTestSubmitter(t, rdb)
	rdb.AddHook(failEnqueueHook{match: "+8613800000077"})
	reqs := bulkRequests(5, "")
	reqs[2].To = "+8613800000077"
	items, err := sub.SubmitBatch(t.Context(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		failed := it.Error != ""
		if failed != (i == 2) {
			t.Errorf("item %d = %+v", i, it)
		}
	}
	if it := items[2]; it.ID != "" || !strings.Contains(it.Error, "not submitted: enqueue job") {
		t.Errorf("failed item = %+v", it)
	}
	pending := pendingJobs(t, sub, QueueBulk)
	if len(pending) != 4 {
		t.Errorf("%d tasks, want 4", len(pending))
	}
	// Every record is either a pending task's job, or the failed one ended `failed`.
	keys, err := rdb.Keys(t.Context(), "voicequeue:{*}:job").Result()
	if err != nil {
		t.Fatal(err)
	}
	failedRecords := 0
	for _, k := range keys {
		id := strings.TrimSuffix(strings.TrimPrefix(k, "voicequeue:{"), "}:job")
		rec, err := sub.Get(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		_, hasTask := pending[id]
		switch {
		case hasTask && rec.State == "queued":
		case !hasTask && rec.State == "failed" && rec.Reason == "enqueue failed":
			failedRecords++
		default:
			t.Errorf("job %s: state %s, task %v", id, rec.State, hasTask)
		}
	}
	if len(keys) != 5 || failedRecords != 1 {
		t.Errorf("%d records, %d failed; want 5 and 1", len(keys), failedRecords)
	}
}

// TestSubmitBatchCanceled: a request canceled before its records are written submits nothing
// and says so for each valid item; invalid items still name their field.
func TestSubmitBatchCanceled(t *testing.T) {
	_, rdb := testredis.Mini(t)
	sub := newTestSubmitter(t, rdb)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	reqs := bulkRequests(3, "")
	reqs[1].To = "12"
	items, err := sub.SubmitBatch(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if items[1].Field != "to" || !strings.Contains(items[0].Error, "context canceled") || !strings.Contains(items[2].Error, "context canceled") {
		t.Errorf("items %+v", items)
	}
	if n := rdb.DBSize(t.Context()).Val(); n != 0 {
		t.Errorf("%d keys written", n)
	}
}
