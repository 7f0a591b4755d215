package webhook

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	testKey  = []byte("voicequeue-demo-key")
	testTime = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z
	testBody = []byte(`{"id":"job_123","state":"completed"}`)
)

// The vector is computed independently with
//
//	printf '%s' '1767225600.{"id":"job_123","state":"completed"}' | openssl dgst -sha256 -hmac voicequeue-demo-key
//
// so it also checks the recipe in docs/webhooks.md.
func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	const want = "t=1767225600,v1=243791d622c40a8cd226d0179b81ad711ef74b4a64944b85bf644486f128f3c1"
	if got := Sign(testKey, testTime, testBody); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	oldKey, newKey, otherKey := []byte("old-key"), []byte("new-key"), []byte("other-key")
	good := Sign(testKey, testTime, testBody)
	rotated := signHeader([][]byte{oldKey, newKey}, testTime, testBody)
	sigOf := func(h string) string { _, s, _ := strings.Cut(h, ",v1="); return s }

	tests := []struct {
		name      string
		keys      [][]byte
		header    string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{name: "round trip", keys: [][]byte{testKey}, header: good, body: testBody, now: testTime},
		{name: "within tolerance late", keys: [][]byte{testKey}, header: good, body: testBody, now: testTime.Add(5 * time.Minute)},
		{name: "within tolerance early clock", keys: [][]byte{testKey}, header: good, body: testBody, now: testTime.Add(-5 * time.Minute)},
		{name: "spaces after commas", keys: [][]byte{testKey}, header: strings.ReplaceAll(good, ",", ", "), body: testBody, now: testTime},
		{name: "unknown scheme ignored", keys: [][]byte{testKey}, header: good + ",v0=abc", body: testBody, now: testTime},
		{name: "tampered body", keys: [][]byte{testKey}, header: good, body: []byte(`{"id":"job_123","state":"failed"}`), now: testTime, want: ErrBadSignature},
		{name: "body with trailing newline", keys: [][]byte{testKey}, header: good, body: append(append([]byte{}, testBody...), '\n'), now: testTime, want: ErrBadSignature},
		{name: "wrong key", keys: [][]byte{otherKey}, header: good, body: testBody, now: testTime, want: ErrBadSignature},
		{name: "tampered timestamp", keys: [][]byte{testKey}, header: "t=1767225601,v1=" + sigOf(good), body: testBody, now: testTime, want: ErrBadSignature},
		{name: "stale", keys: [][]byte{testKey}, header: good, body: testBody, now: testTime.Add(5*time.Minute + time.Second), want: ErrStale},
		{name: "from the future", keys: [][]byte{testKey}, header: good, body: testBody, now: testTime.Add(-6 * time.Minute), want: ErrStale},
		{name: "zero tolerance means default", keys: [][]byte{testKey}, header: good, body: testBody, now: testTime.Add(DefaultTolerance + time.Second), tolerance: -1, want: ErrStale},
		{name: "wider tolerance", keys: [][]byte{testKey}, header: good, body: testBody, now: testTime.Add(time.Hour), tolerance: 2 * time.Hour},
		{name: "stale and wrong key is bad signature", keys: [][]byte{otherKey}, header: good, body: testBody, now: testTime.Add(time.Hour), want: ErrBadSignature},
		{name: "rotation: receiver has old key", keys: [][]byte{oldKey}, header: rotated, body: testBody, now: testTime},
		{name: "rotation: receiver has new key", keys: [][]byte{newKey}, header: rotated, body: testBody, now: testTime},
		{name: "rotation: receiver has both keys", keys: [][]byte{newKey, oldKey}, header: Sign(oldKey, testTime, testBody), body: testBody, now: testTime},
		{name: "rotation: neither key", keys: [][]byte{otherKey}, header: rotated, body: testBody, now: testTime, want: ErrBadSignature},
		{name: "no keys", keys: nil, header: good, body: testBody, now: testTime, want: ErrBadSignature},
		{name: "empty key never verifies", keys: [][]byte{{}}, header: Sign(nil, testTime, testBody), body: testBody, now: testTime, want: ErrBadSignature},
		{name: "empty header", keys: [][]byte{testKey}, header: "", body: testBody, now: testTime, want: ErrBadSignature},
		{name: "no timestamp", keys: [][]byte{testKey}, header: "v1=" + sigOf(good), body: testBody, now: testTime, want: ErrBadSignature},
		{name: "two timestamps", keys: [][]byte{testKey}, header: good + ",t=1767225600", body: testBody, now: testTime, want: ErrBadSignature},
		{name: "negative timestamp", keys: [][]byte{testKey}, header: "t=-1,v1=" + sigOf(good), body: testBody, now: testTime, want: ErrBadSignature},
		{name: "no signature", keys: [][]byte{testKey}, header: "t=1767225600", body: testBody, now: testTime, want: ErrBadSignature},
		{name: "signature not hex", keys: [][]byte{testKey}, header: "t=1767225600,v1=zz", body: testBody, now: testTime, want: ErrBadSignature},
		{name: "truncated signature", keys: [][]byte{testKey}, header: good[:len(good)-2], body: testBody, now: testTime, want: ErrBadSignature},
		{name: "field without equals", keys: [][]byte{testKey}, header: good + ",junk", body: testBody, now: testTime, want: ErrBadSignature},
		{name: "upper-case hex accepted", keys: [][]byte{testKey}, header: "t=1767225600,v1=" + strings.ToUpper(sigOf(good)), body: testBody, now: testTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Verify(tt.keys, tt.header, tt.body, tt.now, tt.tolerance)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			if tt.want == ErrBadSignature && errors.Is(err, ErrStale) {
				t.Fatalf("Verify: %v is both bad and stale", err)
			}
		})
	}
}

