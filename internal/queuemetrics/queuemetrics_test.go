package queuemetrics_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/queuemetrics"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// backends runs a test against miniredis and against the real Redis.
var backends = []struct {
	name string
	open func(testing.TB) redis.UniversalClient
}{
	{"miniredis", func(tb testing.TB) redis.UniversalClient { _, rdb := testredis.Mini(tb); return rdb }},
	{"redis", func(tb testing.TB) redis.UniversalClient { _, rdb := testredis.Real(tb); return rdb }},
}

func TestCollectorReportsEveryState(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rdb := b.open(t)
			populate(t, rdb)
			c := queuemetrics.New(asynq.NewInspectorFromRedisClient(rdb), queuemetrics.Options{
				Queues: []string{"verify", "notify", "bulk", "webhooks"},
			})
			const want = `
# HELP voicequeue_queue_paused 1 while the asynq queue is paused (an account-class provider reply pauses it), else 0.
# TYPE voicequeue_queue_paused gauge
voicequeue_queue_paused{queue="bulk"} 0
voicequeue_queue_paused{queue="notify"} 1
voicequeue_queue_paused{queue="verify"} 0
voicequeue_queue_paused{queue="webhooks"} 0
voicequeue_queue_paused{queue="work"} 0
# HELP voicequeue_queue_stats_up 1 when the last scrape read every queue from Redis within its time limit, else 0.
# TYPE voicequeue_queue_stats_up gauge
voicequeue_queue_stats_up 1
# HELP voicequeue_queue_tasks Tasks in each asynq queue, by state (pending, active, scheduled, retry, archived, completed).
# TYPE voicequeue_queue_tasks gauge
voicequeue_queue_tasks{queue="bulk",state="active"} 0
voicequeue_queue_tasks{queue="bulk",state="archived"} 1
voicequeue_queue_tasks{queue="bulk",state="completed"} 0
voicequeue_queue_tasks{queue="bulk",state="pending"} 0
voicequeue_queue_tasks{queue="bulk",state="retry"} 0
voicequeue_queue_tasks{queue="bulk",state="scheduled"} 0
voicequeue_queue_tasks{queue="notify",state="active"} 0
voicequeue_queue_tasks{queue="notify",state="archived"} 0
voicequeue_queue_tasks{queue="notify",state="completed"} 0
voicequeue_queue_tasks{queue="notify",state="pending"} 1
voicequeue_queue_tasks{queue="notify",state="retry"} 0
voicequeue_queue_tasks{queue="notify",state="scheduled"} 0
voicequeue_queue_tasks{queue="verify",state="active"} 0
voicequeue_queue_tasks{queue="verify",state="archived"} 0
voicequeue_queue_tasks{queue="verify",state="completed"} 0
voicequeue_queue_tasks{queue="verify",state="pending"} 2
voicequeue_queue_tasks{queue="verify",state="retry"} 0
voicequeue_queue_tasks{queue="verify",state="scheduled"} 1
voicequeue_queue_tasks{queue="webhooks",state="active"} 0
voicequeue_queue_tasks{queue="webhooks",state="archived"} 0
voicequeue_queue_tasks{queue="webhooks",state="completed"} 0
voicequeue_queue_tasks{queue="webhooks",state="pending"} 0
voicequeue_queue_tasks{queue="webhooks",state="retry"} 0
voicequeue_queue_tasks{queue="webhooks",state="scheduled"} 0
voicequeue_queue_tasks{queue="work",state="active"} 1
voicequeue_queue_tasks{queue="work",state="archived"} 0
voicequeue_queue_tasks{queue="work",state="completed"} 1
voicequeue_queue_tasks{queue="work",state="pending"} 0
voicequeue_queue_tasks{queue="work",state="retry"} 1
voicequeue_queue_tasks{queue="work",state="scheduled"} 0
`
			if err := testutil.CollectAndCompare(c, strings.NewReader(want),
				"voicequeue_queue_tasks", "voicequeue_queue_paused", "voicequeue_queue_stats_up"); err != nil {
				t.Error(err)
			}

			latency := gaugesByQueue(t, c, "voicequeue_queue_latency_seconds")
			// The oldest pending notify task was backdated by 90 s; asynq measures its age on the
			// wall clock at scrape time, so allow for the time the test itself takes.
			if got := latency["notify"]; got < 90 || got > 150 {
				t.Errorf("latency of notify = %v s, want about 90", got)
			}
			for _, q := range []string{"bulk", "webhooks", "work"} {
				if got := latency[q]; got != 0 {
					t.Errorf("latency of %s (nothing pending) = %v, want 0", q, got)
				}
			}
			if got := latency["verify"]; got < 0 || got > 60 {
				t.Errorf("latency of verify (tasks just enqueued) = %v s, want a few seconds at most", got)
			}
		})
	}
}

