package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/ratelimit"
)

// A worker checks the call policies in order before dialling: the calling window, the callee's
// caps, a rate token and a concurrent-call slot. Anything but a "no" from a cap defers the job.
func Example() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	mr.SetTime(time.Date(2025, 6, 2, 2, 0, 0, 0, time.UTC)) // 10:00 in Shanghai
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	const appKey, jobID, callee = "app-1", "job-42", "+8613800000001"
	lim := ratelimit.Limit{Rate: 100, Burst: 1} // VOICEQUEUE_CALL_RATE, VOICEQUEUE_CALL_BURST

	open, at := ratelimit.DefaultWindow().NextOpen(time.Date(2025, 6, 2, 2, 0, 0, 0, time.UTC), ratelimit.ZonesForNumber(callee))
	fmt.Println("window open:", open, at.Format(time.TimeOnly))

	callees := ratelimit.NewCalleeLimiter(rdb, []byte("secret hash key"))
	d, err := callees.Check(ctx, "notify", callee, ratelimit.DefaultCalleeCaps()["notify"], jobID+":1")
	fmt.Println("callee allowed:", d.Allowed, err)

	limiter := ratelimit.NewLimiter(rdb, ratelimit.LimiterOptions{Reserve: 0.2})
	r, err := limiter.Wait(ctx, appKey, lim, ratelimit.PriorityNormal, 500*time.Millisecond)
	fmt.Println("token:", r.Allowed, err)

	slots := ratelimit.NewSlots(rdb, ratelimit.SlotsOptions{})
	ok, _, err := slots.Acquire(ctx, appKey, jobID, 20, 10*time.Minute) // VOICEQUEUE_MAX_CONCURRENT_CALLS
	fmt.Println("slot:", ok, err)

	// … place the call; when its end is pushed:
	released, err := slots.Release(ctx, appKey, jobID)
	fmt.Println("released:", released, err)
	// Output:
	// window open: true 02:00:00
	// callee allowed: true <nil>
	// token: true <nil>
	// slot: true <nil>
	// released: true <nil>
}

func ExampleWindow_NextOpen() {
	w, err := ratelimit.ParseWindow("08:00-21:00")
	if err != nil {
		panic(err)
	}
	// 22:00 in New York on the evening before DST starts.
	now := time.Date(2025, 3, 9, 3, 0, 0, 0, time.UTC)
	open, at := w.NextOpen(now, ratelimit.ZonesForNumber("+12125550123"))
	ny, _ := time.LoadLocation("America/New_York")
	fmt.Println(open, at.In(ny).Format(time.DateTime+" MST"))
	// Output: false 2025-03-09 08:00:00 EDT
}

func ExampleParseCalleeCaps() {
	caps, err := ratelimit.ParseCalleeCaps("3/24h,10/30d")
	if err != nil {
		panic(err)
	}
	for _, c := range caps {
		fmt.Println(c, c.Reason())
	}
	// Output:
	// 3/24h callee_cap_3_per_24h
	// 10/720h callee_cap_10_per_720h
}

func ExampleAdaptive() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	start := time.Date(2025, 6, 2, 2, 0, 0, 0, time.UTC)
	mr.SetTime(start)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	configured := ratelimit.Limit{Rate: 100, Burst: 1}
	aimd := ratelimit.NewAdaptive(rdb, ratelimit.AdaptiveOptions{}) // ×0.5, 60 s cool-down, +10/s per 5 s
	_ = aimd.Decrease(ctx, "app-1", configured)                     // the provider said 1013001
	for _, after := range []time.Duration{0, time.Minute, 80 * time.Second} {
		mr.SetTime(start.Add(after))
		lim, _ := aimd.Effective(ctx, "app-1", configured)
		fmt.Printf("after %v: %v\n", after, lim)
	}
	// Output:
	// after 0s: 50/s burst 1
	// after 1m0s: 60/s burst 1
	// after 1m20s: 100/s burst 1
}
