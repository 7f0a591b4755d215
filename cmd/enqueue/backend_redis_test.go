package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
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
		r := cli(map[string]string{"VOICEQUEUE_CODE_KEY_FILE": "/nonexistent/code-key"}, "verify", "--to", "+8613800000001")
		if r.code != exitBadInput || !strings.Contains(r.stderr, "VOICEQUEUE_CODE_KEY_FILE") {
			t.Errorf("missing code key file: exit %d stderr %q", r.code, r.stderr)
		}
		r = cli(map[string]string{"VOICEQUEUE_CALLBACK_ALLOW_CIDRS": "10.0.0.0/33"}, "notify", "--to", "+8613800000001", "--template", "T1")
		if r.code != exitBadInput || !strings.Contains(r.stderr, "VOICEQUEUE_CALLBACK_ALLOW_CIDRS") {
			t.Errorf("bad allow-list: exit %d stderr %q", r.code, r.stderr)
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
			{map[string]string{"VOICEQUEUE_CODE_KEY": "code-key"}, []string{"verify", "--to", "+8613800000003"}},
			{map[string]string{"VOICEQUEUE_CALLBACK_ALLOW_CIDRS": "127.0.0.0/8"},
				[]string{"click2call", "--from", "+8613800000004", "--to", "+8613800000005", "--record", "--callback-url", "http://127.0.0.1:9/hook"}},
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
		const n = 600
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
		// Without a code key the 2 verify lines are refused by line; the rest go in.
		r := runCLI(t, nil, "", "file", path, "--ids", "--redis", redisURL, "--batch-size", "200", "--timeout", "10m")
		if r.code != exitBadInput {
			t.Fatalf("exit %d, want 2; stderr:\n%s", r.code, r.stderr)
		}
		errs := lineErrors(r.stderr)
		for _, line := range []int{1, 301} {
			if !strings.HasPrefix(errs[line], "kind: verify jobs through --redis need") {
				t.Errorf("line %d: %q, want the code key refusal", line, errs[line])
			}
		}
		if !strings.HasPrefix(errs[100], "to: ") {
			t.Errorf("line 100: %q", errs[100])
		}
		sub, rej, _ := summaryOf(t, r.stderr)
		ids := strings.Fields(r.stdout)
		if sub != n-6-2 || rej != 8 || len(ids) != sub {
			t.Errorf("submitted %d rejected %d with %d IDs, want %d, 8", sub, rej, len(ids), n-8)
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

// TestCodeKey: the key sealing verify codes is derived exactly as the worker derives the key
// that opens them (internal/app: DeriveKey of the code key, else of the push secret).
func TestCodeKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "code-key")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    []byte
		wantErr bool
	}{
		{"none", nil, nil, false},
		{"push secret", map[string]string{"VOICEQUEUE_PUSH_SECRET": "ps"}, queue.DeriveKey("ps", "code"), false},
		{"code key wins", map[string]string{"VOICEQUEUE_PUSH_SECRET": "ps", "VOICEQUEUE_CODE_KEY": " ck "}, queue.DeriveKey("ck", "code"), false},
		{"file wins over the variable", map[string]string{"VOICEQUEUE_CODE_KEY": "ck", "VOICEQUEUE_CODE_KEY_FILE": file}, queue.DeriveKey("from-file", "code"), false},
		{"push secret file", map[string]string{"VOICEQUEUE_PUSH_SECRET_FILE": file}, queue.DeriveKey("from-file", "code"), false},
		{"missing file", map[string]string{"VOICEQUEUE_CODE_KEY_FILE": filepath.Join(dir, "nope")}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := codeKey(func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr || !bytes.Equal(got, tt.want) {
				t.Errorf("codeKey = %x, %v; want %x (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// BenchmarkFileSubmitRedis pushes 20,000 generated lines through `enqueue file --redis` into the
// real Redis at REDIS_URL: jobs per second straight to Redis (target 4 of issue 7 asks ≥ 10,000).
func BenchmarkFileSubmitRedis(b *testing.B) {
	const lines = 20_000
	opts, rdb := testredis.Real(b)
	u := url.URL{Scheme: "redis", Host: opts.Addr, Path: fmt.Sprintf("/%d", opts.DB)}
	if opts.Password != "" {
		u.User = url.UserPassword(opts.Username, opts.Password)
	}
	path := writeFile(b, "jobs.jsonl", genFile(lines, formatJSONL))
	for b.Loop() {
		b.StopTimer()
		if err := rdb.FlushDB(context.Background()).Err(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		r := runCLI(b, nil, "", "file", path, "--redis", u.String())
		if r.code != exitBadInput { // 1% bad lines
			b.Fatalf("exit %d: %s", r.code, r.stderr[max(0, len(r.stderr)-500):])
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}
