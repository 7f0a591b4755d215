package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the signature of a delivery:
//
//	X-Voicequeue-Signature: t=1767225600,v1=5f2b…
//
// t is the signing time in Unix seconds; each v1 is the lower-case hex
// HMAC-SHA256, keyed with a webhook signing key, of the bytes
// "<t>.<raw request body>". During key rotation a header holds one v1 per key.
const SignatureHeader = "X-Voicequeue-Signature"

// JobIDHeader carries the job ID of a delivery (also present in the body).
const JobIDHeader = "X-Voicequeue-Job-Id"

// DefaultTolerance is the age (either way) past which Verify reports ErrStale
// when it is given a tolerance of zero or less.
const DefaultTolerance = 5 * time.Minute

var (
	// ErrBadSignature means the header is missing or malformed, or no v1
	// signature in it matches any of the keys.
	ErrBadSignature = errors.New("webhook signature does not verify")
	// ErrStale means the signature matches but its timestamp is further from
	// now than the tolerance (a replay, or a badly wrong clock).
	ErrStale = errors.New("webhook signature timestamp outside tolerance")
)

// Sign returns the SignatureHeader value for body signed with key at ts.
func Sign(key []byte, ts time.Time, body []byte) string {
	return signHeader([][]byte{key}, ts, body)
}

// signHeader signs body with every key, in order, under one timestamp.
func signHeader(keys [][]byte, ts time.Time, body []byte) string {
	unix := strconv.FormatInt(ts.Unix(), 10)
	var b strings.Builder
	b.Grow(len("t=") + len(unix) + len(keys)*(len(",v1=")+2*sha256.Size))
	b.WriteString("t=")
	b.WriteString(unix)
	for _, k := range keys {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(mac(k, unix, body)))
	}
	return b.String()
}

// mac is HMAC-SHA256(key, unix + "." + body).
func mac(key []byte, unix string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(unix))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a SignatureHeader value against the raw body. It succeeds when
// any v1 signature matches any non-empty key (several keys during rotation)
// and the timestamp lies within tolerance of now, in either direction; a
// tolerance of zero or less means DefaultTolerance. Unknown fields (other
// schemes than v1) are ignored. Errors wrap ErrBadSignature or, for a matching
// signature with an out-of-range timestamp, ErrStale.
func Verify(keys [][]byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	unix, sigs, err := parseHeader(header)
	if err != nil {
		return fmt.Errorf("verify webhook signature: %w", err)
	}
	if !matches(keys, unix, sigs, body) {
		return fmt.Errorf("verify webhook signature: no v1 signature matches: %w", ErrBadSignature)
	}
	ts, _ := strconv.ParseInt(unix, 10, 64) // parseHeader checked it
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	age := now.Sub(time.Unix(ts, 0))
	if age > tolerance || age < -tolerance {
		return fmt.Errorf("verify webhook signature: signed at %d, %s from now: %w", ts, age.Round(time.Second), ErrStale)
	}
	return nil
}

// matches reports whether any signature equals the MAC under any usable key.
// Empty keys are skipped: an HMAC under an empty key is forgeable by anyone.
func matches(keys [][]byte, unix string, sigs [][]byte, body []byte) bool {
	ok := false
	for _, k := range keys {
		if len(k) == 0 {
			continue
		}
		want := mac(k, unix, body)
		for _, s := range sigs {
			// Not short-circuited, so the time taken does not say which matched.
			if hmac.Equal(want, s) {
				ok = true
			}
		}
	}
	return ok
}

// maxSignatures bounds the v1 entries looked at, so a hostile header cannot
// make Verify do unbounded work.
const maxSignatures = 8

// parseHeader splits "t=<digits>,v1=<hex>[,v1=<hex>…]" into the timestamp
// string exactly as signed and the decoded signatures.
func parseHeader(header string) (unix string, sigs [][]byte, err error) {
	if header == "" {
		return "", nil, fmt.Errorf("missing %s header: %w", SignatureHeader, ErrBadSignature)
	}
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, fmt.Errorf("malformed field %q: %w", truncate(part, 16), ErrBadSignature)
		}
		switch k {
		case "t":
			if unix != "" {
				return "", nil, fmt.Errorf("more than one timestamp: %w", ErrBadSignature)
			}
			if _, perr := strconv.ParseInt(v, 10, 64); perr != nil || !isDigits(v) {
				return "", nil, fmt.Errorf("malformed timestamp: %w", ErrBadSignature)
			}
			unix = v
		case "v1":
			if len(sigs) == maxSignatures {
				continue
			}
			s, derr := hex.DecodeString(v)
			if derr != nil || len(s) != sha256.Size {
				continue // cannot match; another v1 may
			}
			sigs = append(sigs, s)
		}
	}
	if unix == "" {
		return "", nil, fmt.Errorf("no timestamp: %w", ErrBadSignature)
	}
	if len(sigs) == 0 {
		return "", nil, fmt.Errorf("no well-formed v1 signature: %w", ErrBadSignature)
	}
	return unix, sigs, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
