package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAppendReplayInOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		segmentBytes int64
		n            int
	}{
		{"one segment", 0, 20},
		{"a few records per segment", 100, 50},
		{"records larger than a segment", 8, 10},
		{"empty spool", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := openSpool(t, Options{Dir: dir, SegmentBytes: tt.segmentBytes})
			appendN(t, s, 0, tt.n)
			if got := s.Len(); got != tt.n {
				t.Fatalf("Len after appends = %d, want %d", got, tt.n)
			}
			var c collector
			if n := replayAll(t, s, &c); n != tt.n {
				t.Fatalf("Replay = %d, want %d", n, tt.n)
			}
			if got, want := c.got(), bodies(0, tt.n); !slices.Equal(got, want) {
				t.Fatalf("replayed %q, want %q", got, want)
			}
			for i, r := range c.recs {
				if r.Kind != "status" {
					t.Errorf("record %d kind %q", i, r.Kind)
				}
				if want := epoch.Add(time.Duration(i+1) * time.Millisecond); !r.At.Equal(want) {
					t.Errorf("record %d At = %v, want %v (the append time)", i, r.At, want)
				}
			}
			if got := s.Len(); got != 0 {
				t.Errorf("Len after replay = %d, want 0", got)
			}
			// A drained spool keeps only the empty active segment.
			segs := segmentFiles(t, dir)
			if len(segs) != 1 {
				t.Errorf("segment files after replay: %v, want one", segs)
			}
			for name, size := range segs {
				if size != 0 {
					t.Errorf("segment %s has %d bytes after replay, want 0", name, size)
				}
			}
			if n := replayAll(t, s, &c); n != 0 {
				t.Errorf("second Replay = %d, want 0", n)
			}
		})
	}
}

func TestReplayExactlyOnceAcrossReopen(t *testing.T) {
	t.Parallel()
	errDown := errors.New("redis down")
	tests := []struct {
		name string
		// failAt makes the first replay's apply fail at this record (-1: never).
		failAt      int
		appendAfter int // records appended after the reopen
		segBytes    int64
	}{
		{"all replayed before the reopen", -1, 0, 0},
		{"stopped in the middle", 3, 0, 0},
		{"stopped in the middle, small segments", 5, 0, 60},
		{"stopped at the first", 0, 2, 0},
		{"appends after the reopen", -1, 4, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const n = 8
			dir := t.TempDir()
			s := openSpool(t, Options{Dir: dir, SegmentBytes: tt.segBytes})
			appendN(t, s, 0, n)
			var c collector
			i := 0
			_, err := s.Replay(context.Background(), func(ctx context.Context, r Record) error {
				if i == tt.failAt {
					return errDown
				}
				i++
				return c.apply(ctx, r)
			})
			if tt.failAt >= 0 && !errors.Is(err, errDown) {
				t.Fatalf("Replay error = %v, want %v", err, errDown)
			}
			closeSpool(t, s)

			s = openSpool(t, Options{Dir: dir, SegmentBytes: tt.segBytes})
			left := 0
			if tt.failAt >= 0 {
				left = n - tt.failAt
			}
			if got := s.Len(); got != left {
				t.Fatalf("Len after reopen = %d, want %d", got, left)
			}
			appendN(t, s, n, n+tt.appendAfter)
			replayAll(t, s, &c)
			if got, want := c.got(), bodies(0, n+tt.appendAfter); !slices.Equal(got, want) {
				t.Fatalf("applied %q, want each once in order: %q", got, want)
			}
		})
	}
}

