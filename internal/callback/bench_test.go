package callback

import (
	"testing"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// BenchmarkPushes measures the push handler on the real Redis at REDIS_URL: one op is one push
// of an answered call (callout, alerting, answer, disconnect, CDR), the handler's own work and
// its Redis round trips, without HTTP.
func BenchmarkPushes(b *testing.B) {
	_, rdb := testredis.Real(b)
	e := newPushEnv(b, rdb)
	const perCall = 5
	type call struct{ bodies [perCall][2]string }
	calls := make([]call, b.N/perCall+1)
	for i := range calls {
		_, ud := e.newJob(b)
		s := "S-" + ud[:24]
		calls[i].bodies = [perCall][2]string{
			{"/status", statusBody("callout", s, ud, "")},
			{"/status", statusBody("alerting", s, ud, "")},
			{"/status", statusBody("answer", s, ud, "")},
			{"/status", statusBody("disconnect", s, ud, `,"stateCode":0`)},
			{"/fee", feeBody(s, ud)},
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := calls[i/perCall].bodies[i%perCall]
		e.post(b, p[0], p[1])
	}
}

// BenchmarkDisconnectStore compares, in the same run, what a disconnect push asked of the store
// before (Store.Get to learn whether the call was answered, then Transition, which sends back and
// decodes the record) with what it asks now (one Apply: the script decides, and the record comes
// back only because the job became final). Real Redis at REDIS_URL.
func BenchmarkDisconnectStore(b *testing.B) {
	_, rdb := testredis.Real(b)
	e := newPushEnv(b, rdb)
	ctx := b.Context()
	answered := func(b *testing.B) []string {
		b.Helper()
		ids := make([]string, b.N)
		for i := range ids {
			ids[i], _ = e.newJob(b)
			if _, _, err := e.store.Transition(ctx, ids[i], jobstatus.Transition{To: jobstatus.StateAnswered, Source: "status_push", SessionID: "S-" + ids[i]}); err != nil {
				b.Fatal(err)
			}
		}
		return ids
	}
	b.Run("before_get_then_transition", func(b *testing.B) {
		ids := answered(b)
		b.ReportAllocs()
		b.ResetTimer()
		for _, id := range ids {
			rec, err := e.store.Get(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			to := jobstatus.StateNoAnswer
			if rec.State == jobstatus.StateAnswered {
				to = jobstatus.StateCompleted
			}
			if _, _, err := e.store.Transition(ctx, id, jobstatus.Transition{To: to, Source: "status_push", SessionID: "S-" + id, Attempt: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("after_apply", func(b *testing.B) {
		ids := answered(b)
		b.ReportAllocs()
		b.ResetTimer()
		for _, id := range ids {
			if _, out, err := e.store.Apply(ctx, id, jobstatus.Transition{To: jobstatus.StateNoAnswer, AnsweredTo: jobstatus.StateCompleted,
				Source: "status_push", SessionID: "S-" + id, Attempt: 1, RefuseOlderAttempt: true}); err != nil || !out.BecameFinal {
				b.Fatalf("final %v err %v", out.BecameFinal, err)
			}
		}
	})
}
