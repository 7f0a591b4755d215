package voicesim

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// BenchmarkNotifyAccepted measures the server side of an accepted notification: auth, body
// validation, the caps and starting the call (without network and without pushes).
func BenchmarkNotifyAccepted(b *testing.B) {
	clock := newFakeClock()
	sim, err := New(Config{AppKey: testKey, AppSecret: testSecret, Speed: 1e9, Now: clock.Now, MaxRecords: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	h := sim.Handler()
	body := []byte(mustJSON(b, notifyReq("+8613800000001", nil)))
	header := http.Header{}
	header.Set("Content-Type", voice.ContentType)
	sign(header, testKey, testSecret, clock.Now())
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, voice.PathNotify, bytes.NewReader(body))
		req.Header = header
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("HTTP %d %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	if err := sim.WaitIdle(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAuthenticate measures the AKSK check alone.
func BenchmarkAuthenticate(b *testing.B) {
	clock := newFakeClock()
	sim, err := New(Config{AppKey: testKey, AppSecret: testSecret, Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	header := http.Header{}
	sign(header, testKey, testSecret, clock.Now())
	b.ReportAllocs()
	for b.Loop() {
		if rej := sim.authenticate(header); rej != nil {
			b.Fatal(rej)
		}
	}
}
