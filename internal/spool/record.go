package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Record is one spooled push.
type Record struct {
	Kind string // "status" or "fee" in the gateway
	Body []byte // the push body as received
	// At is when the push was appended, i.e. when the gateway received it. Replays use it as the
	// event time, so a push replayed minutes later keeps its place among the job's events.
	At time.Time
}

// MaxBodyBytes bounds the body of one record (a push body is capped well below it).
const MaxBodyBytes = 1 << 20

// maxKindBytes bounds a record's kind.
const maxKindBytes = 32

const (
	headerBytes   = 8 // length + CRC
	recordVersion = 1
	// minPayload is version + kind length + one kind byte + time.
	minPayload = 2 + 1 + 8
	maxPayload = 2 + maxKindBytes + 8 + MaxBodyBytes
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

var (
	// errTruncated: the bytes end before the record does (a torn tail, or a read past the end).
	errTruncated = errors.New("truncated spool record")
	// errCorrupt: the bytes are not a record (bad length, CRC, version or layout).
	errCorrupt = errors.New("corrupt spool record")
)

// validKind reports whether kind can be a record kind: 1–32 bytes of [a-z0-9_]. Kinds become
// metric label values, so they are short, fixed strings chosen by code.
func validKind(kind string) bool {
	if kind == "" || len(kind) > maxKindBytes {
		return false
	}
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// encodedLen is the size of the record appendRecord writes.
func encodedLen(kind string, body []byte) int {
	return headerBytes + 2 + len(kind) + 8 + len(body)
}

// appendRecord appends the encoded record to dst. kind must be valid and body at most
// MaxBodyBytes.
func appendRecord(dst []byte, kind string, at time.Time, body []byte) []byte {
	n := 2 + len(kind) + 8 + len(body)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // CRC, filled in below
	start := len(dst)
	dst = append(dst, recordVersion, byte(len(kind)))
	dst = append(dst, kind...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(at.UnixNano()))
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start-4:start], crcOf(dst[start:]))
	return dst
}

// frameLen reads the total size of the record that starts with header (at least headerBytes
// long), or errCorrupt if its length field is impossible.
func frameLen(header []byte) (int, error) {
	n := binary.LittleEndian.Uint32(header)
	if n < minPayload || n > maxPayload {
		return 0, fmt.Errorf("%w: payload length %d", errCorrupt, n)
	}
	return headerBytes + int(n), nil
}

// decodeRecord decodes the record at the start of b and returns it with its encoded size. The
// returned Body aliases b. It returns errTruncated when b ends inside the record and errCorrupt
// when the bytes are not a valid record.
func decodeRecord(b []byte) (Record, int, error) {
	if len(b) < headerBytes {
		return Record{}, 0, errTruncated
	}
	size, err := frameLen(b)
	if err != nil {
		return Record{}, 0, err
	}
	if len(b) < size {
		return Record{}, 0, errTruncated
	}
	payload := b[headerBytes:size]
	if crcOf(payload) != binary.LittleEndian.Uint32(b[4:8]) {
		return Record{}, 0, fmt.Errorf("%w: CRC mismatch", errCorrupt)
	}
	if payload[0] != recordVersion {
		return Record{}, 0, fmt.Errorf("%w: version %d", errCorrupt, payload[0])
	}
	kl := int(payload[1])
	if kl == 0 || kl > maxKindBytes || 2+kl+8 > len(payload) {
		return Record{}, 0, fmt.Errorf("%w: kind length %d", errCorrupt, kl)
	}
	kind := string(payload[2 : 2+kl])
	if !validKind(kind) {
		return Record{}, 0, fmt.Errorf("%w: kind %q", errCorrupt, kind)
	}
	at := int64(binary.LittleEndian.Uint64(payload[2+kl:]))
	return Record{Kind: kind, Body: payload[2+kl+8:], At: time.Unix(0, at).UTC()}, size, nil
}
