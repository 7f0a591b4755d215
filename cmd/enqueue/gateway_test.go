package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/config"
	"github.com/voicequeue/voicequeue/internal/testredis"
)

// TestBadInputAgainstGateway sends every bad request of internal/queue/testdata/bad_requests.json
// through the CLI to a real gateway on the real Redis, as a one-line file, plus bad flags of the
// single-job commands: each exits 2 naming the field, and nothing reaches Redis.
func TestBadInputAgainstGateway(t *testing.T) {
	_, rdb := testredis.Real(t)
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	cfg := app.Bind(config.NewSet(fs, func(string) string { return "" }), "gateway")
	cfg.PushSecret, cfg.APITokens, cfg.SpoolDir = "cliTestPushSecret0123", "cli-test-token-0123456789", "off"
	reg := app.NewRegistry()
	gw, err := app.NewGateway(cfg, app.Deps{Redis: rdb, Registry: reg}, app.NewMetrics(reg), false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler)
	defer srv.Close()

	keys := func() int {
		n, err := rdb.DBSize(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}
	before := keys()
	raw, err := os.ReadFile("../../internal/queue/testdata/bad_requests.json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct{ Name, Body, Field string }
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	common := []string{"--api", srv.URL, "--token", "cli-test-token-0123456789"}
	n := 0
	for _, row := range rows {
		if !json.Valid([]byte(row.Body)) || strings.ContainsAny(row.Body, "\n") {
			continue // a file line must be one JSON object
		}
		n++
		t.Run("file/"+row.Name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"file", "--format", "jsonl", "--progress=false", "-"}, common...)
			code := run(t.Context(), args, strings.NewReader(row.Body+"\n"), &stdout, &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "line 1: "+row.Field+":") && !strings.Contains(stderr.String(), "line 1: "+row.Field+" ") {
				t.Errorf("stderr does not name field %q on line 1:\n%s", row.Field, stderr.String())
			}
		})
	}
	flags := []struct {
		name  string
		args  []string
		field string
	}{
		{"verify bad number", []string{"verify", "--to", "hello"}, "to"},
		{"verify bad code", []string{"verify", "--to", "+8613800000001", "--code", "12ab"}, "code"},
		{"notify no content", []string{"notify", "--to", "+8613800000001"}, "template"},
		{"click2call no from", []string{"click2call", "--to", "+8613800000001"}, "from"},
		{"bad ttl", []string{"verify", "--to", "+8613800000001", "--ttl", "soon"}, "ttl"},
		{"bad at", []string{"verify", "--to", "+8613800000001", "--at", "tomorrow"}, "at"},
		{"private callback", []string{"verify", "--to", "+8613800000001", "--callback-url", "http://10.0.0.1/x"}, "callback"},
	}
	for _, tt := range flags {
		n++
		t.Run("flags/"+tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append(tt.args, common...), strings.NewReader(""), &stdout, &stderr)
			if code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), tt.field) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, and %q named", code, stdout.String(), stderr.String(), tt.field)
			}
		})
	}
	if n < 25 {
		t.Errorf("only %d bad inputs tried, want at least 25", n)
	}
	if after := keys(); after != before {
		t.Errorf("Redis keys %d → %d: bad input reached Redis", before, after)
	}
}
