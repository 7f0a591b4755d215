package jobstatus

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// finishedJob drives a job through a whole answered call: six events, a session, digits, a CDR.
func finishedJob(t testing.TB, s *Store) Record {
	t.Helper()
	ctx := context.Background()
	const sess = "1200_366_0_20250301090000@callenabler.home1.com"
	rec, _, err := s.Create(ctx, Record{
		Kind: "notify", Queue: "notify", To: "+86138****0001", CallbackURL: "https://hooks.example.com/voice/result",
		IdempotencyKey: "order-42", CreatedAt: t0, DispatchBy: t0.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, _, err := s.BeginDial(ctx, rec.ID, 1, at(1)); err != nil {
		t.Fatalf("BeginDial: %v", err)
	}
	for _, tr := range []Transition{
		{To: StateCalling, At: at(2), Source: "worker", Attempt: 1, SessionID: sess},
		{To: StateRinging, At: at(4), Source: "status_push", SessionID: sess},
		{To: StateAnswered, At: at(9), Source: "status_push", SessionID: sess},
		{To: StateAnswered, At: at(20), Source: "status_push", SessionID: sess, Digits: "1"},
		{To: StateCompleted, At: at(51), Source: "status_push", SessionID: sess, Detail: "stateCode 0"},
		{To: StateCompleted, At: at(52), Source: "cdr_push", SessionID: sess, CDR: &CDR{
			DurationSeconds: 42, Outcome: "completed", StateCode: intp(0), SIPStatusCode: 200,
			AnsweredAt: ptr(at(9)), EndedAt: ptr(at(51)),
		}},
	} {
		if _, _, err := s.Transition(ctx, rec.ID, tr); err != nil {
			t.Fatalf("Transition %s: %v", tr.To, err)
		}
	}
	rec, err = s.Get(ctx, rec.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return rec
}

func TestRecordJSON(t *testing.T) {
	eachBackend(t, Options{}, func(t *testing.T, e *env) {
		e.clock.Set(at(60))
		rec := finishedJob(t, e.store)
		rec.ID = "j_abcdefghijklmnopqrst" // random per run
		got, err := marshalIndent(rec)
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "record.golden.json")
		if *update && e.mr != nil {
			if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("read golden (run with -update to create it): %v", err)
		}
		if string(got)+"\n" != string(want) {
			t.Errorf("record JSON differs from %s (run with -update if intended):\n%s", golden, got)
		}
	})
}

// TestNoCodeField guards the rule that a verification code is never stored: no field of the
// record, its events or its CDR may carry one.
func TestNoCodeField(t *testing.T) {
	allowed := map[string]bool{"state_code": true, "sip_status_code": true} // provider cause codes
	for _, typ := range []reflect.Type{reflect.TypeFor[Record](), reflect.TypeFor[Event](), reflect.TypeFor[CDR](), reflect.TypeFor[stored]()} {
		for f := range typ.Fields() {
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			lower := strings.ToLower(f.Name + " " + name)
			if (strings.Contains(lower, "code") || strings.Contains(lower, "secret")) && !allowed[name] {
				t.Errorf("%s.%s (json %q) looks like it could hold a code or secret", typ.Name(), f.Name, name)
			}
		}
	}
}

func TestMemoryUsage(t *testing.T) {
	e := newEnv(realForTest(t), nil, Options{})
	rec := finishedJob(t, e.store)
	if len(rec.Events) != 6 || rec.CDR == nil {
		t.Fatalf("want a finished job with 6 events and a CDR, got %d events", len(rec.Events))
	}
	ctx := context.Background()
	key := e.store.keys.job(rec.ID)
	used, err := e.rdb.MemoryUsage(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	raw := e.rdb.Get(ctx, key).Val()
	t.Logf("finished job (6 events, CDR): MEMORY USAGE %d bytes, value %d bytes: %s", used, len(raw), raw)
	var all int64
	for _, k := range []string{key, e.store.keys.idem(rec.IdempotencyKey), e.store.keys.session(rec.SessionID)} {
		n, err := e.rdb.MemoryUsage(ctx, k).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", k, err)
		}
		all += n
	}
	t.Logf("with its idempotency and session index keys: %d bytes", all)
	if used >= 1024 {
		t.Errorf("MEMORY USAGE %d bytes, want well under 1 KiB", used)
	}
}