func TestVerifyBoundsSignatures(t *testing.T) {
	t.Parallel()
	// The matching signature comes after maxSignatures junk ones: it is not
	// looked at, so a header cannot buy unbounded work.
	junk := strings.Repeat(",v1="+strings.Repeat("00", 32), maxSignatures)
	good := Sign(testKey, testTime, testBody)
	_, sig, _ := strings.Cut(good, ",v1=")
	h := "t=1767225600" + junk + ",v1=" + sig
	if err := Verify([][]byte{testKey}, h, testBody, testTime, 0); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify with %d junk signatures first: %v, want ErrBadSignature", maxSignatures, err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(int64(1767225600), []byte(`{"id":"job_123"}`), "t=1767225600,v1=00")
	f.Add(int64(0), []byte{}, "")
	f.Add(int64(-5), []byte("x"), "t=,v1=,,=")
	f.Fuzz(func(t *testing.T, unix int64, body []byte, header string) {
		if unix < 0 { // Sign never sees times before 1970
			unix = -(unix + 1)
		}
		ts := time.Unix(unix, 0)
		// Arbitrary headers never panic, and one verifies only if it holds
		// the real HMAC of its own timestamp and this body.
		if err := Verify([][]byte{testKey}, header, body, ts, time.Minute); err == nil {
			unix, _, _ := parseHeader(header)
			if want := hex.EncodeToString(mac(testKey, unix, body)); !strings.Contains(strings.ToLower(header), want) {
				t.Fatalf("header %q verified for body %q without its MAC", header, body)
			}
		}
		// What Sign makes, Verify accepts; any change to the body breaks it.
		h := Sign(testKey, ts, body)
		if err := Verify([][]byte{testKey}, h, body, ts, time.Minute); err != nil {
			t.Fatalf("Verify(Sign) = %v", err)
		}
		if err := Verify([][]byte{testKey}, h, append(append([]byte{}, body...), 'x'), ts, time.Minute); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify of extended body = %v, want ErrBadSignature", err)
		}
	})
}

func BenchmarkSign(b *testing.B) {
	body := []byte(strings.Repeat(`{"id":"job_123","state":"completed"}`, 30)) // ~1 KiB record
	for b.Loop() {
		_ = Sign(testKey, testTime, body)
	}
}

func BenchmarkVerify(b *testing.B) {
	body := []byte(strings.Repeat(`{"id":"job_123","state":"completed"}`, 30))
	h := Sign(testKey, testTime, body)
	for b.Loop() {
		if err := Verify([][]byte{testKey}, h, body, testTime, 0); err != nil {
			b.Fatal(err)
		}
	}
}
