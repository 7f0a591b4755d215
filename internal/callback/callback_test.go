package callback

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/jobstatus"
	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// TestDisconnect: the disconnect push's outcome depends on whether the call was answered (decided
// in the transition script, on the record as it is then), and a disconnect of an earlier attempt
// of a redialled job changes nothing. Runs on miniredis and on the real Redis.
func TestDisconnect(t *testing.T) {
	tests := []struct {
		name       string
		before     []string // status events pushed first
		stateCode  int
		noUserData bool // resolve by the sessionId index instead of userData
		refAttempt int  // attempt in userData; the job is at attempt 1, or 2 with redialled
		redialled  bool
		wantState  jobstatus.State
		wantReason string
		wantEnded  int64
	}{
		{"8017 after answer is completed", []string{"callout", "answer"}, 8017, false, 1, false, jobstatus.StateCompleted, "completed (stateCode 8017)", 1},
		{"8017 while ringing is no answer", []string{"callout", "alerting"}, 8017, false, 1, false, jobstatus.StateNoAnswer, "no_answer (stateCode 8017)", 1},
		{"undocumented code after answer is completed", []string{"answer"}, 9999, false, 1, false, jobstatus.StateCompleted, "completed (stateCode 9999)", 1},
		{"undocumented code unanswered is a failure", []string{"alerting"}, 9999, false, 1, false, jobstatus.StateFailed, "network_failure (stateCode 9999)", 1},
		{"busy", []string{"callout"}, 8102, false, 1, false, jobstatus.StateBusy, "busy (stateCode 8102)", 1},
		{"answered, found by sessionId", []string{"callout", "answer"}, 8017, true, 1, false, jobstatus.StateCompleted, "completed (stateCode 8017)", 1},
		{"earlier attempt of a redialled job is stale", nil, 8102, false, 1, true, jobstatus.StateCalling, "", 0},
		{"current attempt of a redialled job applies", nil, 8102, false, 2, true, jobstatus.StateBusy, "busy (stateCode 8102)", 1},
	}
	backends := map[string]func(t *testing.T) *pushEnv{
		"miniredis": func(t *testing.T) *pushEnv { _, rdb := testredis.Mini(t); return newPushEnv(t, rdb) },
		"redis":     func(t *testing.T) *pushEnv { _, rdb := testredis.Real(t); return newPushEnv(t, rdb) },
	}
	for name, newEnv := range backends {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx := context.Background()
					id, _ := e.newJob(t)
					session := "S-" + id
					if tt.redialled {
						// Attempt 2 is under way with its own call (the worker recorded it).
						if _, _, err := e.store.Transition(ctx, id, jobstatus.Transition{To: jobstatus.StateCalling,
							At: time.Now(), Source: "worker", Attempt: 2, SessionID: session}); err != nil {
							t.Fatal(err)
						}
					}
					ud := e.tagger.Tag(queue.Reference{JobID: id, Attempt: tt.refAttempt})
					for _, ev := range tt.before {
						e.post(t, "/status", statusBody(ev, session, ud, ""))
					}
					if tt.noUserData {
						ud = ""
					}
					ended := e.ended.Load()
					e.post(t, "/status", statusBody("disconnect", session, ud, `,"stateCode":`+itoa(tt.stateCode)))
					rec, err := e.store.Get(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if rec.State != tt.wantState || rec.Reason != tt.wantReason || e.ended.Load()-ended != tt.wantEnded {
						t.Errorf("state %s reason %q ended %d; want %s %q %d", rec.State, rec.Reason,
							e.ended.Load()-ended, tt.wantState, tt.wantReason, tt.wantEnded)
					}
				})
			}
		})
	}
}

func itoa(v int) string { return strconv.Itoa(v) }
