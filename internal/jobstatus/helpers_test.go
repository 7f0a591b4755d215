package jobstatus

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/testredis"
)

// t0 is the fixed start of every test's clock (millisecond precision, as stored).
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// fakeClock is the injected clock: it moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// env is one backend under test.
type env struct {
	rdb   *redis.Client
	mr    *miniredis.Miniredis // nil on the real Redis
	clock *fakeClock
	store *Store
}

// eachBackend runs fn once on miniredis and once on the real Redis at REDIS_URL.
func eachBackend(t *testing.T, opts Options, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		mr, rdb := testredis.Mini(t)
		mr.SetTime(t0)
		fn(t, newEnv(rdb, mr, opts))
	})
	t.Run("redis", func(t *testing.T) {
		_, rdb := testredis.Real(t)
		fn(t, newEnv(rdb, nil, opts))
	})
}

func newEnv(rdb *redis.Client, mr *miniredis.Miniredis, opts Options) *env {
	c := &fakeClock{now: t0}
	if opts.Now == nil {
		opts.Now = c.Now
	}
	return &env{rdb: rdb, mr: mr, clock: c, store: New(rdb, opts)}
}

// create makes a queued notify job and fails the test on error.
func (e *env) create(t *testing.T) Record {
	t.Helper()
	rec, created, err := e.store.Create(context.Background(), Record{
		Kind: "notify", Queue: "notify", To: "+86138****0001", CreatedAt: t0,
		DispatchBy: t0.Add(24 * time.Hour),
	})
	if err != nil || !created {
		t.Fatalf("Create: created=%v err=%v", created, err)
	}
	return rec
}

// force puts a fresh job into state s with a From move and returns its ID.
func (e *env) force(t *testing.T, s State) string {
	t.Helper()
	rec := e.create(t)
	if s == StateQueued {
		return rec.ID
	}
	if _, _, err := e.store.Transition(context.Background(), rec.ID, Transition{
		To: s, At: at(1), Source: "test", From: []State{StateQueued},
	}); err != nil {
		t.Fatalf("force %s: %v", s, err)
	}
	return rec.ID
}

func (e *env) get(t *testing.T, id string) Record {
	t.Helper()
	rec, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return rec
}

func states(rec Record) []State {
	out := make([]State, len(rec.Events))
	for i, ev := range rec.Events {
		out[i] = ev.State
	}
	return out
}

func miniForTest(t *testing.T) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr, rdb := testredis.Mini(t)
	mr.SetTime(t0)
	return mr, rdb
}

func marshalIndent(rec Record) ([]byte, error) { return json.MarshalIndent(rec, "", "  ") }

func realForTest(t *testing.T) *redis.Client {
	t.Helper()
	_, rdb := testredis.Real(t)
	return rdb
}

func realForBench(b *testing.B) (*redis.Options, *redis.Client) {
	b.Helper()
	return testredis.Real(b)
}