// A crash between apply and the acknowledgement: the next replay applies that record again, and
// only that one (at-least-once; the gateway's applies are idempotent).
func TestCrashBetweenApplyAndAck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSpool(t, Options{Dir: dir})
	appendN(t, s, 0, 5)
	errCrash := errors.New("simulated crash")
	applied := 0
	s.afterApply = func() error {
		applied++
		if applied == 3 {
			return errCrash
		}
		return nil
	}
	var c collector
	if _, err := s.Replay(context.Background(), c.apply); !errors.Is(err, errCrash) {
		t.Fatalf("Replay error = %v, want the simulated crash", err)
	}
	closeSpool(t, s)

	s = openSpool(t, Options{Dir: dir})
	if got := s.Len(); got != 3 {
		t.Fatalf("Len after reopen = %d, want 3 (the unacknowledged record and the two after it)", got)
	}
	replayAll(t, s, &c)
	want := append(bodies(0, 3), bodies(2, 5)...)
	if got := c.got(); !slices.Equal(got, want) {
		t.Fatalf("applied %q, want %q: record 2 twice, nothing else", got, want)
	}
}

func TestOpenDropsTornTail(t *testing.T) {
	t.Parallel()
	lastLen := int64(encodedLen("status", body(2)))
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		kept   int // records of the three that survive
	}{
		{"cut in the last header", func(t *testing.T, path string) { truncateBy(t, path, lastLen-3) }, 2},
		{"cut in the last body", func(t *testing.T, path string) { truncateBy(t, path, 2) }, 2},
		{"bad CRC in the last record", func(t *testing.T, path string) { flipByte(t, path, -1) }, 2},
		{"bad CRC in the middle record", func(t *testing.T, path string) { flipByte(t, path, -lastLen-1) }, 1},
		{"garbage after the last record", func(t *testing.T, path string) { appendBytes(t, path, []byte("\x07garbage")) }, 3},
		{"zeros after the last record", func(t *testing.T, path string) { appendBytes(t, path, make([]byte, 4096)) }, 3},
		{"a few header bytes after the last record", func(t *testing.T, path string) { appendBytes(t, path, []byte{40, 0, 0}) }, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := openSpool(t, Options{Dir: dir})
			appendN(t, s, 0, 3)
			closeSpool(t, s)
			tt.damage(t, lastNonEmptySegment(t, dir))

			logs := &logRecorder{}
			reg := prometheus.NewPedanticRegistry()
			m := NewMetrics(reg)
			s = openSpool(t, Options{Dir: dir, Logger: slog.New(logs), Metrics: m})
			if got := s.Len(); got != tt.kept {
				t.Fatalf("Len after recovery = %d, want %d", got, tt.kept)
			}
			if got := logs.count(slog.LevelWarn, "dropping a torn or corrupt record"); got != 1 {
				t.Errorf("%d warnings about the dropped tail, want 1", got)
			}
			if got := testutil.ToFloat64(m.pushes.WithLabelValues(kindUnknown, ResultDroppedCorrupt)); got != 1 {
				t.Errorf("dropped_corrupt = %v, want 1", got)
			}
			// The spool works on: a new record lands after the kept ones.
			appendN(t, s, 10, 11)
			var c collector
			replayAll(t, s, &c)
			if got, want := c.got(), append(bodies(0, tt.kept), bodies(10, 11)...); !slices.Equal(got, want) {
				t.Fatalf("replayed %q, want %q", got, want)
			}
		})
	}
}

func TestOpenWithTornAckSlotFallsBackOneRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSpool(t, Options{Dir: dir})
	appendN(t, s, 0, 4)
	errDown := errors.New("redis down")
	var c collector
	_, err := s.Replay(context.Background(), func(ctx context.Context, r Record) error {
		if len(c.got()) == 2 {
			return errDown
		}
		return c.apply(ctx, r)
	})
	if !errors.Is(err, errDown) {
		t.Fatalf("Replay error = %v", err)
	}
	closeSpool(t, s)

	// Tear the newest slot, as a crash in the middle of writing it would.
	path := filepath.Join(dir, ackName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g0, _, _ := decodeAckSlot(data[:ackSlotBytes])
	g1, _, _ := decodeAckSlot(data[ackSlotBytes:])
	newest := 0
	if g1 > g0 {
		newest = ackSlotBytes
	}
	data[newest+10] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	s = openSpool(t, Options{Dir: dir})
	if got := s.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3 (back to the older slot: one record before)", got)
	}
	replayAll(t, s, &c)
	if got, want := c.got(), append(bodies(0, 2), bodies(1, 4)...); !slices.Equal(got, want) {
		t.Fatalf("applied %q, want %q", got, want)
	}
}