// populate puts tasks in every state: verify 2 pending and 1 scheduled; notify 1 pending
// (backdated by 90 s) and paused; bulk 1 archived; work 1 active, 1 retry and 1 completed, by a
// real asynq server. webhooks stays unknown to Redis.
func populate(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	client := asynq.NewClientFromRedisClient(rdb)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	enqueue := func(queue, typ string, opts ...asynq.Option) *asynq.TaskInfo {
		t.Helper()
		info, err := client.Enqueue(asynq.NewTask(typ, nil), append(opts, asynq.Queue(queue))...)
		if err != nil {
			t.Fatalf("enqueue on %s: %v", queue, err)
		}
		return info
	}
	enqueue("verify", "t")
	enqueue("verify", "t")
	enqueue("verify", "t", asynq.ProcessIn(time.Hour))
	old := enqueue("notify", "t")
	// asynq records when a task became pending in its hash; backdate it to give the queue a known age.
	since := time.Now().Add(-90 * time.Second).UnixNano()
	if err := rdb.HSet(context.Background(), "asynq:{notify}:t:"+old.ID, "pending_since", since).Err(); err != nil {
		t.Fatal(err)
	}
	if err := insp.PauseQueue("notify"); err != nil {
		t.Fatal(err)
	}
	archived := enqueue("bulk", "t")
	if err := insp.ArchiveTask("bulk", archived.ID); err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc("ok", func(context.Context, *asynq.Task) error { return nil })
	mux.HandleFunc("fail", func(context.Context, *asynq.Task) error { return errors.New("fails on purpose") })
	mux.HandleFunc("block", func(ctx context.Context, _ *asynq.Task) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency:       3,
		Queues:            map[string]int{"work": 1},
		TaskCheckInterval: 10 * time.Millisecond,
		RetryDelayFunc:    func(int, error, *asynq.Task) time.Duration { return time.Hour },
		ShutdownTimeout:   2 * time.Second,
		LogLevel:          asynq.FatalLevel,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { close(release); srv.Shutdown() }) }
	t.Cleanup(stop)
	enqueue("work", "ok", asynq.Retention(time.Hour))
	enqueue("work", "fail", asynq.MaxRetry(1))
	enqueue("work", "block")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		info, err := insp.GetQueueInfo("work")
		if err == nil && info.Completed == 1 && info.Retry == 1 && info.Active == 1 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the server did not bring the work queue to 1 completed, 1 retry, 1 active: %+v, %v", info, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func gaugesByQueue(t *testing.T, c prometheus.Collector, name string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			out[label(m, "queue")] = m.GetGauge().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestCollectorLint(t *testing.T) {
	_, rdb := testredis.Mini(t)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(queuemetrics.New(asynq.NewInspectorFromRedisClient(rdb), queuemetrics.Options{Queues: []string{"verify"}}))
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// fakeInspector answers from fixed data; Queues blocks while block is open.
type fakeInspector struct {
	block     chan struct{}
	queues    []string
	queuesErr error
	infoErr   map[string]error
	calls     atomic.Int32
}

func (f *fakeInspector) Queues() ([]string, error) {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
	}
	return f.queues, f.queuesErr
}

func (f *fakeInspector) GetQueueInfo(q string) (*asynq.QueueInfo, error) {
	if err := f.infoErr[q]; err != nil {
		return nil, err
	}
	return &asynq.QueueInfo{Queue: q, Pending: len(q)}, nil
}

