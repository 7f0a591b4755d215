package queuemetrics_test

import (
	"fmt"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/queuemetrics"
)

// A process registers the collector on its registry; every scrape then reads the queues.
func Example() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask("voice:verify", nil), asynq.Queue("verify")); err != nil {
		panic(err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(queuemetrics.New(asynq.NewInspectorFromRedisClient(rdb), queuemetrics.Options{
		Queues: []string{"verify", "notify"},
	}))
	n, _ := testutil.GatherAndCount(reg, "voicequeue_queue_tasks")
	fmt.Println("series:", n)
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP voicequeue_queue_paused 1 while the asynq queue is paused (an account-class provider reply pauses it), else 0.
# TYPE voicequeue_queue_paused gauge
voicequeue_queue_paused{queue="notify"} 0
voicequeue_queue_paused{queue="verify"} 0
`), "voicequeue_queue_paused")
	fmt.Println("paused queues compare:", err)
	// Output:
	// series: 12
	// paused queues compare: <nil>
}