func TestAppendFull(t *testing.T) {
	t.Parallel()
	recLen := int64(encodedLen("status", body(0)))
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	s := openSpool(t, Options{MaxBytes: 3 * recLen, SegmentBytes: 2 * recLen, Metrics: m})
	appendN(t, s, 0, 3)
	err := s.Append("status", body(3))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Append over MaxBytes = %v, want ErrFull", err)
	}
	if got := s.Len(); got != 3 {
		t.Errorf("Len = %d, want 3", got)
	}
	if got := testutil.ToFloat64(m.pushes.WithLabelValues("status", ResultRefusedFull)); got != 1 {
		t.Errorf("refused_full = %v, want 1", got)
	}
	if err := s.Append("fee", make([]byte, 4*recLen)); !errors.Is(err, ErrFull) {
		t.Errorf("Append of a record over MaxBytes = %v, want ErrFull", err)
	}
	// Replaying frees the space.
	var c collector
	replayAll(t, s, &c)
	appendN(t, s, 3, 6)
	replayAll(t, s, &c)
	if got, want := c.got(), bodies(0, 6); !slices.Equal(got, want) {
		t.Fatalf("replayed %q, want %q", got, want)
	}
}

func TestReplayStopsAtErrorAndResumes(t *testing.T) {
	t.Parallel()
	errDown := errors.New("redis down")
	s := openSpool(t, Options{SegmentBytes: 64})
	appendN(t, s, 0, 6)
	var c collector
	failures := 2 // record 3 fails twice, then Redis is back
	apply := func(ctx context.Context, r Record) error {
		if string(r.Body) == string(body(3)) && failures > 0 {
			failures--
			return errDown
		}
		return c.apply(ctx, r)
	}
	steps := []struct {
		wantN, wantLen int
		wantErr        error
	}{
		{3, 3, errDown},
		{0, 3, errDown},
		{3, 0, nil},
	}
	for i, st := range steps {
		n, err := s.Replay(context.Background(), apply)
		if n != st.wantN || !errors.Is(err, st.wantErr) || s.Len() != st.wantLen {
			t.Fatalf("replay %d: n=%d err=%v Len=%d, want n=%d err=%v Len=%d", i, n, err, s.Len(), st.wantN, st.wantErr, st.wantLen)
		}
	}
	if got, want := c.got(), bodies(0, 6); !slices.Equal(got, want) {
		t.Fatalf("applied %q, want %q", got, want)
	}
}

func TestReplayCanceled(t *testing.T) {
	t.Parallel()
	s := openSpool(t, Options{})
	appendN(t, s, 0, 3)
	ctx, cancel := context.WithCancel(context.Background())
	var c collector
	n, err := s.Replay(ctx, func(ctx context.Context, r Record) error {
		cancel()
		return c.apply(ctx, r)
	})
	if n != 1 || !errors.Is(err, context.Canceled) || s.Len() != 2 {
		t.Fatalf("n=%d err=%v Len=%d, want 1, context.Canceled, 2", n, err, s.Len())
	}
}

func TestReplaySkip(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	logs := &logRecorder{}
	s := openSpool(t, Options{Metrics: m, Logger: slog.New(logs)})
	appendN(t, s, 0, 3)
	var c collector
	n, err := s.Replay(context.Background(), func(ctx context.Context, r Record) error {
		if string(r.Body) == string(body(1)) {
			return fmt.Errorf("job reference: %w", ErrSkip)
		}
		return c.apply(ctx, r)
	})
	if n != 3 || err != nil || s.Len() != 0 {
		t.Fatalf("n=%d err=%v Len=%d, want 3, nil, 0", n, err, s.Len())
	}
	if got, want := c.got(), []string{string(body(0)), string(body(2))}; !slices.Equal(got, want) {
		t.Errorf("applied %q, want %q", got, want)
	}
	if got := testutil.ToFloat64(m.pushes.WithLabelValues("status", ResultSkipped)); got != 1 {
		t.Errorf("skipped = %v, want 1", got)
	}
	if logs.count(slog.LevelWarn, "skipped") != 1 {
		t.Error("no warning for the skipped record")
	}
}

