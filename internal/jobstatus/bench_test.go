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
