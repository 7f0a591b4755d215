package queue

import (
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// BenchmarkProcessTask is one task of the worker's hot path on the real Redis: decode the job,
// record the dial (BeginDial), send to a provider that accepts at once (no network), record
// `calling`. The gate and the network are measured elsewhere (ratelimit, voice).
func BenchmarkProcessTask(b *testing.B) {
	if testing.Short() {
		b.Skip("needs the real Redis")
	}
	_, rdb := testredis.Real(b)
	store := jobstatus.New(rdb, jobstatus.Options{})
	sealer, err := NewCodeSealer(DeriveKey("s", "code"))
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(HandlerOptions{
		Store: store, Dialer: &fakeDialer{}, Tagger: NewTagger(DeriveKey("s", "userdata")), Sealer: sealer,
		DisplayNumber: "+8675500000001", StatusURL: "http://gw/callbacks/x/status", FeeURL: "http://gw/callbacks/x/fee",
	})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	tasks := make([]Job, b.N)
	recs := make([]jobstatus.Record, b.N)
	for i := range tasks {
		tasks[i] = Job{ID: jobstatus.NewID(), Kind: KindNotify, Queue: QueueNotify, To: "+8613800000001",
			Play: []PlayItem{{TemplateID: "tpl_bill", TemplateParams: []string{"42.50"}}}, CreatedAt: now, DispatchBy: now.Add(time.Hour)}
		recs[i] = jobstatus.Record{ID: tasks[i].ID, Kind: "notify", Queue: QueueNotify, To: "+86138****0001", DispatchBy: tasks[i].DispatchBy}
	}
	for _, res := range store.CreateMany(b.Context(), recs) {
		if res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		task, err := NewTask(tasks[i], TaskOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := h.ProcessTask(b.Context(), task); err != nil {
			b.Fatal(err)
		}
	}
}
