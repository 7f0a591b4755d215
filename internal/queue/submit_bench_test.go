package queue

import (
	"fmt"
	"sync"
	"testing"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// BenchmarkSubmitBatch measures SubmitBatch of 1,000 valid bulk notify jobs on the real Redis at
// REDIS_URL (records and asynq tasks); ns/op is per batch, jobs/s is reported. Idempotency keys
// are unique per job.
func BenchmarkSubmitBatch(b *testing.B) {
	_, rdb := testredis.Real(b)
	sub, err := NewSubmitter(SubmitterOptions{Redis: rdb, DefaultRegion: "CN", CodeKey: DeriveKey("s", "code")})
	if err != nil {
		b.Fatal(err)
	}
	bulk := true
	// per_job is how SubmitBatch worked before its records were pipelined: Submit's path (one
	// Create, one enqueue) for each job on 16 goroutines. Same run, same Redis, for comparison.
	variants := []struct {
		name string
		fn   func(b *testing.B, sub *Submitter, reqs []Request) ([]BatchItem, error)
	}{
		{"pipelined", func(b *testing.B, sub *Submitter, reqs []Request) ([]BatchItem, error) {
			return sub.SubmitBatch(b.Context(), reqs)
		}},
		{"per_job", func(b *testing.B, sub *Submitter, reqs []Request) ([]BatchItem, error) {
			items := make([]BatchItem, len(reqs))
			var wg sync.WaitGroup
			next := make(chan int)
			for range 16 {
				wg.Go(func() {
					for i := range next {
						if _, err := sub.Submit(b.Context(), reqs[i]); err != nil {
							items[i].Error = err.Error()
						}
					}
				})
			}
			for i := range reqs {
				next <- i
			}
			close(next)
			wg.Wait()
			return items, nil
		}},
	}
	for _, v := range variants {
		for _, withKeys := range []bool{false, true} {
			submit := v.fn
			b.Run(fmt.Sprintf("%s/idempotency_keys=%v", v.name, withKeys), func(b *testing.B) {
				prefix, n := jobstatus.NewID(), 0 // keys never seen before
				reqs := make([]Request, MaxBatch)
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					for i := range reqs {
						n++
						reqs[i] = Request{Kind: "notify", To: fmt.Sprintf("+86138%08d", n%100000000), VoiceFile: "a.wav", Bulk: &bulk}
						if withKeys {
							reqs[i].IdempotencyKey = fmt.Sprintf("%s-%d", prefix, n)
						}
					}
					b.StartTimer()
					items, err := submit(b, sub, reqs)
					if err != nil {
						b.Fatal(err)
					}
					for _, it := range items {
						if it.Error != "" {
							b.Fatalf("item %d: %s", it.Index, it.Error)
						}
					}
				}
				b.ReportMetric(float64(b.N*MaxBatch)/b.Elapsed().Seconds(), "jobs/s")
			})
		}
	}
}
