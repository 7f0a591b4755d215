package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxBytes     = 64 << 20
	DefaultSegmentBytes = 4 << 20
)

var (
	// ErrFull is returned by Append when the record would take the spool over MaxBytes, or the
	// disk is full. The gateway answers 503: the platform re-sends a CDR push.
	ErrFull = errors.New("spool full")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("spool closed")
	// ErrLocked is returned by Open when another process has the directory open.
	ErrLocked = errors.New("spool directory in use by another process")
	// ErrSkip, returned (wrapped or not) by an ApplyFunc, marks the record done without effect:
	// for a record that can never be applied, which would otherwise stop every replay.
	ErrSkip = errors.New("skip spool record")
)

// Options configures a spool.
type Options struct {
	// Dir is the spool's directory, created if missing. One process per directory.
	Dir string
	// MaxBytes bounds the segment files on disk (default DefaultMaxBytes). An Append that would go
	// over it returns ErrFull.
	MaxBytes int64
	// SegmentBytes is the size at which a segment is sealed and a new one started
	// (default DefaultSegmentBytes).
	SegmentBytes int64
	Logger       *slog.Logger
	Metrics      *Metrics
	// Now stamps each record's append time (default time.Now).
	Now func() time.Time
}

func (o *Options) setDefaults() error {
	switch {
	case o.Dir == "":
		return errors.New("no spool directory")
	case o.MaxBytes < 0:
		return fmt.Errorf("spool size bound %d is negative", o.MaxBytes)
	case o.SegmentBytes < 0:
		return fmt.Errorf("spool segment size %d is negative", o.SegmentBytes)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// ApplyFunc records one spooled push. It must be idempotent: after a crash the last record
// applied may be applied again (see the package doc).
type ApplyFunc func(ctx context.Context, r Record) error

// segment is one segment file.
type segment struct {
	seq  uint64
	size int64 // bytes written
	recs int   // records written
}

// Spool is a durable, ordered, bounded queue of pushes on local disk. Its methods are safe for
// concurrent use; one Replay runs at a time.
type Spool struct {
	o    Options
	log  *slog.Logger
	lock *os.File

	// replayMu is held by Replay and Close. It owns ack, reader and readerSeq, and is the only
	// holder that moves the read cursor.
	replayMu  sync.Mutex
	ack       *ackFile
	reader    *os.File
	readerSeq uint64

	// syncMu serializes fsyncs of the active segment: one fsync covers every record written
	// before it started (group commit).
	syncMu sync.Mutex

	mu     sync.Mutex
	closed bool
	broken error // sticky: a segment fsync failed, so what is on disk is unknown
	// segs are the segment files, ascending; the last one is the active segment Append writes
	// to; the read cursor is in segs[0].
	segs        []segment
	active      *os.File
	durable     int64 // bytes of the active segment known to be on disk
	durableRecs int   // records of the active segment known to be on disk
	roff        int64 // read cursor: offset in segs[0]
	rrecs       int   // records of segs[0] before roff
	diskBytes   int64 // sum of segs' sizes

	// afterApply, if set (tests), runs between apply and the acknowledgement; an error stops
	// Replay there, like a crash.
	afterApply func() error
}

// Open opens the spool in o.Dir, creating it if needed, and recovers its state after a crash: a
// torn or corrupt tail is dropped with a log line, everything before it is kept, and replay
// resumes after the last acknowledged record.
func Open(o Options) (*Spool, error) {
	if err := o.setDefaults(); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s := &Spool{o: o, log: o.Logger.With("component", "spool"), lock: lock}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("open spool: %w", err)
	}
	s.log.Info("spool opened", "dir", o.Dir, "records", s.pendingLocked(), "bytes", s.diskBytes)
	return s, nil
}

func (s *Spool) path(seq uint64) string { return filepath.Join(s.o.Dir, segmentName(seq)) }

// recover rebuilds the state from the directory. Called from Open only, before s is shared.
func (s *Spool) recover() error {
	ack, pos, err := openAck(s.o.Dir)
	if err != nil {
		return err
	}
	s.ack = ack
	seqs, err := listSegments(s.o.Dir)
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		if seq < pos.seq {
			// Replayed, but a crash came between the acknowledgement and the removal.
			if err := os.Remove(s.path(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove replayed segment: %w", err)
			}
			continue
		}
		from := int64(0)
		if seq == pos.seq {
			from = pos.off
		}
		sg, coff, crecs, err := s.scanSegment(seq, from)
		if err != nil {
			return err
		}
		if len(s.segs) == 0 && seq == pos.seq {
			s.roff, s.rrecs = coff, crecs
		}
		s.segs = append(s.segs, sg)
		s.diskBytes += sg.size
	}
	next := pos.seq + 1
	if len(s.segs) > 0 {
		next = max(next, s.segs[len(s.segs)-1].seq+1)
	}
	f, err := s.createSegment(next)
	if err != nil {
		return err
	}
	s.active = f
	s.segs = append(s.segs, segment{seq: next})
	for len(s.segs) > 1 && s.roff >= s.segs[0].size {
		if err := s.finishFirstLocked(); err != nil {
			return err
		}
	}
	s.gaugesLocked()
	return nil
}

// scanSegment validates a segment file, cuts a torn or corrupt tail off it, and returns it with
// the record boundary at or after from and the number of records before that boundary.
func (s *Spool) scanSegment(seq uint64, from int64) (segment, int64, int, error) {
	path := s.path(seq)
	data, err := os.ReadFile(path)
	if err != nil {
		return segment{}, 0, 0, fmt.Errorf("read segment: %w", err)
	}
	off, recs := 0, 0
	coff, crecs := int64(-1), 0
	var bad error
	for off < len(data) {
		if coff < 0 && int64(off) >= from {
			coff, crecs = int64(off), recs
		}
		_, n, err := decodeRecord(data[off:])
		if err != nil {
			bad = err
			break
		}
		off += n
		recs++
	}
	if coff < 0 {
		coff, crecs = int64(off), recs
	}
	if coff != from {
		s.log.Warn("spool ack position is not on a record boundary: resuming at the next one",
			"segment", segmentName(seq), "ack_offset", from, "resume_offset", coff)
	}
	if off < len(data) {
		s.log.Warn("spool: dropping a torn or corrupt record and everything after it in its segment",
			"segment", segmentName(seq), "offset", off, "bytes_dropped", len(data)-off, "records_kept", recs, "err", bad)
		s.o.Metrics.push(kindUnknown, ResultDroppedCorrupt)
		if err := truncateFile(path, int64(off)); err != nil {
			return segment{}, 0, 0, err
		}
	}
	return segment{seq: seq, size: int64(off), recs: recs}, coff, crecs, nil
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("truncate segment: %w", err)
	}
	return nil
}

