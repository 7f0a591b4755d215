package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeRecord(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	valid := appendRecord(nil, "status", at, []byte(`{"eventType":"callout"}`))
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"valid", valid, nil},
		{"valid with trailing bytes", append(bytes.Clone(valid), "next"...), nil},
		{"valid, empty body", appendRecord(nil, "fee", at, nil), nil},
		{"empty input", nil, errTruncated},
		{"short header", valid[:5], errTruncated},
		{"short payload", valid[:len(valid)-1], errTruncated},
		{"zero length", make([]byte, 64), errCorrupt},
		{"length over the maximum", mutate(func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b, maxPayload+1)
			return b
		}), errCorrupt},
		{"bad CRC", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), errCorrupt},
		{"bad version", resum(mutate(func(b []byte) []byte { b[headerBytes] = 2; return b })), errCorrupt},
		{"kind length zero", resum(mutate(func(b []byte) []byte { b[headerBytes+1] = 0; return b })), errCorrupt},
		{"kind length past the payload", resum(mutate(func(b []byte) []byte { b[headerBytes+1] = 30; return b })), errCorrupt},
		{"invalid kind bytes", resum(mutate(func(b []byte) []byte { b[headerBytes+2] = 'S'; return b })), errCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec, n, err := decodeRecord(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("decodeRecord error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if n > len(tt.in) || !bytes.Equal(appendRecord(nil, rec.Kind, rec.At, rec.Body), tt.in[:n]) {
				t.Fatalf("decoded %+v (%d bytes) does not encode back to the input", rec, n)
			}
			if !rec.At.Equal(at) {
				t.Errorf("At = %v, want %v", rec.At, at)
			}
		})
	}
}

// resum recomputes the CRC after a mutation, so that the check under test is the layout one.
func resum(b []byte) []byte {
	n := binary.LittleEndian.Uint32(b)
	binary.LittleEndian.PutUint32(b[4:], crcOf(b[headerBytes:headerBytes+int(n)]))
	return b
}

func TestValidKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind string
		want bool
	}{
		{"status", true}, {"fee", true}, {"fee_v2", true},
		{"", false}, {"Status", false}, {"fee-v2", false}, {"a b", false}, {"é", false},
		{strings.Repeat("a", maxKindBytes), true}, {strings.Repeat("a", maxKindBytes+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			if got := validKind(tt.kind); got != tt.want {
				t.Errorf("validKind(%q) = %v, want %v", tt.kind, got, tt.want)
			}
		})
	}
}

// FuzzDecodeRecord: the decoder of bytes read back from disk never panics, never reads past its
// input, and accepts only canonical records (that encode back to exactly the bytes consumed).
func FuzzDecodeRecord(f *testing.F) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	valid := appendRecord(nil, "status", at, []byte(`{"eventType":"answer","statusInfo":{"sessionId":"s1"}}`))
	f.Add(valid)
	f.Add(appendRecord(nil, "fee", at, nil))
	f.Add(valid[:len(valid)/2])
	f.Add(append(bytes.Clone(valid), valid...))
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errTruncated) && !errors.Is(err, errCorrupt) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if n < headerBytes+minPayload || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if !validKind(rec.Kind) || len(rec.Body) > MaxBodyBytes {
			t.Fatalf("accepted an invalid record: kind %q, %d body bytes", rec.Kind, len(rec.Body))
		}
		if again := appendRecord(nil, rec.Kind, rec.At, rec.Body); !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b[:n])
		}
	})
}
