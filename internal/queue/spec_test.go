package queue

import (
	"errors"
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
var BadRequests = []struct {
	Name  string
	Body  string
	Field string
}{
	{"empty object", `{}`, "to"},
	{"missing kind", `{"to":"+8613800000001"}`, "kind"},
	{"unknown kind", `{"kind":"sms","to":"+8613800000001"}`, "kind"},
	{"missing to", `{"kind":"verify"}`, "to"},
	{"to not a number", `{"kind":"verify","to":"hello"}`, "to"},
	{"to too short", `{"kind":"verify","to":"+861"}`, "to"},
	{"to invalid for region", `{"kind":"verify","to":"+86123"}`, "to"},
	{"to wrong type", `{"kind":"verify","to":8613800000001}`, "to"},
	{"code letters", `{"kind":"verify","to":"+8613800000001","code":"12ab"}`, "code"},
	{"code too long", `{"kind":"verify","to":"+8613800000001","code":"123456789"}`, "code"},
	{"code too short", `{"kind":"verify","to":"+8613800000001","code":"1"}`, "code"},
	{"notify without content", `{"kind":"notify","to":"+8613800000001"}`, "template_id"},
	{"notify template and file", `{"kind":"notify","to":"+8613800000001","template_id":"t","voice_file":"a.wav"}`, "voice_file"},
	{"template param too long", `{"kind":"notify","to":"+8613800000001","template_id":"t","template_params":["` + strings.Repeat("x", 33) + `"]}`, "template_params[0]"},
	{"template param empty", `{"kind":"notify","to":"+8613800000001","template_id":"t","template_params":["ok",""]}`, "template_params[1]"},
	{"template params not strings", `{"kind":"notify","to":"+8613800000001","template_id":"t","template_params":[1,2]}`, "template_params"},
	{"template id too long", `{"kind":"notify","to":"+8613800000001","template_id":"` + strings.Repeat("t", 33) + `"}`, "template_id"},
	{"voice file bad chars", `{"kind":"notify","to":"+8613800000001","voice_file":"../etc/passwd wav"}`, "voice_file"},
	{"too many play items", `{"kind":"notify","to":"+8613800000001","play":[{"voice_file":"a"},{"voice_file":"a"},{"voice_file":"a"},{"voice_file":"a"},{"voice_file":"a"},{"voice_file":"a"}]}`, "play"},
	{"play item empty", `{"kind":"notify","to":"+8613800000001","play":[{"voice_file":"a.wav"},{}]}`, "play[1].template_id"},
	{"collect digits too many", `{"kind":"notify","to":"+8613800000001","voice_file":"a.wav","collect_digits":33}`, "collect_digits"},
	{"click2call missing from", `{"kind":"click2call","to":"+8613800000001"}`, "from"},
	{"max duration too long", `{"kind":"click2call","from":"+8613800000002","to":"+8613800000001","max_duration_minutes":1441}`, "max_duration_minutes"},
	{"code on notify", `{"kind":"notify","to":"+8613800000001","voice_file":"a.wav","code":"1234"}`, "code"},
	{"record on verify", `{"kind":"verify","to":"+8613800000001","record":true}`, "record"},
	{"callback not http", `{"kind":"verify","to":"+8613800000001","callback_url":"ftp://example.com/x"}`, "callback_url"},
	{"callback relative", `{"kind":"verify","to":"+8613800000001","callback_url":"/hook"}`, "callback_url"},
	{"scheduled_at not RFC 3339", `{"kind":"verify","to":"+8613800000001","scheduled_at":"tomorrow"}`, "scheduled_at"},
	{"scheduled_at too far", `{"kind":"verify","to":"+8613800000001","scheduled_at":"2099-01-01T00:00:00Z"}`, "scheduled_at"},
	{"ttl not a duration", `{"kind":"verify","to":"+8613800000001","ttl":"soon"}`, "ttl"},
	{"ttl negative", `{"kind":"verify","to":"+8613800000001","ttl":"-5m"}`, "ttl"},
	{"ttl too long", `{"kind":"verify","to":"+8613800000001","ttl":"1000h"}`, "ttl"},
	{"unknown field", `{"kind":"verify","to":"+8613800000001","priority":"high"}`, "priority"},
	{"idempotency key with control chars", `{"kind":"verify","to":"+8613800000001","idempotency_key":"a\u0001b"}`, "idempotency_key"},
	{"bad timezone", `{"kind":"notify","to":"+8613800000001","voice_file":"a.wav","timezone":"Mars/Olympus"}`, "timezone"},
	{"malformed json", `{"kind":"verify",`, "body"},
	{"trailing data", `{"kind":"verify","to":"+8613800000001"} {}`, "body"},
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	v := NewValidator(ValidatorOptions{Now: fixedNow})
	for _, tt := range BadRequests {
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