// createSegment creates an empty segment file and makes its name durable.
func (s *Spool) createSegment(seq uint64) (*os.File, error) {
	f, err := os.OpenFile(s.path(seq), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(s.o.Dir); err != nil {
		_ = f.Close()
		_ = os.Remove(s.path(seq))
		return nil, err
	}
	return f, nil
}

// Append adds a record and returns once it is on disk (written and fsynced). kind is a short
// fixed name ([a-z0-9_], at most 32 bytes; it is a metric label value); body is at most
// MaxBodyBytes. It returns an error wrapping ErrFull when the spool has no room, ErrClosed after
// Close, and any other error when the record could not be made durable.
func (s *Spool) Append(kind string, body []byte) error {
	if !validKind(kind) {
		return fmt.Errorf("append spool record: invalid kind %q", kind)
	}
	if len(body) > MaxBodyBytes {
		return fmt.Errorf("append spool record: body of %d bytes is over %d", len(body), MaxBodyBytes)
	}
	rec := appendRecord(make([]byte, 0, encodedLen(kind, body)), kind, s.o.Now(), body)
	end, err := s.write(kind, rec)
	if err != nil {
		return fmt.Errorf("append spool record: %w", err)
	}
	if err := s.syncTo(end); err != nil {
		return fmt.Errorf("append spool record: %w", err)
	}
	s.o.Metrics.push(kind, ResultSpooled)
	return nil
}

// write writes an encoded record at the end of the active segment and returns the position
// after it.
func (s *Spool) write(kind string, rec []byte) (position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return position{}, ErrClosed
	case s.broken != nil:
		return position{}, s.broken
	}
	size := int64(len(rec))
	if s.diskBytes+size > s.o.MaxBytes {
		s.o.Metrics.push(kind, ResultRefusedFull)
		return position{}, fmt.Errorf("%w: %d of %d bytes used", ErrFull, s.diskBytes, s.o.MaxBytes)
	}
	if act := s.segs[len(s.segs)-1]; act.size > 0 && act.size+size > s.o.SegmentBytes {
		if err := s.rotateLocked(); err != nil {
			return position{}, err
		}
	}
	act := &s.segs[len(s.segs)-1]
	if _, err := s.active.WriteAt(rec, act.size); err != nil {
		// Cut a partial write off, so the next record starts where this one should have. If that
		// fails too, the garbage is a torn tail that the next Open drops.
		if terr := s.active.Truncate(act.size); terr != nil {
			s.log.Warn("cut a failed spool write", "err", terr)
		}
		if isNoSpace(err) {
			s.o.Metrics.push(kind, ResultRefusedFull)
			return position{}, fmt.Errorf("%w: %w", ErrFull, err)
		}
		return position{}, fmt.Errorf("write segment: %w", err)
	}
	act.size += size
	act.recs++
	s.diskBytes += size
	s.gaugesLocked()
	return position{seq: act.seq, off: act.size}, nil
}

