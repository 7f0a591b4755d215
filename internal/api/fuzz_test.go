package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// FuzzDecodeBatch: any body decodes to a clear result — a *FieldError for the envelope, or one
// result slot per item with each bad item naming a field — and never panics.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"jobs":[{"kind":"verify","to":"+8613800000001"},{"kind":"x"}]}`))
	f.Add([]byte(`{"jobs":[]}`))
	f.Add([]byte(`{"jobs":[{"kind":"notify","to":"+8613800000001","play":[{"voice_file":"a.wav"}]},null,1,"x"]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		reqs, index, results, err := decodeBatch(body)
		if err != nil {
			var fe *queue.FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("envelope error %v is not a FieldError naming a field", err)
			}
			return
		}
		if len(reqs) != len(index) {
			t.Fatalf("%d requests, %d indexes", len(reqs), len(index))
		}
		good := map[int]bool{}
		for _, i := range index {
			good[i] = true
		}
		for i, r := range results {
			if !good[i] && (r.Error == "" || r.Field == "") {
				t.Fatalf("bad item %d has no error or field: %+v", i, r)
			}
		}
		if _, err := json.Marshal(results); err != nil {
			t.Fatal(err)
		}
	})
}
