package jobstatus

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// createCases are records Create accepts, chosen to exercise every field of the built record
// Create returns without decoding: it must be exactly what Get decodes from Redis.
func createCases() []struct {
	name string
	rec  Record
} {
	shanghai := time.FixedZone("CST", 8*3600)
	sched := time.Date(2025, 3, 1, 18, 0, 0, 123456789, shanghai)
	return []struct {
		name string
		rec  Record
	}{
		{"minimal", Record{Kind: "notify"}},
		{"full", Record{Kind: "verify", Queue: "verify", State: StateScheduled, To: "+86138****0001",
			CallbackURL: "https://example.com/hook?a=1&b=<2>", IdempotencyKey: "order-é-42", Attempts: 2,
			CreatedAt: time.Date(2025, 3, 1, 17, 0, 0, 999999999, shanghai), ScheduledAt: &sched,
			DispatchBy: sched.Add(time.Hour), Events: []Event{{Source: "cli|file", Detail: strings.Repeat("ü", 150)}}}},
		{"zero scheduled_at pointer", Record{Kind: "notify", ScheduledAt: &time.Time{}}},
		{"invalid UTF-8 falls back to decoding", Record{Kind: "notify", CallbackURL: "https://x/\xff"}},
	}
}

func TestCreateReturnsStoredRecord(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		for _, tc := range createCases() {
			t.Run(tc.name, func(t *testing.T) {
				rec, created, err := e.store.Create(context.Background(), tc.rec)
				if err != nil || !created {
					t.Fatalf("created=%v err=%v", created, err)
				}
				if got := e.get(t, rec.ID); !reflect.DeepEqual(rec, got) {
					t.Errorf("returned %+v\nstored   %+v", rec, got)
				}
			})
		}
	})
}

// TestCreateMany: one result per record, in order, equal to what Create gives, with per-record
// errors and idempotency keys resolved exactly as Create resolves them.
func TestCreateMany(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		existing, _, err := e.store.Create(ctx, Record{Kind: "notify", IdempotencyKey: "known"})
		if err != nil {
			t.Fatal(err)
		}
		// A key claimed by a caller that never wrote its record: the batch writes it under the
		// claimed ID.
		if err := e.rdb.Set(ctx, e.store.keys.idem("orphan"), "j_orphaned", 0).Err(); err != nil {
			t.Fatal(err)
		}
		e.rdb.ScriptFlush(ctx) // the first use of each script goes through the NOSCRIPT fallback
		recs := []Record{
			{Kind: "notify", To: "+86138****0001"},
			{Kind: "notify", To: "+8613800000001"}, // unmasked: refused, not sent
			{Kind: "notify", IdempotencyKey: "dup"},
			{Kind: "notify", IdempotencyKey: "known"},
			{Kind: "notify", IdempotencyKey: "dup"},
			{Kind: "bulk", IdempotencyKey: "orphan"},
			{ID: existing.ID, Kind: "other"},
		}
		recs = append(recs, createCases()[1].rec)
		res := e.store.CreateMany(ctx, recs)
		if len(res) != len(recs) {
			t.Fatalf("%d results for %d records", len(res), len(recs))
		}
		want := []struct {
			created bool
			err     error
			id      string
		}{
			{true, nil, ""}, {false, ErrInvalid, ""}, {true, nil, ""}, {false, nil, existing.ID},
			{false, nil, res[2].Record.ID}, {true, nil, "j_orphaned"}, {false, nil, existing.ID}, {true, nil, ""},
		}
		for i, w := range want {
			r := res[i]
			if !errors.Is(r.Err, w.err) || r.Created != w.created || (w.id != "" && r.Record.ID != w.id) {
				t.Errorf("record %d: created %v id %q err %v; want created %v id %q err %v", i, r.Created, r.Record.ID, r.Err, w.created, w.id, w.err)
				continue
			}
			if r.Err != nil {
				continue
			}
			if got := e.get(t, r.Record.ID); !reflect.DeepEqual(r.Record, got) {
				t.Errorf("record %d: returned %+v\nstored %+v", i, r.Record, got)
			}
		}
		if res[3].Record.Kind != "notify" || res[6].Record.Kind != "notify" {
			t.Errorf("an existing job was changed: kinds %q %q", res[3].Record.Kind, res[6].Record.Kind)
		}
		if n := e.rdb.DBSize(ctx).Val(); n != 9 { // 5 records (1 from before), 4 idempotency keys (2 from before)
			t.Errorf("%d keys in Redis, want 9", n)
		}
	})
	t.Run("a failed pipeline fails every record", func(t *testing.T) {
		_, rdb := miniForTest(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for i, r := range New(rdb, Options{}).CreateMany(ctx, []Record{{Kind: "notify"}, {Kind: "notify", IdempotencyKey: "k"}}) {
			if r.Err == nil || r.Created {
				t.Errorf("record %d: created %v err %v, want an error", i, r.Created, r.Err)
			}
		}
	})
	t.Run("empty", func(t *testing.T) {
		_, rdb := miniForTest(t)
		if res := New(rdb, Options{}).CreateMany(context.Background(), nil); len(res) != 0 {
			t.Errorf("%d results", len(res))
		}
	})
}
