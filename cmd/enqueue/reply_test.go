package main

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// TestDecodeBatchReply: the fast path reads the gateway's replies, and every reply, whether it
// takes the fast path or not, decodes exactly as json.Unmarshal decodes it.
func TestDecodeBatchReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		fast bool // the fast path must take it
	}{
		{"the gateway's reply", `{"accepted":2,"rejected":1,"results":[{"index":0,"id":"j_01","state":"queued"},` +
			`{"index":1,"error":"on the \"do-not-call\" list","field":"to"},{"index":2,"id":"j_02","state":"scheduled","existing":true}]}` + "\n", true},
		{"white space", " {\n\t\"accepted\" : 1 ,\r\n \"results\" : [ { \"index\" : 0 , \"id\" : \"j_1\" } ] }\n", true},
		{"empty", `{}`, true},
		{"no results", `{"accepted":0,"rejected":0,"results":[]}`, true},
		{"empty item", `{"results":[{}]}`, true},
		{"escapes and UTF-8", `{"results":[{"index":0,"error":"a\\b\/c\n\t\r\b\f ünïcödé …","field":"play[1].template_id"}]}`, true},
		{"negative and zero", `{"accepted":-0,"rejected":-12,"results":[{"index":0,"existing":false}]}`, true},
		{"unicode escape", `{"results":[{"index":0,"error":"\u00e9t\u00e9"}]}`, false},
		{"unknown key", `{"accepted":1,"took_ms":3,"results":[{"index":0,"id":"j_1"}]}`, false},
		{"key in another case", `{"Accepted":1,"results":[{"Index":0,"ID":"j_1"}]}`, false},
		{"repeated key", `{"results":[{"index":0,"index":1}]}`, false},
		{"null", `{"results":null}`, false},
		{"float", `{"accepted":1.0}`, false},
		{"exponent", `{"accepted":1e2}`, false},
		{"huge", `{"accepted":123456789012345678901234567890}`, false},
		{"leading zero", `{"accepted":01}`, false},
		{"invalid UTF-8", "{\"results\":[{\"index\":0,\"id\":\"j_\xff\"}]}", false},
		{"control character", "{\"results\":[{\"index\":0,\"id\":\"j_\x01\"}]}", false},
		{"trailing data", `{"accepted":1} {}`, false},
		{"truncated", `{"accepted":1,"results":[{"index":0,"id":"j_`, false},
		{"not an object", `[]`, false},
		{"empty body", ``, false},
		{"wrong type", `{"results":[{"index":"0"}]}`, false},
		{"trailing comma", `{"results":[{"index":0},]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var fast batchReply
			p := replyParser{data: []byte(tt.data)}
			if got := p.reply(&fast, 4); got != tt.fast {
				t.Errorf("fast path took it: %v, want %v", got, tt.fast)
			}
			checkReply(t, []byte(tt.data))
		})
	}
}

// checkReply compares decodeBatchReply with json.Unmarshal.
func checkReply(t *testing.T, data []byte) {
	t.Helper()
	var want, got batchReply
	wantErr := json.Unmarshal(data, &want)
	err := decodeBatchReply(data, 2, &got)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decodeBatchReply(%q): error %v, json.Unmarshal: %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	if len(got.Results) == 0 && len(want.Results) == 0 {
		got.Results, want.Results = nil, nil // empty either way
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeBatchReply(%q):\n got %+v\nwant %+v", data, got, want)
	}
}

func FuzzDecodeBatchReply(f *testing.F) {
	for _, seed := range []string{
		`{"accepted":2,"rejected":1,"results":[{"index":0,"id":"j_01","state":"queued"},{"index":1,"error":"bad \"x\"","field":"to"},{"index":2,"id":"j_02","existing":true}]}`,
		`{"results":[{"index":0,"error":"\u00e9\/\\"}]}`,
		`{"accepted":-0,"rejected":1e2}`,
		`{"results":[{}, {"index":-1}]} `,
	} {
		f.Add([]byte(seed))
	}
	// A reply as the gateway encodes it.
	items := []queue.BatchItem{{Index: 0, ID: "j_1", State: "queued"}, {Index: 1, Error: "unknown kind \"x\": <one of> …", Field: "kind"}}
	data, err := json.Marshal(batchReply{Accepted: 1, Rejected: 1, Results: items})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkReply(t, data)
	})
}

// TestOrderItemsInOrder: a reply already in request order is returned as it is; one out of
// order is put in order.
func TestOrderItemsInOrder(t *testing.T) {
	t.Parallel()
	in := []queue.BatchItem{{Index: 0, ID: "a"}, {Index: 1, Error: "bad", Field: "to"}, {Index: 2, ID: "c"}}
	got, err := orderItems(in, 3)
	if err != nil || &got[0] != &in[0] {
		t.Errorf("in order: got %v, %v; want the same slice", got, err)
	}
	shuffled := []queue.BatchItem{in[2], in[0], in[1]}
	got, err = orderItems(shuffled, 3)
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Errorf("shuffled: got %v, %v; want %v", got, err, in)
	}
}
