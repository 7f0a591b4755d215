package breaker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/breaker"
)

// Two workers share one breaker through Redis. A run of transient provider failures in one of
// them pauses dialling in both; after the cool-down one probe call goes through, and its
// success resumes dialling.
func Example() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	now := time.Date(2025, 6, 2, 2, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	opts := breaker.Options{Threshold: 3, Cooldown: 10 * time.Second, MaxCooldown: 2 * time.Minute, Now: clock}
	w1, w2 := breaker.New(rdb, opts), breaker.New(rdb, opts)

	for range 3 { // e.g. three 503 replies in a row
		w1.Failure(ctx)
	}
	ok, retryAfter := w2.Allow(ctx)
	fmt.Println("worker 2 may dial:", ok, "retry after:", retryAfter, w2.State())

	now = now.Add(10 * time.Second) // the cool-down passes
	mr.FastForward(10 * time.Second)
	ok1, _ := w1.Allow(ctx)
	ok2, _ := w2.Allow(ctx)
	fmt.Println("probe:", ok1, "other:", ok2, w1.State())

	w1.Success(ctx) // the probe call was accepted
	now = now.Add(100 * time.Millisecond)
	ok2, _ = w2.Allow(ctx)
	fmt.Println("worker 2 may dial:", ok2, w2.State())
	// Output:
	// worker 2 may dial: false retry after: 10s open
	// probe: true other: false half_open
	// worker 2 may dial: true closed
}
