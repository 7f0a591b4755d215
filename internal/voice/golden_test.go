package voice

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func fullNotify() *NotifyRequest {
	return &NotifyRequest{
		DisplayNbr: "+8675500000001",
		CalleeNbr:  "+8613800000002",
		PlayInfoList: []PlayItem{
			{NotifyVoice: "welcome.wav"},
			{TemplateID: "abc123", TemplateParas: []string{"3", "2024/05/01"},
				CollectInd: 1, ReplayAfterCollection: true, CollectContentTriggerReplaying: "1"},
			{NotifyVoice: "bye.wav"},
		},
		StatusURL:      "https://gw.example.com/callbacks/status",
		FeeURL:         "https://www.huawei.com:9330/fee",
		ReturnIdlePort: true,
		UserData:       "order-42",
	}
}

func fullVerify() *VerifyRequest {
	return &VerifyRequest{
		DisplayNbr:   "+8675500000001",
		CalleeNbr:    "+8613800000002",
		LanguageType: LanguageChinese,
		PreTone:      "welcome.wav",
		VerifyCode:   "12345678",
		PosTone:      "bye.wav",
		Times:        intPtr(0),
		StatusURL:    "https://gw.example.com/callbacks/status",
		FeeURL:       "https://gw.example.com/callbacks/fee",
		UserData:     "cwgtest",
	}
}

func fullClick2Call() *Click2CallRequest {
	return &Click2CallRequest{
		DisplayNbr:                    "+8675500000001",
		CallerNbr:                     "+8613700000001",
		DisplayCalleeNbr:              "+8675500000001",
		CalleeNbr:                     "+8613700000002",
		MaxDuration:                   30,
		LastMinVoice:                  "lastmin.wav",
		LastMinToUE:                   LastMinToBoth,
		PlayPreVoice:                  true,
		PreVoice:                      "connecting.wav",
		WaitVoice:                     "wait.wav",
		CalleeMedia:                   CalleeMediaFail,
		StatusURL:                     "https://gw.example.com/callbacks/status",
		FeeURL:                        "https://gw.example.com/callbacks/fee",
		RecordFlag:                    true,
		RecordHintTone:                "recorded.wav",
		PartyTypeRequiredInDisconnect: true,
		ReturnIdlePort:                true,
		UserData:                      "cwgtest",
	}
}

// TestGoldenRequests captures the body each API sends and compares it, indented, with
// testdata/<name>.golden.json. Run `go test ./internal/voice -run Golden -update` to rewrite.
func TestGoldenRequests(t *testing.T) {
	t.Parallel()
	bodies := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
		io.WriteString(w, `{"resultcode":"0","resultdesc":"Success","sessionId":"s-1"}`)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := context.Background()

	tests := []struct {
		name string
		call func() error
	}{
		{"notify", func() error { _, err := c.Notify(ctx, fullNotify()); return err }},
		{"notify_minimal", func() error { _, err := c.Notify(ctx, validNotify()); return err }},
		{"verify", func() error { _, err := c.Verify(ctx, fullVerify()); return err }},
		{"verify_minimal", func() error { _, err := c.Verify(ctx, validVerify()); return err }},
		{"click2call", func() error { _, err := c.Click2Call(ctx, fullClick2Call()); return err }},
		{"click2call_minimal", func() error { _, err := c.Click2Call(ctx, validClick2Call()); return err }},
		{"callstop", func() error { return c.CallStop(ctx, "1202_566_0_20161228102743@callenabler.home1.com") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatalf("call: %v", err)
			}
			body := <-bodies
			var indented bytes.Buffer
			if err := json.Indent(&indented, body, "", "  "); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, body)
			}
			indented.WriteByte('\n')
			path := filepath.Join("testdata", tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, indented.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(indented.Bytes(), want) {
				t.Fatalf("body differs from %s:\ngot:\n%s\nwant:\n%s", path, indented.Bytes(), want)
			}
			checkWireRules(t, body)
		})
	}
}

// checkWireRules asserts the documented JSON conventions independently of the golden files:
// flags are the strings "true"/"false", push URLs are Base64 of an http(s) URL, and absent
// optional fields are omitted (no null, no empty string, no zero flag).
func checkWireRules(t *testing.T, body []byte) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(path+"."+k, x)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		case bool:
			t.Errorf("%s is a JSON boolean; flags must be the strings \"true\"/\"false\"", path)
		case nil:
			t.Errorf("%s is null; absent optional fields must be omitted", path)
		case string:
			if v == "" {
				t.Errorf("%s is an empty string; absent optional fields must be omitted", path)
			}
		}
	}
	walk("", m)
	for _, key := range []string{"returnIdlePort", "playPreVoice", "recordFlag", "partyTypeRequiredInDisconnect"} {
		if v, ok := m[key]; ok && v != "true" {
			t.Errorf("%s = %v, want the string \"true\" (a false flag is omitted)", key, v)
		}
	}
	for _, key := range []string{"statusUrl", "feeUrl"} {
		s, ok := m[key].(string)
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || !strings.HasPrefix(string(raw), "http") {
			t.Errorf("%s = %q is not Base64 of an http(s) URL", key, s)
		}
	}
}

// TestEncodedURLOfficialExample: the Base64 example of ref §8.
func TestEncodedURLOfficialExample(t *testing.T) {
	t.Parallel()
	if got := EncodedURL("https://www.huawei.com:9330/fee").Encoded(); got != "aHR0cHM6Ly93d3cuaHVhd2VpLmNvbTo5MzMwL2ZlZQ==" {
		t.Fatalf("Encoded = %q", got)
	}
}