// Corruption of data that was already synced (a bad disk) drops the rest of its segment and
// the replay goes on with the next one.
func TestReplayDropsCorruptSegmentRest(t *testing.T) {
	t.Parallel()
	recLen := int64(encodedLen("status", body(0)))
	dir := t.TempDir()
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	s := openSpool(t, Options{Dir: dir, SegmentBytes: 3 * recLen, Metrics: m})
	appendN(t, s, 0, 6) // two sealed-or-active segments of three records
	segs := segmentFiles(t, dir)
	names := slices.Sorted(maps.Keys(segs))
	flipByteAt(t, filepath.Join(dir, names[0]), recLen+headerBytes+3) // the second record's payload
	var c collector
	n, err := s.Replay(context.Background(), c.apply)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if got, want := c.got(), append(bodies(0, 1), bodies(3, 6)...); !slices.Equal(got, want) {
		t.Fatalf("replayed %q (n=%d), want %q", got, n, want)
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d, want 0", s.Len())
	}
	if got := testutil.ToFloat64(m.pushes.WithLabelValues(kindUnknown, ResultDroppedCorrupt)); got != 1 {
		t.Errorf("dropped_corrupt = %v, want 1", got)
	}
}

func TestConcurrentAppend(t *testing.T) {
	t.Parallel()
	const writers, each = 32, 40
	dir := t.TempDir()
	s := openSpool(t, Options{Dir: dir, SegmentBytes: 1 << 10})
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.Append("fee", fmt.Appendf(nil, "%d:%d", w, i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append: %v", err)
	}
	if got := s.Len(); got != writers*each {
		t.Fatalf("Len = %d, want %d", got, writers*each)
	}
	// Everything is durable: a reopen finds it all.
	closeSpool(t, s)
	s = openSpool(t, Options{Dir: dir, SegmentBytes: 1 << 10})
	var c collector
	replayAll(t, s, &c)
	checkPerWriterOrder(t, c.got(), writers, each)
}

func TestReplayConcurrentWithAppend(t *testing.T) {
	t.Parallel()
	const writers, each = 8, 150
	s := openSpool(t, Options{SegmentBytes: 512})
	var c collector
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.Append("status", fmt.Appendf(nil, "%d:%d", w, i)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	var done atomic.Bool
	replayed := make(chan error, 1)
	go func() {
		for !done.Load() || s.Len() > 0 {
			if _, err := s.Replay(context.Background(), c.apply); err != nil {
				replayed <- err
				return
			}
		}
		replayed <- nil
	}()
	wg.Wait()
	done.Store(true)
	if err := <-replayed; err != nil {
		t.Fatalf("Replay: %v", err)
	}
	checkPerWriterOrder(t, c.got(), writers, each)
}

// checkPerWriterOrder checks that every "w:i" body was applied once, and each writer's in order.
func checkPerWriterOrder(t *testing.T, got []string, writers, each int) {
	t.Helper()
	if len(got) != writers*each {
		t.Fatalf("applied %d records, want %d", len(got), writers*each)
	}
	next := make([]int, writers)
	for _, b := range got {
		ws, is, _ := strings.Cut(b, ":")
		w, _ := strconv.Atoi(ws)
		i, _ := strconv.Atoi(is)
		if i != next[w] {
			t.Fatalf("writer %d: got record %d, want %d (duplicate or out of order)", w, i, next[w])
		}
		next[w]++
	}
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logRecorder{}
		s, err := Open(Options{Dir: t.TempDir(), Logger: slog.New(logs), Now: newClock().Now})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		appendN(t, s, 0, 3)

		var healthy, redisUp atomic.Bool
		var c collector
		apply := func(ctx context.Context, r Record) error {
			if !redisUp.Load() {
				return errors.New("redis down")
			}
			return c.apply(ctx, r)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			s.Run(ctx, time.Second, func(context.Context) bool { return healthy.Load() }, apply)
			close(done)
		}()

		time.Sleep(5 * time.Second)
		synctest.Wait()
		if len(c.got()) != 0 || s.Len() != 3 {
			t.Fatalf("replayed while unhealthy: %q", c.got())
		}

		healthy.Store(true) // the check passes, but the apply still fails: logged once
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := logs.count(slog.LevelWarn, "spool replay stopped"); got != 1 {
			t.Errorf("%d warnings for a failing replay over 5 ticks, want 1", got)
		}

		redisUp.Store(true)
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := c.got(), bodies(0, 3); !slices.Equal(got, want) {
			t.Fatalf("replayed %q, want %q", got, want)
		}
		if logs.count(slog.LevelInfo, "spool replayed") != 1 {
			t.Error("no log line for the replay")
		}

		appendN(t, s, 3, 4)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := len(c.got()); got != 4 {
			t.Fatalf("replayed %d, want 4: a later append is replayed on the next tick", got)
		}

		cancel()
		<-done
	})
}

func TestOpenLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	openSpool(t, Options{Dir: dir})
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s := openSpool(t, Options{})
	closeSpool(t, s)
	if err := s.Append("status", body(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Replay(context.Background(), (&collector{}).apply); !errors.Is(err, ErrClosed) {
		t.Errorf("Replay after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := openSpool(t, Options{})
	tests := []struct {
		name string
		kind string
		body []byte
	}{
		{"empty kind", "", nil},
		{"upper case kind", "Status", nil},
		{"kind with a space", "fee push", nil},
		{"kind too long", strings.Repeat("k", 33), nil},
		{"body too large", "fee", make([]byte, MaxBodyBytes+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Append(tt.kind, tt.body); err == nil || errors.Is(err, ErrFull) {
				t.Errorf("Append(%q, %d bytes) = %v, want an input error", tt.kind, len(tt.body), err)
			}
		})
	}
	if s.Len() != 0 {
		t.Errorf("Len = %d after refused appends", s.Len())
	}
}

func TestOpenOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    Options
	}{
		{"no directory", Options{}},
		{"negative size bound", Options{Dir: t.TempDir(), MaxBytes: -1}},
		{"negative segment size", Options{Dir: t.TempDir(), SegmentBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Open(tt.o); err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if got := testutil.CollectAndCount(m.pushes); got != 9 {
		t.Errorf("%d pre-set push series, want 9 (2 kinds × 4 results + unknown/dropped_corrupt)", got)
	}

	s := openSpool(t, Options{Metrics: m})
	appendN(t, s, 0, 2)
	if err := s.Append("fee", []byte("cdr")); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.records); got != 3 {
		t.Errorf("records gauge = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.bytes); got <= 0 {
		t.Errorf("bytes gauge = %v, want > 0", got)
	}
	replayAll(t, s, &collector{})
	counts := []struct {
		kind, result string
		want         float64
	}{
		{"status", ResultSpooled, 2},
		{"fee", ResultSpooled, 1},
		{"status", ResultReplayed, 2},
		{"fee", ResultReplayed, 1},
	}
	for _, c := range counts {
		if got := testutil.ToFloat64(m.pushes.WithLabelValues(c.kind, c.result)); got != c.want {
			t.Errorf("pushes{%s,%s} = %v, want %v", c.kind, c.result, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.records); got != 0 {
		t.Errorf("records gauge after replay = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.bytes); got != 0 {
		t.Errorf("bytes gauge after replay = %v, want 0", got)
	}
}

func BenchmarkAppend(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), MaxBytes: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	payload := make([]byte, 600) // a typical status push
	b.SetBytes(int64(len(payload)))
	b.SetParallelism(16) // concurrent push handlers share fsyncs (group commit)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Append("status", payload); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func truncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()-n); err != nil {
		t.Fatal(err)
	}
}

// flipByte flips the byte at off from the end (negative) of the file.
func flipByte(t *testing.T, path string, fromEnd int64) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	flipByteAt(t, path, info.Size()+fromEnd)
}

func flipByteAt(t *testing.T, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}