// syncTo returns once everything up to end is on disk. Concurrent callers share fsyncs: whoever
// holds syncMu syncs everything written so far, and the callers after it whose records that
// covered return without another fsync.
func (s *Spool) syncTo(end position) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	switch {
	case s.durableLocked(end):
		s.mu.Unlock()
		return nil
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.broken != nil:
		err := s.broken
		s.mu.Unlock()
		return err
	}
	act, f := s.segs[len(s.segs)-1], s.active
	s.mu.Unlock()

	err := f.Sync()

	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.segs[len(s.segs)-1].seq == act.seq && act.size > s.durable {
		s.durable, s.durableRecs = act.size, act.recs
		s.gaugesLocked()
	}
	if s.durableLocked(end) {
		return nil // by this fsync, or by a rotation or Close that synced the segment meanwhile
	}
	if s.closed {
		return ErrClosed
	}
	s.breakLocked(fmt.Errorf("sync segment: %w", err))
	return s.broken
}

// durableLocked reports whether everything before p is on disk: sealed segments are.
func (s *Spool) durableLocked(p position) bool {
	return p.seq < s.segs[len(s.segs)-1].seq || p.off <= s.durable
}

// breakLocked makes the spool refuse appends: after a failed fsync the kernel may have dropped
// the data it could not write, so nothing written since the last good fsync can be trusted.
// Replay still drains what was durable. Reopening the spool (restarting) recovers.
func (s *Spool) breakLocked(err error) {
	if s.broken == nil {
		s.broken = err
		s.log.Error("spool unusable until restart: refusing appends", "err", err)
	}
}

// rotateLocked seals the active segment (fsync) and starts the next one.
func (s *Spool) rotateLocked() error {
	if s.broken != nil {
		return s.broken
	}
	act := s.segs[len(s.segs)-1]
	if err := s.active.Sync(); err != nil {
		s.breakLocked(fmt.Errorf("sync segment: %w", err))
		return s.broken
	}
	s.durable, s.durableRecs = act.size, act.recs
	f, err := s.createSegment(act.seq + 1)
	if err != nil {
		return err // the active segment stays as it is
	}
	if err := s.active.Close(); err != nil {
		s.log.Warn("close sealed spool segment", "segment", segmentName(act.seq), "err", err)
	}
	s.active = f
	s.segs = append(s.segs, segment{seq: act.seq + 1})
	s.durable, s.durableRecs = 0, 0
	return nil
}

