package queue

import (
	"errors"
	"strings"
	"testing"
)

// FuzzDecodeRequest: any job body is either a valid, normalised job or a *FieldError that names
// a field — never a panic, never an unnormalised number.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"kind":"verify","to":"+8613800000001","code":"1234"}`))
	f.Add([]byte(`{"kind":"notify","to":"13800000001","template_id":"t","template_params":["a","b"],"collect_digits":1}`))
	f.Add([]byte(`{"kind":"click2call","from":"+8613800000001","to":"+8613800000002","max_duration_minutes":5,"record":true}`))
	f.Add([]byte(`{"kind":"notify","to":"+8613800000001","play":[{"voice_file":"a.wav"},{"template_id":"t"}],"scheduled_at":"2026-01-01T00:00:00Z","ttl":"1h"}`))
	f.Add([]byte(`{"kind":"verify","to":"+1 212 555 0111","callback_url":"https://example.com/h?x=1","timezone":"Asia/Tokyo"}`))
	v := NewValidator(ValidatorOptions{Now: fixedNow})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
		if err == nil {
			var job Job
			job, _, err = v.Validate(req)
			if err == nil {
				if !strings.HasPrefix(job.To, "+") || job.Queue == "" || job.DispatchBy.IsZero() {
					t.Fatalf("valid job not normalised: %+v", job)
				}
				if job.Kind == KindClick2Call && !strings.HasPrefix(job.From, "+") {
					t.Fatalf("click2call from not normalised: %q", job.From)
				}
				return
			}
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field == "" || fe.Message == "" {
			t.Fatalf("error %v is not a FieldError naming a field", err)
		}
	})
}
