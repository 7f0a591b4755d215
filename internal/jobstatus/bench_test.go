package jobstatus

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkTransition measures one Transition on the real Redis at REDIS_URL (never benchmark on
// miniredis): a state change with a sessionId (script + index write, one round trip), a duplicate
// that changes nothing, and parallel state changes from many goroutines.
func BenchmarkTransition(b *testing.B) {
	ctx := context.Background()
	_, rdb := realForBench(b)
	s := New(rdb, Options{})
	newJobs := func(b *testing.B, n int) []string {
		b.Helper()
		ids := make([]string, n)
		for i := range ids {
			rec, _, err := s.Create(ctx, Record{Kind: "notify", To: "+86138****0001"})
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = rec.ID
		}
		return ids
	}
	b.Run("change_with_session", func(b *testing.B) {
		ids := newJobs(b, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, _, err := s.Transition(ctx, ids[i], Transition{To: StateCalling, Source: "worker", Attempt: 1, SessionID: "s-" + strconv.Itoa(i)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("apply_change_with_session", func(b *testing.B) {
		// What a push costs now: Apply sends no record back and decodes none (not final).
		ids := newJobs(b, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, _, err := s.Apply(ctx, ids[i], Transition{To: StateCalling, Source: "status_push", Attempt: 1, SessionID: "s-" + strconv.Itoa(i)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("duplicate_no_change", func(b *testing.B) {
		id := newJobs(b, 1)[0]
		tr := Transition{To: StateRinging, Source: "status_push"}
		if _, _, err := s.Transition(ctx, id, tr); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if _, _, err := s.Transition(ctx, id, tr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel_change", func(b *testing.B) {
		ids := newJobs(b, b.N)
		next := make(chan string, len(ids))
		for _, id := range ids {
			next <- id
		}
		close(next)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := s.Transition(ctx, <-next, Transition{To: StateDispatching, Source: "worker"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkCreate measures one Create on the real Redis at REDIS_URL: without an idempotency key
// (one script) and with one (the claim, then the create: two round trips).
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	_, rdb := realForBench(b)
	s := New(rdb, Options{})
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.Create(ctx, Record{Kind: "notify", Queue: "bulk", To: "+86138****0001"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("idempotency_key", func(b *testing.B) {
		prefix, i := NewID()+"-", 0 // keys never seen before, whatever -count and b.N are
		for b.Loop() {
			i++
			if _, created, err := s.Create(ctx, Record{Kind: "notify", Queue: "bulk", To: "+86138****0001", IdempotencyKey: prefix + strconv.Itoa(i)}); err != nil || !created {
				b.Fatalf("created %v err %v", created, err)
			}
		}
	})
}

// BenchmarkCreateMany measures CreateMany on the real Redis at REDIS_URL, one op = one batch of
// 1,000 records (one pipeline; two with idempotency keys). Compare its ns/record with
// BenchmarkCreate's ns/op.
func BenchmarkCreateMany(b *testing.B) {
	ctx := context.Background()
	_, rdb := realForBench(b)
	s := New(rdb, Options{})
	const batch = 1000
	for _, keys := range []bool{false, true} {
		b.Run("idempotency_keys="+strconv.FormatBool(keys), func(b *testing.B) {
			recs := make([]Record, batch)
			prefix, n := NewID()+"-", 0
			for b.Loop() {
				for i := range recs {
					n++
					recs[i] = Record{Kind: "notify", Queue: "bulk", To: "+86138****0001"}
					if keys {
						recs[i].IdempotencyKey = prefix + strconv.Itoa(n)
					}
				}
				for _, r := range s.CreateMany(ctx, recs) {
					if r.Err != nil || !r.Created {
						b.Fatalf("created %v err %v", r.Created, r.Err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
		})
	}
}
