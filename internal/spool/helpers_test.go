package spool

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// epoch is where every controlled clock starts.
var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// tickClock is a controlled clock that moves one millisecond each time it is read, so every
// record gets its own append time.
type tickClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *tickClock { return &tickClock{t: epoch} }

func (c *tickClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// count returns how many records at level have a message containing msg.
func (h *logRecorder) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

// openSpool opens a spool in o.Dir (a new temporary directory if empty), closed at the end of
// the test.
func openSpool(t *testing.T, o Options) *Spool {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Now == nil {
		o.Now = newClock().Now
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func closeSpool(t *testing.T, s *Spool) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func body(i int) []byte { return fmt.Appendf(nil, `{"push":%d}`, i) }

func appendN(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Append("status", body(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// collector is an ApplyFunc that keeps what it applied.
type collector struct {
	mu     sync.Mutex
	bodies []string
	recs   []Record
}

func (c *collector) apply(_ context.Context, r Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Body = slices.Clone(r.Body)
	c.recs = append(c.recs, r)
	c.bodies = append(c.bodies, string(r.Body))
	return nil
}

func (c *collector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.bodies)
}

func bodies(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, string(body(i)))
	}
	return out
}

func replayAll(t *testing.T, s *Spool, c *collector) int {
	t.Helper()
	n, err := s.Replay(context.Background(), c.apply)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return n
}

// segmentFiles returns the names and sizes of the segment files in dir.
func segmentFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), segmentSuffix) {
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = info.Size()
		}
	}
	return out
}

// lastNonEmptySegment returns the path of the newest segment file with data in it.
func lastNonEmptySegment(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	for name, size := range segmentFiles(t, dir) {
		if size > 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		t.Fatal("no segment with data")
	}
	slices.Sort(names)
	return filepath.Join(dir, names[len(names)-1])
}
