package jobstatus

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^j_[a-z2-7]{20}$`)
	seen := make(map[string]bool)
	for range 1000 {
		id := NewID()
		if !re.MatchString(id) || !validID(id) {
			t.Fatalf("NewID() = %q, want j_ and 20 base32 characters", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestCreate(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		sched := at(3600)
		rec, created, err := e.store.Create(ctx, Record{
			Kind: "verify", Queue: "verify", To: "+86138****0001", CallbackURL: "https://example.com/hook",
			ScheduledAt: &sched, State: StateScheduled, DispatchBy: at(3900),
			Events: []Event{{Source: "cli", Detail: "file line 3"}},
		})
		if err != nil || !created {
			t.Fatalf("Create: created=%v err=%v", created, err)
		}
		got := e.get(t, rec.ID)
		want := Record{
			ID: rec.ID, Kind: "verify", Queue: "verify", State: StateScheduled, To: "+86138****0001",
			CallbackURL: "https://example.com/hook", CreatedAt: t0, UpdatedAt: t0, ScheduledAt: &sched,
			DispatchBy: at(3900), Events: []Event{{State: StateScheduled, At: t0, Source: "cli", Detail: "file line 3"}},
		}
		if !recordsEqual(got, want) || !recordsEqual(rec, want) {
			t.Errorf("stored %+v\nreturned %+v\nwant %+v", got, rec, want)
		}

		t.Run("existing ID is returned unchanged", func(t *testing.T) {
			again, created, err := e.store.Create(ctx, Record{ID: rec.ID, Kind: "notify"})
			if err != nil || created || again.Kind != "verify" {
				t.Errorf("created=%v kind=%q err=%v", created, again.Kind, err)
			}
		})
	})
}

func recordsEqual(a, b Record) bool {
	ja, _ := marshalIndent(a)
	jb, _ := marshalIndent(b)
	return string(ja) == string(jb)
}

func TestCreateInvalid(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"no kind", Record{}},
		{"unmasked number", Record{Kind: "notify", To: "+8613800000001"}},
		{"starts dispatching", Record{Kind: "notify", State: StateDispatching}},
		{"starts with a bad state", Record{Kind: "notify", State: "new"}},
		{"bad ID", Record{Kind: "notify", ID: "a:{b}"}},
		{"long ID", Record{Kind: "notify", ID: string(make([]byte, 65))}},
		{"with a session", Record{Kind: "notify", SessionID: "s"}},
		{"with a CDR", Record{Kind: "notify", CDR: &CDR{}}},
		{"with digits", Record{Kind: "notify", Digits: "1"}},
		{"two events", Record{Kind: "notify", Events: []Event{{}, {}}}},
		{"negative attempts", Record{Kind: "notify", Attempts: -1}},
	}
	_, rdb := miniForTest(t)
	s := New(rdb, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.Create(context.Background(), tt.rec); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			if n := rdb.DBSize(context.Background()).Val(); n != 0 {
				t.Errorf("%d keys written", n)
			}
		})
	}
}

func TestCreateIdempotent(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		t.Run("sequential", func(t *testing.T) {
			first, created, err := e.store.Create(ctx, Record{Kind: "notify", IdempotencyKey: "order-42"})
			if err != nil || !created {
				t.Fatalf("first: created=%v err=%v", created, err)
			}
			second, created, err := e.store.Create(ctx, Record{Kind: "notify", IdempotencyKey: "order-42"})
			if err != nil || created || second.ID != first.ID {
				t.Errorf("second: id %s created=%v err=%v, want %s false", second.ID, created, err, first.ID)
			}
			other, created, err := e.store.Create(ctx, Record{Kind: "notify", IdempotencyKey: "order-43"})
			if err != nil || !created || other.ID == first.ID {
				t.Errorf("other key: id %s created=%v err=%v", other.ID, created, err)
			}
		})
		t.Run("concurrent", func(t *testing.T) {
			const n = 40
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				ids     = map[string]int{}
				creates int
			)
			for range n {
				wg.Go(func() {
					rec, created, err := e.store.Create(ctx, Record{Kind: "verify", IdempotencyKey: "burst"})
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("Create: %v", err)
						return
					}
					ids[rec.ID]++
					if created {
						creates++
					}
				})
			}
			wg.Wait()
			if len(ids) != 1 || creates != 1 {
				t.Errorf("%d distinct IDs, %d creates; want 1 and 1", len(ids), creates)
			}
			for id := range ids {
				if e.get(t, id).Kind != "verify" {
					t.Errorf("record %s not stored", id)
				}
			}
		})
		t.Run("claimed key without a record is completed by the next caller", func(t *testing.T) {
			// The claimer crashed between its two steps: the index names a job that was never written.
			if err := e.rdb.Set(ctx, e.store.keys.idem("half"), "j_orphan", time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			rec, created, err := e.store.Create(ctx, Record{Kind: "notify", IdempotencyKey: "half"})
			if err != nil || !created || rec.ID != "j_orphan" {
				t.Fatalf("id %s created=%v err=%v, want j_orphan true", rec.ID, created, err)
			}
			again, created, err := e.store.Create(ctx, Record{Kind: "notify", IdempotencyKey: "half"})
			if err != nil || created || again.ID != "j_orphan" {
				t.Errorf("again: id %s created=%v err=%v", again.ID, created, err)
			}
		})
	})
}

func TestTTL(t *testing.T) {
	const retention, idemTTL = 48 * time.Hour, 2 * time.Hour
	eachBackend(t, Options{Retention: retention, IdempotencyTTL: idemTTL}, func(t *testing.T, e *env) {
		ctx := context.Background()
		rec, _, err := e.store.Create(ctx, Record{Kind: "notify", IdempotencyKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		jobKey, idemKey := e.store.keys.job(rec.ID), e.store.keys.idem("k")
		inRange := func(t *testing.T, key string, want time.Duration) {
			t.Helper()
			got := e.rdb.PTTL(ctx, key).Val()
			if got <= want-time.Minute || got > want {
				t.Errorf("PTTL(%s) = %v, want about %v", key, got, want)
			}
		}
		inRange(t, jobKey, retention)
		inRange(t, idemKey, idemTTL)

		// Time passes (simulated by shortening the TTL); a change restores the full retention.
		e.rdb.PExpire(ctx, jobKey, time.Hour)
		if _, _, err := e.store.Transition(ctx, rec.ID, Transition{To: StateCalling, Source: "worker", SessionID: "sess-1"}); err != nil {
			t.Fatal(err)
		}
		inRange(t, jobKey, retention)
		inRange(t, e.store.keys.session("sess-1"), retention)

		// No change, no write: the TTL is left as it is.
		e.rdb.PExpire(ctx, jobKey, time.Hour)
		if _, out, err := e.store.Transition(ctx, rec.ID, Transition{To: StateCalling, Source: "worker"}); err != nil || out.Changed {
			t.Fatalf("changed=%v err=%v", out.Changed, err)
		}
		inRange(t, jobKey, time.Hour)

		if e.mr != nil {
			e.mr.FastForward(time.Hour + time.Second)
			if _, err := e.store.Get(ctx, rec.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("after expiry Get err = %v, want ErrNotFound", err)
			}
		}
	})
}

func TestIdempotencyTTLNeverOutlivesRetention(t *testing.T) {
	_, rdb := miniForTest(t)
	s := New(rdb, Options{Retention: time.Hour, IdempotencyTTL: 24 * time.Hour})
	if s.idemTTL != time.Hour {
		t.Errorf("idempotency TTL %v, want it cut to the retention (1h)", s.idemTTL)
	}
	d := New(rdb, Options{})
	if d.retention != DefaultRetention || d.idemTTL != DefaultIdempotencyTTL || d.keys.prefix != DefaultKeyPrefix {
		t.Errorf("defaults: %v %v %q", d.retention, d.idemTTL, d.keys.prefix)
	}
}

func TestLookupSession(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		id := e.create(t).ID
		if _, err := e.store.LookupSession(ctx, "s-1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("before: err = %v, want ErrNotFound", err)
		}
		if _, _, err := e.store.Transition(ctx, id, Transition{To: StateCalling, Source: "worker", SessionID: "s-1"}); err != nil {
			t.Fatal(err)
		}
		got, err := e.store.LookupSession(ctx, "s-1")
		if err != nil || got != id {
			t.Errorf("LookupSession = %q, %v; want %q", got, err, id)
		}
		// The first use of the script on a server goes through the NOSCRIPT fallback.
		e.rdb.ScriptFlush(ctx)
		if _, out, err := e.store.Transition(ctx, id, Transition{To: StateRinging, Source: "status_push", SessionID: "s-1"}); err != nil || !out.Changed {
			t.Errorf("after SCRIPT FLUSH: changed=%v err=%v", out.Changed, err)
		}
	})
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name    string
		current State
		wantErr error
		want    State
	}{
		{"queued", StateQueued, nil, StateCanceled},
		{"scheduled", StateScheduled, nil, StateCanceled},
		{"already canceled", StateCanceled, nil, StateCanceled},
		{"dispatching", StateDispatching, ErrConflict, StateDispatching},
		{"answered", StateAnswered, ErrConflict, StateAnswered},
		{"completed", StateCompleted, ErrConflict, StateCompleted},
	}
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := e.force(t, tt.current)
				rec, err := e.store.Cancel(context.Background(), id, at(30))
				if !errors.Is(err, tt.wantErr) || rec.State != tt.want {
					t.Errorf("state %s err %v; want %s %v", rec.State, err, tt.want, tt.wantErr)
				}
			})
		}
		t.Run("missing", func(t *testing.T) {
			if _, err := e.store.Cancel(context.Background(), "j_none", at(1)); !errors.Is(err, ErrNotFound) {
				t.Errorf("err = %v, want ErrNotFound", err)
			}
		})
	})
}