// finishFirstLocked removes segs[0], a sealed segment whose records were all replayed (or
// dropped): first the acknowledgement moves to the next segment, then the file goes. Callers
// hold replayMu (or are Open) and mu.
func (s *Spool) finishFirstLocked() error {
	old, next := s.segs[0], s.segs[1].seq
	if err := s.ack.write(position{seq: next}); err != nil {
		return err
	}
	if s.reader != nil && s.readerSeq == old.seq {
		_ = s.reader.Close()
		s.reader = nil
	}
	s.segs = s.segs[1:]
	s.roff, s.rrecs = 0, 0
	s.diskBytes -= old.size
	s.gaugesLocked()
	// A file left behind is removed by the next Open: the acknowledgement is past it.
	if err := os.Remove(s.path(old.seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove replayed spool segment", "segment", segmentName(old.seq), "err", err)
	} else if err := syncDir(s.o.Dir); err != nil {
		s.log.Warn("remove replayed spool segment", "segment", segmentName(old.seq), "err", err)
	}
	return nil
}

// Len returns the number of records appended (durably) and not yet replayed.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingLocked()
}

func (s *Spool) pendingLocked() int {
	n := -s.rrecs
	for i, sg := range s.segs {
		if i == len(s.segs)-1 {
			n += s.durableRecs
		} else {
			n += sg.recs
		}
	}
	return n
}

func (s *Spool) gaugesLocked() { s.o.Metrics.size(s.diskBytes, s.pendingLocked()) }

// Replay applies the spooled records in append order, each acknowledged durably after apply
// returns nil, and returns how many it removed from the spool. It stops at the first error from
// apply (Redis still down), keeping that record and the rest for the next Replay, and returns
// the error; an apply error wrapping ErrSkip drops the record instead (logged and counted as
// skipped). It returns nil once it has caught up with every record whose Append had returned;
// records appended meanwhile are replayed too. A corrupt record found on disk drops the rest of
// its segment (logged, counted). One Replay runs at a time.
func (s *Spool) Replay(ctx context.Context, apply ApplyFunc) (int, error) {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		seq, off, limit, more, err := s.next()
		if err != nil || !more {
			return n, err
		}
		rec, size, err := s.read(seq, off, limit)
		if errors.Is(err, errCorrupt) || errors.Is(err, errTruncated) {
			if err := s.dropRest(seq, off, err); err != nil {
				return n, err
			}
			continue
		}
		if err != nil {
			return n, fmt.Errorf("replay spool: %w", err)
		}
		result := ResultReplayed
		if err := apply(ctx, rec); err != nil {
			if !errors.Is(err, ErrSkip) {
				return n, fmt.Errorf("apply spool record: %w", err)
			}
			s.log.Warn("spool record skipped", "kind", rec.Kind, "err", err)
			result = ResultSkipped
		}
		if s.afterApply != nil {
			if err := s.afterApply(); err != nil {
				return n, err
			}
		}
		if err := s.ack.write(position{seq: seq, off: off + int64(size)}); err != nil {
			return n, fmt.Errorf("replay spool: %w", err)
		}
		s.mu.Lock()
		s.roff = off + int64(size)
		s.rrecs++
		s.gaugesLocked()
		s.mu.Unlock()
		s.o.Metrics.push(rec.Kind, result)
		n++
	}
}

// next returns where the next record to replay is and how far the durable data goes, removing
// segments that were replayed to their end. When replay has caught up with every durable record
// and no Append is in flight, it starts a fresh segment and removes the old one, so a drained
// spool takes no space.
func (s *Spool) next() (seq uint64, off, limit int64, more bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return 0, 0, 0, false, ErrClosed
		}
		first, sealed := s.segs[0], len(s.segs) > 1
		limit := s.durable
		if sealed {
			limit = first.size
		}
		if s.roff < limit {
			return first.seq, s.roff, limit, true, nil
		}
		if sealed {
			if err := s.finishFirstLocked(); err != nil {
				return 0, 0, 0, false, fmt.Errorf("replay spool: %w", err)
			}
			continue
		}
		if first.size > 0 && s.durable == first.size && s.broken == nil {
			if err := s.rotateLocked(); err != nil {
				s.log.Warn("start a fresh spool segment after replay", "err", err)
			} else if err := s.finishFirstLocked(); err != nil {
				s.log.Warn("remove the replayed spool segment", "err", err)
			}
		}
		return 0, 0, 0, false, nil
	}
}