func TestCollectorQueueSelection(t *testing.T) {
	tests := []struct {
		name    string
		opts    queuemetrics.Options
		fake    *fakeInspector
		want    []string // queues exported, in order of first appearance
		wantUp  float64
		pending map[string]float64
	}{
		{
			name:    "configured queues first, then the others Redis lists, in name order",
			opts:    queuemetrics.Options{Queues: []string{"verify", "notify"}},
			fake:    &fakeInspector{queues: []string{"zeta", "notify", "alpha"}},
			want:    []string{"verify", "notify", "alpha", "zeta"},
			wantUp:  1,
			pending: map[string]float64{"verify": 0, "notify": 6, "alpha": 5, "zeta": 4},
		},
		{
			name:   "at most MaxQueues, configured ones kept",
			opts:   queuemetrics.Options{Queues: []string{"verify"}, MaxQueues: 2},
			fake:   &fakeInspector{queues: []string{"c", "b", "a"}},
			want:   []string{"verify", "a"},
			wantUp: 1,
		},
		{
			name:   "listing fails: no queue series, up 0",
			opts:   queuemetrics.Options{Queues: []string{"verify"}},
			fake:   &fakeInspector{queuesErr: errors.New("connection refused")},
			want:   nil,
			wantUp: 0,
		},
		{
			name:   "one queue fails: the others are exported, up 0",
			opts:   queuemetrics.Options{},
			fake:   &fakeInspector{queues: []string{"a", "b"}, infoErr: map[string]error{"a": errors.New("timeout")}},
			want:   []string{"b"},
			wantUp: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, up, pending := scrape(t, queuemetrics.New(tt.fake, tt.opts))
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("queues = %v, want %v", got, tt.want)
			}
			if up != tt.wantUp {
				t.Errorf("up = %v, want %v", up, tt.wantUp)
			}
			for q, want := range tt.pending {
				if pending[q] != want {
					t.Errorf("pending of %s = %v, want %v", q, pending[q], want)
				}
			}
		})
	}
}

// scrape collects c once and returns the queues in the order they came, the up gauge and the
// pending count per queue.
func scrape(t *testing.T, c prometheus.Collector) (queues []string, up float64, pending map[string]float64) {
	t.Helper()
	ch := make(chan prometheus.Metric, 256)
	c.Collect(ch)
	close(ch)
	pending = map[string]float64{}
	seen := map[string]bool{}
	up = -1
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		desc := m.Desc().String()
		switch {
		case strings.Contains(desc, `"voicequeue_queue_stats_up"`):
			up = pb.GetGauge().GetValue()
		case strings.Contains(desc, `"voicequeue_queue_tasks"`):
			q := label(&pb, "queue")
			if !seen[q] {
				seen[q] = true
				queues = append(queues, q)
			}
			if label(&pb, "state") == "pending" {
				pending[q] = pb.GetGauge().GetValue()
			}
		}
	}
	return queues, up, pending
}

func TestCollectorBoundsEachScrape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeInspector{block: make(chan struct{}), queues: []string{"verify"}}
		c := queuemetrics.New(fake, queuemetrics.Options{Timeout: time.Second})

		start := time.Now()
		queues, up, _ := scrape(t, c)
		if len(queues) != 0 || up != 0 {
			t.Errorf("scrape while Redis hangs: queues %v, up %v; want none and 0", queues, up)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("scrape waited %v, want the 1s timeout", waited)
		}

		// Scrapes arriving while the reading hangs join it instead of starting more.
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { scrape(t, c) })
		}
		wg.Wait()
		if n := fake.calls.Load(); n != 1 {
			t.Errorf("readings started = %d, want 1 while the first is in flight", n)
		}

		close(fake.block)
		synctest.Wait()
		queues, up, pending := scrape(t, c)
		if strings.Join(queues, ",") != "verify" || up != 1 || pending["verify"] != 6 {
			t.Errorf("scrape after Redis answers: queues %v, up %v, pending %v", queues, up, pending)
		}
		if n := fake.calls.Load(); n != 2 {
			t.Errorf("readings started = %d, want 2", n)
		}
	})
}

func BenchmarkCollect(b *testing.B) {
	_, rdb := testredis.Real(b)
	client := asynq.NewClientFromRedisClient(rdb)
	for _, q := range []string{"verify", "notify", "bulk", "webhooks"} {
		for range 100 {
			if _, err := client.Enqueue(asynq.NewTask("t", nil), asynq.Queue(q)); err != nil {
				b.Fatal(err)
			}
		}
	}
	c := queuemetrics.New(asynq.NewInspectorFromRedisClient(rdb), queuemetrics.Options{})
	ch := make(chan prometheus.Metric, 256)
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
}
