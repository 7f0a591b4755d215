// Package queuemetrics exports the state of the asynq queues to Prometheus at scrape time: how many
// tasks each queue holds in each state, how old its oldest pending task is, and whether it is
// paused. It reads Redis through asynq's Inspector on every scrape, with a time bound, and at most
// one reading in flight however many scrapes arrive at once.
//
// Exported series (queue is an asynq queue name: verify, notify, bulk, webhooks, …):
//
//	voicequeue_queue_tasks{queue,state}     tasks by state: pending, active, scheduled, retry, archived, completed
//	voicequeue_queue_latency_seconds{queue} age of the oldest pending task (0 when none is pending)
//	voicequeue_queue_paused{queue}          1 while the queue is paused, else 0
//	voicequeue_queue_stats_up               1 when the last reading covered every queue in time, else 0
//	voicequeue_queue_stats_duration_seconds how long the last finished reading took
//
// Every process that registers the collector reads the same Redis, so dashboards aggregate the
// queue series with max by (queue, state), never sum.
package queuemetrics

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Defaults of the Options fields left zero.
const (
	DefaultTimeout   = 2 * time.Second
	DefaultMaxQueues = 32
)

// States are the values of the state label, in the order they are exported.
var States = []string{"pending", "active", "scheduled", "retry", "archived", "completed"}

// Inspector is the part of *asynq.Inspector the collector uses.
type Inspector interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// Options configure a Collector.
type Options struct {
	// Queues are always exported, with zeros while Redis does not know them yet, so that alerts
	// and dashboards see the series from the start (voicequeue's: verify, notify, bulk, webhooks).
	Queues []string
	// Timeout bounds how long one scrape waits for Redis (default 2 s). A scrape that runs out of
	// time exports voicequeue_queue_stats_up 0 and no queue series; the reading goes on in the
	// background (bounded by the Redis client's own timeouts) and the next scrape joins it.
	Timeout time.Duration
	// MaxQueues caps how many queues are exported (default 32): Options.Queues first, then the
	// others Redis knows in name order. Queue names come from Redis, so this bounds the series.
	MaxQueues int
	// Logger receives inspection errors, at most one a minute (nil: discarded).
	Logger *slog.Logger
	// Now is the clock for the duration gauge (default time.Now).
	Now func() time.Time
}

// Collector is a prometheus.Collector over asynq's Inspector. Create it with New.
type Collector struct {
	in       Inspector
	o        Options
	every    rate.Sometimes
	tasks    *prometheus.Desc
	latency  *prometheus.Desc
	paused   *prometheus.Desc
	up       *prometheus.Desc
	duration *prometheus.Desc

	mu       sync.Mutex
	inflight *reading
	lastDur  float64
}

// reading is one pass over the queues; done is closed when it has finished.
type reading struct {
	done   chan struct{}
	queues []*asynq.QueueInfo
	ok     bool
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a collector reading through in (an *asynq.Inspector built with
// asynq.NewInspectorFromRedisClient on the process's shared client). Register it on the process's
// registry.
func New(in Inspector, o Options) *Collector {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxQueues <= 0 {
		o.MaxQueues = DefaultMaxQueues
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Queues = slices.Clone(o.Queues)
	return &Collector{
		in:    in,
		o:     o,
		every: rate.Sometimes{First: 1, Interval: time.Minute},
		tasks: prometheus.NewDesc("voicequeue_queue_tasks",
			"Tasks in each asynq queue, by state (pending, active, scheduled, retry, archived, completed).",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("voicequeue_queue_latency_seconds",
			"Age of the oldest pending task in each asynq queue (0 when none is pending).",
			[]string{"queue"}, nil),
		paused: prometheus.NewDesc("voicequeue_queue_paused",
			"1 while the asynq queue is paused (an account-class provider reply pauses it), else 0.",
			[]string{"queue"}, nil),
		up: prometheus.NewDesc("voicequeue_queue_stats_up",
			"1 when the last scrape read every queue from Redis within its time limit, else 0.",
			nil, nil),
		duration: prometheus.NewDesc("voicequeue_queue_stats_duration_seconds",
			"Time the last finished reading of the queues from Redis took.",
			nil, nil),
	}
}

// Describe sends the descriptors of every series the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tasks, c.latency, c.paused, c.up, c.duration} {
		ch <- d
	}
}

// Collect reads the queues (or joins the reading already in flight) and sends their series, or
// only voicequeue_queue_stats_up 0 when the reading fails or does not finish within the timeout.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	r := c.inflight
	if r == nil {
		r = &reading{done: make(chan struct{})}
		c.inflight = r
		go c.read(r)
	}
	c.mu.Unlock()

	timer := time.NewTimer(c.o.Timeout)
	defer timer.Stop()
	select {
	case <-r.done:
	case <-timer.C:
		c.every.Do(func() {
			c.o.Logger.Warn("queue metrics: Redis did not answer in time", "timeout", c.o.Timeout)
		})
		c.send(ch, nil, false)
		return
	}
	c.send(ch, r.queues, r.ok)
}

func (c *Collector) send(ch chan<- prometheus.Metric, queues []*asynq.QueueInfo, ok bool) {
	for _, q := range queues {
		counts := []int{q.Pending, q.Active, q.Scheduled, q.Retry, q.Archived, q.Completed}
		for i, state := range States {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(counts[i]), q.Queue, state)
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, max(q.Latency, 0).Seconds(), q.Queue)
		paused := 0.0
		if q.Paused {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(c.paused, prometheus.GaugeValue, paused, q.Queue)
	}
	up := 0.0
	if ok {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	c.mu.Lock()
	last := c.lastDur
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.duration, prometheus.GaugeValue, last)
}

// read fills r from Redis and then closes r.done. A queue that fails to read is left out and
// makes the reading not ok; a configured queue that Redis has never seen is exported with zeros.
func (c *Collector) read(r *reading) {
	start := c.o.Now()
	defer func() {
		c.mu.Lock()
		c.inflight = nil
		c.lastDur = c.o.Now().Sub(start).Seconds()
		c.mu.Unlock()
		close(r.done)
	}()
	names, known, err := c.queueNames()
	if err != nil {
		c.logError("list queues", err)
		return
	}
	r.ok = true
	for _, name := range names {
		if !known[name] {
			r.queues = append(r.queues, &asynq.QueueInfo{Queue: name})
			continue
		}
		info, err := c.in.GetQueueInfo(name)
		if err != nil {
			c.logError("read queue "+name, err)
			r.ok = false
			continue
		}
		r.queues = append(r.queues, info)
	}
}

// queueNames returns the configured queues and then the others Redis lists, at most MaxQueues,
// and the set of those Redis knows.
func (c *Collector) queueNames() (names []string, known map[string]bool, err error) {
	found, err := c.in.Queues()
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(found)
	known = make(map[string]bool, len(found))
	for _, q := range found {
		known[q] = true
	}
	seen := make(map[string]bool, len(c.o.Queues)+len(found))
	for _, list := range [][]string{c.o.Queues, found} {
		for _, q := range list {
			if !seen[q] && len(names) < c.o.MaxQueues {
				seen[q] = true
				names = append(names, q)
			}
		}
	}
	return names, known, nil
}

func (c *Collector) logError(what string, err error) {
	c.every.Do(func() { c.o.Logger.Warn("queue metrics: "+what, "err", err) })
}