// read reads the record at off in segment seq; the durable data ends at limit.
func (s *Spool) read(seq uint64, off, limit int64) (Record, int, error) {
	if s.reader == nil || s.readerSeq != seq {
		if s.reader != nil {
			_ = s.reader.Close()
			s.reader = nil
		}
		f, err := os.Open(s.path(seq))
		if err != nil {
			return Record{}, 0, fmt.Errorf("open segment: %w", err)
		}
		s.reader, s.readerSeq = f, seq
	}
	if limit-off < headerBytes {
		return Record{}, 0, errTruncated
	}
	var hdr [headerBytes]byte
	if _, err := s.reader.ReadAt(hdr[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return Record{}, 0, errTruncated
		}
		return Record{}, 0, fmt.Errorf("read segment: %w", err)
	}
	size, err := frameLen(hdr[:])
	if err != nil {
		return Record{}, 0, err
	}
	if off+int64(size) > limit {
		return Record{}, 0, errTruncated
	}
	buf := make([]byte, size)
	if _, err := s.reader.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			return Record{}, 0, errTruncated
		}
		return Record{}, 0, fmt.Errorf("read segment: %w", err)
	}
	return decodeRecord(buf)
}

// dropRest drops a segment from a corrupt record on (data damaged on disk after it was synced):
// with no trustworthy length, nothing after it in the segment can be found.
func (s *Spool) dropRest(seq uint64, off int64, cause error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.Error("spool: corrupt record during replay; dropping the rest of its segment",
		"segment", segmentName(seq), "offset", off, "bytes_dropped", s.segs[0].size-off, "err", cause)
	s.o.Metrics.push(kindUnknown, ResultDroppedCorrupt)
	if len(s.segs) == 1 {
		if err := s.rotateLocked(); err != nil {
			return fmt.Errorf("replay spool: %w", err)
		}
	}
	if err := s.finishFirstLocked(); err != nil {
		return fmt.Errorf("replay spool: %w", err)
	}
	return nil
}

// Run replays the spool in the background until ctx ends: every interval (and at once), when
// the spool is not empty and healthy reports the store reachable (nil: always), it calls Replay.
// A failing replay is logged once per outage and retried on the next tick. Cancel ctx before
// Close: Close waits for a Replay in progress.
func (s *Spool) Run(ctx context.Context, every time.Duration, healthy func(context.Context) bool, apply ApplyFunc) {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		if s.Len() > 0 && (healthy == nil || healthy(ctx)) {
			n, err := s.Replay(ctx, apply)
			switch {
			case errors.Is(err, ErrClosed):
				return
			case err != nil && ctx.Err() != nil:
			case err != nil && !failing:
				failing = true
				s.log.Warn("spool replay stopped: retrying on the next tick", "replayed", n, "left", s.Len(), "err", err)
			case err != nil:
				s.log.Debug("spool replay stopped again", "replayed", n, "left", s.Len(), "err", err)
			default:
				failing = false
				s.log.Info("spool replayed", "records", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close syncs and closes the spool. It waits for a Replay in progress.
func (s *Spool) Close() error {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.broken == nil {
		if err := s.active.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("sync segment: %w", err))
		} else {
			act := s.segs[len(s.segs)-1]
			s.durable, s.durableRecs = act.size, act.recs
		}
	}
	errs = append(errs, s.closeFiles())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}

// closeFiles closes every file the spool holds, releasing the directory lock last.
func (s *Spool) closeFiles() error {
	var errs []error
	if s.active != nil {
		errs = append(errs, s.active.Close())
	}
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
		s.reader = nil
	}
	if s.ack != nil {
		errs = append(errs, s.ack.close())
	}
	errs = append(errs, s.lock.Close())
	return errors.Join(errs...)
}
