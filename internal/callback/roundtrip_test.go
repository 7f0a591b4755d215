package callback

import (
	"context"
	"fmt"
	"github.com/voicequeue/voicequeue/internal/redisstats"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// pushEnv is a push handler on its own Redis, with the tagger that signs its userData.
type pushEnv struct {
	store   *jobstatus.Store
	tagger  *queue.Tagger
	mux     *http.ServeMux
	counter *redisstats.RoundTrips
	ended   atomic.Int64
}

const testSecret = "push-secret-for-tests"

func newPushEnv(t testing.TB, rdb *redis.Client) *pushEnv {
	t.Helper()
	e := &pushEnv{
		store:   jobstatus.New(rdb, jobstatus.Options{}),
		tagger:  queue.NewTagger([]byte("0123456789abcdef0123456789abcdef")),
		mux:     http.NewServeMux(),
		counter: &redisstats.RoundTrips{},
	}
	rdb.AddHook(e.counter)
	h, err := New(Options{
		Store: e.store, Tagger: e.tagger, Secret: testSecret,
		Finisher: &queue.Finisher{Notifier: notifierFunc(func(context.Context, jobstatus.Record) error {
			e.ended.Add(1)
			return nil
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Register(e.mux)
	return e
}

type notifierFunc func(context.Context, jobstatus.Record) error

func (f notifierFunc) NotifyResult(ctx context.Context, rec jobstatus.Record) error {
	return f(ctx, rec)
}

// newJob creates a job already dialled (dispatching, attempt 1) and returns its ID and userData.
func (e *pushEnv) newJob(t testing.TB) (string, string) {
	t.Helper()
	ctx := context.Background()
	rec, _, err := e.store.Create(ctx, jobstatus.Record{
		Kind: "notify", Queue: "notify", To: "+86138****0001", CallbackURL: "https://example.test/hook",
		DispatchBy: time.Now().Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.BeginDial(ctx, rec.ID, jobstatus.NextAttempt, time.Now()); err != nil {
		t.Fatal(err)
	}
	return rec.ID, e.tagger.Tag(queue.Reference{JobID: rec.ID, Attempt: 1})
}

func (e *pushEnv) post(t testing.TB, path, body string) {
	t.Helper()
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/callbacks/"+testSecret+path, strings.NewReader(body)))
	if w.Code != http.StatusOK {
		t.Fatalf("POST %s = %d %s", path, w.Code, w.Body)
	}
}

func statusBody(event, session, userData, extra string) string {
	return fmt.Sprintf(`{"eventType":%q,"statusInfo":{"sessionId":%q,"timestamp":"2026-11-25 10:00:00","userData":%q%s}}`,
		event, session, userData, extra)
}

func feeBody(session, userData string) string {
	return fmt.Sprintf(`{"eventType":"fee","feeLst":[{"direction":0,"spId":"sp","appKey":"k","bindNum":"+8675500000001","sessionId":%q,"callerNum":"+8675500000001","calleeNum":"+8613800000009","callOutStartTime":"2026-11-25 10:00:00","callOutAnswerTime":"2026-11-25 10:00:08","callEndTime":"2026-11-25 10:00:20","ulFailReason":0,"serviceType":"001","userData":%q}]}`,
		session, userData)
}

// TestRoundTripsPerPush counts the Redis round trips and commands each push of an answered call
// costs at the push handler (the Finisher here has no Gate: the final push's slot release, one
// more round trip in production, is not counted).
func TestRoundTripsPerPush(t *testing.T) {
	_, rdb := testredis.Mini(t)
	e := newPushEnv(t, rdb)
	// Warm up: the first use of each script on a server costs a NOSCRIPT reply.
	id, ud := e.newJob(t)
	for _, ev := range []string{"callout", "disconnect"} {
		e.post(t, "/status", statusBody(ev, "warm", ud, `,"stateCode":0`))
	}
	e.post(t, "/fee", feeBody("warm", ud))
	_ = id

	id, ud = e.newJob(t)
	const session = "1200_366_0_20250301090000@callenabler.home1.com"
	steps := []struct {
		name, path, body string
		wantTrips        int64
	}{
		{"callout", "/status", statusBody("callout", session, ud, ""), 1},
		{"alerting", "/status", statusBody("alerting", session, ud, ""), 1},
		{"answer", "/status", statusBody("answer", session, ud, ""), 1},
		{"disconnect", "/status", statusBody("disconnect", session, ud, `,"stateCode":0`), 1},
		{"cdr", "/fee", feeBody(session, ud), 1},
		{"cdr_without_userdata", "/fee", feeBody(session, ""), 2}, // + LookupSession
		{"late_alerting", "/status", statusBody("alerting", session, ud, ""), 1},
	}
	e.counter.Take()
	for _, st := range steps {
		e.post(t, st.path, st.body)
		trips, cmds := e.counter.Take()
		t.Logf("%-22s %d round trip(s), %d command(s)", st.name, trips, cmds)
		if trips != st.wantTrips {
			t.Errorf("%s: %d round trips, want %d", st.name, trips, st.wantTrips)
		}
	}
	rec, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != jobstatus.StateCompleted || rec.CDR == nil || e.ended.Load() != 2 {
		t.Errorf("state %s cdr %v ended %d, want completed with a CDR, 2 jobs ended", rec.State, rec.CDR, e.ended.Load())
	}
}
