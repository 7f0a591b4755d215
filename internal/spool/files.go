package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	segmentSuffix = ".seg"
	ackName       = "ack"
	lockName      = "LOCK"
	ackSlotBytes  = 32
)

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentSuffix) }

// listSegments returns the sequence numbers of the segment files in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list spool directory: %w", err)
	}
	var seqs []uint64
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || len(name) != 16+len(segmentSuffix) || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(name[:16], 16, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// syncDir makes the creation and removal of files in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open spool directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync spool directory: %w", err)
	}
	return nil
}

// position is a place in the spool: an offset in a segment.
type position struct {
	seq uint64
	off int64
}

// ackFile holds the replay position in two alternating slots (see the package doc).
type ackFile struct {
	f   *os.File
	gen uint64
}

// openAck opens (creating if needed) the ack file and reads the last position written. A missing
// or unreadable file gives the zero position: replay from the first segment.
func openAck(dir string) (*ackFile, position, error) {
	path := filepath.Join(dir, ackName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, position{}, fmt.Errorf("open spool ack file: %w", err)
	}
	buf := make([]byte, 2*ackSlotBytes)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		_ = f.Close()
		return nil, position{}, fmt.Errorf("read spool ack file: %w", err)
	}
	a := &ackFile{f: f}
	var pos position
	for slot := 0; slot < 2; slot++ {
		if n < (slot+1)*ackSlotBytes {
			break
		}
		gen, p, ok := decodeAckSlot(buf[slot*ackSlotBytes : (slot+1)*ackSlotBytes])
		if ok && gen > a.gen {
			a.gen, pos = gen, p
		}
	}
	return a, pos, nil
}

func encodeAckSlot(gen uint64, p position) []byte {
	b := make([]byte, ackSlotBytes)
	binary.LittleEndian.PutUint64(b[0:], gen)
	binary.LittleEndian.PutUint64(b[8:], p.seq)
	binary.LittleEndian.PutUint64(b[16:], uint64(p.off))
	binary.LittleEndian.PutUint32(b[24:], crcOf(b[:24]))
	return b
}

func decodeAckSlot(b []byte) (uint64, position, bool) {
	if crcOf(b[:24]) != binary.LittleEndian.Uint32(b[24:]) {
		return 0, position{}, false
	}
	gen := binary.LittleEndian.Uint64(b[0:])
	off := binary.LittleEndian.Uint64(b[16:])
	if gen == 0 || off > 1<<62 {
		return 0, position{}, false
	}
	return gen, position{seq: binary.LittleEndian.Uint64(b[8:]), off: int64(off)}, true
}

// write records p durably: the next slot, then fsync.
func (a *ackFile) write(p position) error {
	gen := a.gen + 1
	if _, err := a.f.WriteAt(encodeAckSlot(gen, p), int64(gen%2)*ackSlotBytes); err != nil {
		return fmt.Errorf("write spool ack: %w", err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("sync spool ack: %w", err)
	}
	a.gen = gen
	return nil
}

func (a *ackFile) close() error { return a.f.Close() }
