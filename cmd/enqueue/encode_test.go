package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// TestAppendRequestKnowsEveryField fails when queue.Request or queue.PlayItem gains (or loses) a
// JSON field that appendRequest does not write: a field added to the API must not be dropped
// silently by the CLI.
func TestAppendRequestKnowsEveryField(t *testing.T) {
	t.Parallel()
	for _, typ := range []reflect.Type{reflect.TypeFor[queue.Request](), reflect.TypeFor[queue.PlayItem]()} {
		t.Run(typ.Name(), func(t *testing.T) {
			t.Parallel()
			var names []string
			for f := range typ.Fields() {
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				names = append(names, name)
			}
			if want := encodedFields[typ.Name()]; !slices.Equal(names, want) {
				t.Errorf("queue.%s has the JSON fields\n%v\nappendRequest writes\n%v\nupdate encode.go", typ.Name(), names, want)
			}
		})
	}
}

func TestAppendRequestMatchesJSONMarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  queue.Request
	}{
		{"zero", queue.Request{}},
		{"notify from a file", queue.Request{Kind: "notify", To: "+8613900000001", TemplateID: "tpl_arrears",
			TemplateParams: []string{"42.50", "2026/12/01"}, Bulk: ptr(true), IdempotencyKey: "run7-12"}},
		{"every field", queue.Request{Kind: "click2call", To: "+8613900000001", From: "+8613900000002", TemplateID: "T",
			TemplateParams: []string{"a", "b"}, VoiceFile: "v.wav", CollectDigits: 4, Code: "1234", MaxDurationMinutes: 30,
			Record: true, IdempotencyKey: "k", CallbackURL: "https://example.com/cb?a=1&b=<2>", ScheduledAt: "2026-01-02T15:04:05+08:00",
			TTL: "10m", Bulk: ptr(false), Timezone: "Asia/Shanghai"}},
		{"play list", queue.Request{Kind: "notify", To: "1", Play: []queue.PlayItem{{}, {VoiceFile: "a.wav"},
			{TemplateID: "T", TemplateParams: []string{"x"}}, {TemplateParams: []string{"only"}}, {TemplateID: "T", VoiceFile: "b"}}}},
		{"empty but not nil lists", queue.Request{Kind: "notify", TemplateParams: []string{}, Play: []queue.PlayItem{}}},
		{"negative numbers", queue.Request{CollectDigits: -1, MaxDurationMinutes: -2147483648}},
		{"escapes", queue.Request{Kind: "a\"b\\c", To: "\x00\x01\b\f\n\r\t\x1f\x7f", TemplateParams: []string{"<script>&", "{}", ""}}},
		{"non-ASCII", queue.Request{Kind: "通知", To: "١٢٣", TemplateParams: []string{"Zoë", "\u2028\u2029", "😀"}, Timezone: "Europe/Zürich"}},
		{"invalid UTF-8", queue.Request{Kind: "\xff", To: "a\xc3", TemplateParams: []string{"\xed\xa0\x80"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkEncoding(t, tt.req)
		})
	}
}

// checkEncoding compares appendRequest and appendBatch with json.Marshal.
func checkEncoding(t *testing.T, req queue.Request) {
	t.Helper()
	want, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendRequest([]byte("prefix"), &req); !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("appendRequest:\n got %s\nwant prefix%s", got, want)
	}
	batch := []queue.Request{req, {Kind: "verify", To: "+8613900000001"}, req}
	want, err = json.Marshal(struct {
		Jobs []queue.Request `json:"jobs"`
	}{batch})
	if err != nil {
		t.Fatal(err)
	}
	if got := appendBatch(nil, batch); !bytes.Equal(got, want) {
		t.Fatalf("appendBatch:\n got %s\nwant %s", got, want)
	}
}

func FuzzAppendRequest(f *testing.F) {
	f.Add("notify", "+8613900000001", "tpl", "42.50|x", "", 0, true, uint8(1))
	f.Add("a\"<>&\\", "\x00\xff\u2028", "", "|", "v", -7, false, uint8(2))
	f.Fuzz(func(t *testing.T, kind, to, tpl, params, voice string, n int, record bool, bulk uint8) {
		req := queue.Request{Kind: kind, To: to, From: voice, TemplateID: tpl, VoiceFile: voice, CollectDigits: n,
			Code: params, MaxDurationMinutes: -n, Record: record, IdempotencyKey: tpl, CallbackURL: params,
			ScheduledAt: to, TTL: kind, Timezone: voice}
		if params != "" {
			req.TemplateParams = strings.Split(params, "|")
			req.Play = []queue.PlayItem{{TemplateID: tpl, TemplateParams: req.TemplateParams, VoiceFile: voice}, {}}
		}
		switch bulk % 3 {
		case 1:
			req.Bulk = ptr(true)
		case 2:
			req.Bulk = ptr(false)
		}
		checkEncoding(t, req)
	})
}
