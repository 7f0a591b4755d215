package queue

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func fixedNow() time.Time { return time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) }

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	v := NewValidator(ValidatorOptions{Now: fixedNow})
	bulk := true
	tests := []struct {
		name      string
		req       Request
		wantQueue string
		wantTo    string
		check     func(t *testing.T, j Job, code string)
	}{
		{"verify generated code", Request{Kind: "verify", To: "+8613800000001"}, QueueVerify, "+8613800000001",
			func(t *testing.T, j Job, code string) {
				if code != "" || j.DispatchBy != fixedNow().Add(DefaultVerifyTTL) {
					t.Errorf("code %q, dispatch by %v", code, j.DispatchBy)
				}
			}},
		{"verify given code, national number", Request{Kind: "verify", To: "138 0000 0001", Code: "0042"}, QueueVerify, "+8613800000001",
			func(t *testing.T, j Job, code string) {
				if code != "0042" {
					t.Errorf("code %q", code)
				}
			}},
		{"notify template", Request{Kind: "notify", To: "+8613800000002", TemplateID: "tpl1", TemplateParams: []string{"3", "2026/12/01"}, CollectDigits: 1}, QueueNotify, "+8613800000002",
			func(t *testing.T, j Job, _ string) {
				if len(j.Play) != 1 || j.Play[0].TemplateID != "tpl1" || j.CollectDigits != 1 {
					t.Errorf("play %+v", j.Play)
				}
			}},
		{"notify bulk play list", Request{Kind: "notify", To: "+8613800000002", Bulk: &bulk, Play: []PlayItem{{VoiceFile: "a.wav"}, {TemplateID: "t", TemplateParams: []string{"x"}}}}, QueueBulk, "+8613800000002", nil},
		{"click2call", Request{Kind: "click2call", From: "+8613800000003", To: "+8613800000004", MaxDurationMinutes: 30, Record: true}, QueueNotify, "+8613800000004",
			func(t *testing.T, j Job, _ string) {
				if j.From != "+8613800000003" || j.MaxDuration != 30 || !j.Record {
					t.Errorf("job %+v", j)
				}
			}},
		{"scheduled with ttl", Request{Kind: "notify", To: "+8613800000002", VoiceFile: "a.wav", ScheduledAt: "2026-11-25T13:00:00+02:00", TTL: "1h"}, QueueNotify, "+8613800000002",
			func(t *testing.T, j Job, _ string) {
				want := time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)
				if j.ScheduledAt == nil || !j.ScheduledAt.Equal(want) || !j.DispatchBy.Equal(want.Add(time.Hour)) {
					t.Errorf("scheduled %v dispatch by %v", j.ScheduledAt, j.DispatchBy)
				}
			}},
		{"past schedule means now", Request{Kind: "notify", To: "+8613800000002", VoiceFile: "a.wav", ScheduledAt: "2020-01-01T00:00:00Z"}, QueueNotify, "+8613800000002",
			func(t *testing.T, j Job, _ string) {
				if j.ScheduledAt != nil {
					t.Errorf("scheduled %v", j.ScheduledAt)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job, code, err := v.Validate(tt.req)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if job.Queue != tt.wantQueue || job.To != tt.wantTo {
				t.Errorf("queue %q to %q, want %q %q", job.Queue, job.To, tt.wantQueue, tt.wantTo)
			}
			if tt.check != nil {
				tt.check(t, job, code)
			}
		})
	}
}

// BadRequests is shared with the API and CLI tests: each bad request and the field its error
// must name.
// badRequests loads testdata/bad_requests.json: each bad request and the field its error must
// name. The API and CLI tests in other packages read the same file.
func badRequests(t *testing.T) []struct{ Name, Body, Field string } {
	t.Helper()
	raw, err := os.ReadFile("testdata/bad_requests.json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct{ Name, Body, Field string }
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 25 {
		t.Fatalf("only %d bad requests", len(rows))
	}
	return rows
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	v := NewValidator(ValidatorOptions{Now: fixedNow})
	for _, tt := range badRequests(t) {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			req, err := DecodeRequest([]byte(tt.Body))
			if err == nil {
				_, _, err = v.Validate(req)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v, want a *FieldError", err)
			}
			if fe.Field != tt.Field {
				t.Errorf("field %q (%s), want %q", fe.Field, fe.Message, tt.Field)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Error("errors.Is(err, ErrInvalid) is false")
			}
		})
	}
}

func TestTaggerRoundTrip(t *testing.T) {
	t.Parallel()
	tg := NewTagger(DeriveKey("secret", "userdata"))
	ref := Reference{JobID: "j_abcdefghijklmnopqrst", Attempt: 2}
	ud := tg.Tag(ref)
	if len(ud) > 256 || strings.ContainsAny(ud, "{}") {
		t.Fatalf("userData %q breaks the provider's rules", ud)
	}
	got, err := tg.Parse(ud)
	if err != nil || got != ref {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	other := NewTagger(DeriveKey("other", "userdata"))
	for _, bad := range []string{"j_abcdefghijklmnopqrst", "j_x.1.AAAAAAAAAAAAAAAAAAAAAA", other.Tag(ref), ud[:len(ud)-1] + "A", "order-42"} {
		if _, err := tg.Parse(bad); !errors.Is(err, ErrForgedTag) {
			t.Errorf("Parse(%q) = %v, want ErrForgedTag", bad, err)
		}
	}
	if _, err := tg.Parse(""); !errors.Is(err, ErrNoReference) {
		t.Errorf("Parse(\"\") = %v, want ErrNoReference", err)
	}
}

func TestCodeSealer(t *testing.T) {
	t.Parallel()
	s, err := NewCodeSealer(DeriveKey("secret", "code"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal("j_1", "123456")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "123456") {
		t.Fatal("sealed code contains the code")
	}
	if got, err := s.Open("j_1", sealed); err != nil || got != "123456" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open("j_2", sealed); !errors.Is(err, ErrSealedCode) {
		t.Errorf("Open with another job id = %v, want ErrSealedCode", err)
	}
	for range 50 {
		c, err := GenerateCode(6)
		if err != nil || len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("GenerateCode = %q, %v", c, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: time.Second, Max: 8 * time.Second}
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		for range 20 {
			d := b.Delay(n)
			if d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	r := &RescheduleError{Delay: 3 * time.Second, Reason: "slots"}
	if IsFailure(r) || !IsFailure(&TransientError{Err: errors.New("x")}) {
		t.Error("IsFailure misclassifies")
	}
	if got := b.RetryDelayFunc()(0, r, nil); got != 3*time.Second {
		t.Errorf("RetryDelayFunc(reschedule) = %v", got)
	}
}
