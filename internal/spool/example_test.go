package spool_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/voicequeue/voicequeue/internal/spool"
)

// While Redis is unreachable the gateway spools each push (synced to disk) and still answers
// 200; the replayer applies the spooled pushes in order once Redis is back.
func Example() {
	dir, err := os.MkdirTemp("", "spool-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	sp, err := spool.Open(spool.Options{Dir: dir, MaxBytes: 64 << 20}) // VOICEQUEUE_SPOOL_DIR, VOICEQUEUE_SPOOL_MAX_BYTES
	if err != nil {
		panic(err)
	}
	defer sp.Close()

	// Redis is down: record the pushes locally.
	for _, p := range []struct{ kind, body string }{
		{"status", `{"eventType":"callout"}`},
		{"status", `{"eventType":"answer"}`},
		{"fee", `{"eventType":"fee"}`},
	} {
		if err := sp.Append(p.kind, []byte(p.body)); errors.Is(err, spool.ErrFull) {
			fmt.Println("full: answer 503")
		}
	}
	fmt.Println("spooled:", sp.Len())

	// Redis is back: replay in order. apply must be idempotent (job-state transitions are).
	n, err := sp.Replay(context.Background(), func(ctx context.Context, r spool.Record) error {
		fmt.Println("apply", r.Kind, string(r.Body))
		return nil
	})
	fmt.Println("replayed:", n, err, "left:", sp.Len())
	// Output:
	// spooled: 3
	// apply status {"eventType":"callout"}
	// apply status {"eventType":"answer"}
	// apply fee {"eventType":"fee"}
	// replayed: 3 <nil> left: 0
}
