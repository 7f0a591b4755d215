package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// redisTargets runs a suite against miniredis and against the real Redis at REDIS_URL; each
// gives the URL for --redis and a client to inspect the database.
func redisTargets(t *testing.T, suite func(t *testing.T, redisURL string, rdb *redis.Client)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		mr, rdb := testredis.Mini(t)
		suite(t, "redis://"+mr.Addr(), rdb)
	})
	t.Run("real", func(t *testing.T) {
		t.Parallel()
		opts, rdb := testredis.Real(t)
		u := url.URL{Scheme: "redis", Host: opts.Addr, Path: fmt.Sprintf("/%d", opts.DB)}
		if opts.Password != "" {
			u.User = url.UserPassword(opts.Username, opts.Password)
		}
		suite(t, u.String(), rdb)
	})
}

func TestRedisBackend(t *testing.T) {
	t.Parallel()
	redisTargets(t, func(t *testing.T, redisURL string, rdb *redis.Client) {
		ctx := context.Background()
		secret := map[string]string{"VOICEQUEUE_PUSH_SECRET": "push-secret"}
		cli := func(env map[string]string, args ...string) result {
			t.Helper()
			return runCLI(t, env, "", append(args, "--redis", redisURL)...)
		}

		// Bad input never reaches Redis.
		for _, args := range [][]string{
			{"notify", "--to", "+8613800000001"},
			{"notify", "--to", "12345", "--template", "T1"},
			{"verify", "--to", "+8613800000001", "--code", "x"},
			{"verify", "--to", "+8613800000001"}, // no code key: verify can't be sealed
			{"click2call", "--from", "+8613800000001", "--to", "+8613800000002", "--max-duration", "-1"},
			{"notify", "--to", "+8613800000001", "--template", "T1", "--callback-url", "http://127.0.0.1/hook"},
		} {
			r := cli(nil, args...)
			if r.code != exitBadInput || !strings.HasPrefix(r.stderr, "enqueue: ") || r.stdout != "" {
				t.Errorf("%v: exit %d stdout %q stderr %q, want 2 naming the field", args, r.code, r.stdout, r.stderr)
			}
		}
		r := cli(map[string]string{"VOICEQUEUE_CODE_KEY": "not-a-key"}, "verify", "--to", "+8613800000001")
		if r.code != exitBadInput || !strings.Contains(r.stderr, "VOICEQUEUE_CODE_KEY") {
			t.Errorf("bad code key: exit %d stderr %q", r.code, r.stderr)
		}
		if n := rdb.DBSize(ctx).Val(); n != 0 {
			t.Fatalf("bad input left %d keys in Redis", n)
		}

		// One job of each kind; each prints its ID alone.
		var ids []string
		for _, tc := range []struct {
			env  map[string]string
			args []string
		}{
			{nil, []string{"notify", "--to", "13800000001", "--template", "T1", "--param", "Alice"}},
			{secret, []string{"verify", "--to", "+8613800000002", "--code", "4321"}},
			{map[string]string{"VOICEQUEUE_CODE_KEY": hex.EncodeToString(make([]byte, 32))}, []string{"verify", "--to", "+8613800000003"}},
			{nil, []string{"click2call", "--from", "+8613800000004", "--to", "+8613800000005", "--record"}},
		} {
			r := cli(tc.env, tc.args...)
			id := strings.TrimSuffix(r.stdout, "\n")
			if r.code != 0 || !strings.HasPrefix(id, "j_") || strings.Contains(id, "\n") {
				t.Fatalf("%v: exit %d stdout %q stderr %q", tc.args, r.code, r.stdout, r.stderr)
			}
			ids = append(ids, id)
		}

		// status prints the record.
		r = cli(nil, "status", ids[0])
		var rec struct {
			ID, Kind, State string
			To              string `json:"to"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rec); r.code != 0 || err != nil {
			t.Fatalf("status: exit %d err %v stdout %q stderr %q", r.code, err, r.stdout, r.stderr)
		}
		if rec.ID != ids[0] || rec.Kind != "notify" || rec.State != "queued" || strings.Contains(r.stdout, "13800000001") {
			t.Errorf("status record %+v (the full number must not appear):\n%s", rec, r.stdout)
		}
		if strings.Contains(cli(nil, "status", ids[1]).stdout, "4321") {
			t.Error("a verify record shows its code")
		}

		// Idempotency: the same key gives the same job.
		first := cli(nil, "notify", "--to", "+8613800000006", "--template", "T1", "--idempotency-key", "k-1")
		again := cli(nil, "notify", "--to", "+8613800000006", "--template", "T1", "--idempotency-key", "k-1")
		if first.code != 0 || first.stdout != again.stdout || !strings.Contains(again.stderr, "already exists") {
			t.Errorf("idempotent resubmit: %q then %q (%s)", first.stdout, again.stdout, again.stderr)
		}

		// cancel, not found, already dialled.
		if r := cli(nil, "cancel", ids[0]); r.code != 0 || !strings.Contains(r.stdout, `"state": "canceled"`) {
			t.Errorf("cancel: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := cli(nil, "status", "j_nosuchjob"); r.code != exitFailure || !strings.Contains(r.stderr, "job not found") {
			t.Errorf("status of an unknown job: exit %d stderr %q", r.code, r.stderr)
		}
		if r := cli(nil, "cancel", "j_nosuchjob"); r.code != exitFailure || !strings.Contains(r.stderr, "job not found") {
			t.Errorf("cancel of an unknown job: exit %d stderr %q", r.code, r.stderr)
		}
		store := jobstatus.New(rdb, jobstatus.Options{})
		if _, _, err := store.Transition(ctx, ids[3], jobstatus.Transition{To: jobstatus.StateDispatching, At: time.Now(), Source: "test"}); err != nil {
			t.Fatalf("move the job on: %v", err)
		}
		if r := cli(nil, "cancel", ids[3]); r.code != exitFailure || !strings.Contains(r.stderr, "already dispatched") {
			t.Errorf("cancel of a dialled job: exit %d stderr %q", r.code, r.stderr)
		}
	})
}

func TestRedisBackendFile(t *testing.T) {
	t.Parallel()
	redisTargets(t, func(t *testing.T, redisURL string, rdb *redis.Client) {
		var b strings.Builder
		const n = 1200
		for i := 1; i <= n; i++ {
			switch {
			case i%100 == 0:
				fmt.Fprintf(&b, `{"kind":"notify","to":"12345","template_id":"T1"}`+"\n")
			case i%300 == 1:
				fmt.Fprintf(&b, `{"kind":"verify","to":%q}`+"\n", number(i))
			default:
				fmt.Fprintf(&b, `{"kind":"notify","to":%q,"template_id":"T1","template_params":["x"]}`+"\n", number(i))
			}
		}
		path := writeFile(t, "jobs.jsonl", []byte(b.String()))
		// Without a code key the 4 verify lines are refused by line; the rest go in.
		r := runCLI(t, nil, "", "file", path, "--ids", "--redis", redisURL, "--batch-size", "500")
		if r.code != exitBadInput {
			t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
		}
		errs := lineErrors(r.stderr)
		for _, line := range []int{1, 301, 601, 901} {
			if !strings.HasPrefix(errs[line], "kind: verify jobs through --redis need") {
				t.Errorf("line %d: %q, want the code key refusal", line, errs[line])
			}
		}
		if !strings.HasPrefix(errs[100], "to: ") {
			t.Errorf("line 100: %q", errs[100])
		}
		sub, rej, _ := summaryOf(t, r.stderr)
		ids := strings.Fields(r.stdout)
		if sub != n-12-4 || rej != 16 || len(ids) != sub {
			t.Errorf("submitted %d rejected %d with %d IDs, want %d, 16", sub, rej, len(ids), n-16)
		}
		store := jobstatus.New(rdb, jobstatus.Options{})
		for _, id := range []string{ids[0], ids[len(ids)-1]} {
			rec, err := store.Get(context.Background(), id)
			if err != nil || rec.Queue != "bulk" || rec.State != jobstatus.StateQueued {
				t.Errorf("job %s: %+v, %v; want queued on bulk", id, rec, err)
			}
		}
	})
}
