package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// readAll reads every record, failing the test on a fatal error.
func readAll(t testing.TB, rr recordReader) []record {
	t.Helper()
	var out []record
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, rec)
	}
}

// outcome is a record reduced to what the tests compare: the line and either the request
// (as JSON) or "FIELD: message".
type outcome struct {
	Line int
	Req  string
	Err  string
}

func outcomes(recs []record) []outcome {
	out := make([]outcome, len(recs))
	for i, r := range recs {
		out[i].Line = r.Line
		if r.Err != nil {
			var fe *queue.FieldError
			if errors.As(r.Err, &fe) {
				out[i].Err = fe.Field + ": " + fe.Message
			} else {
				out[i].Err = r.Err.Error()
			}
			continue
		}
		b, _ := json.Marshal(r.Req)
		out[i].Req = string(b)
	}
	return out
}

func TestJSONLReader(t *testing.T) {
	t.Parallel()
	long := `{"kind":"notify","to":"+8613800000001","template_id":"` + strings.Repeat("x", maxLineBytes) + `"}`
	tests := []struct {
		name  string
		input string
		want  []outcome
	}{
		{
			name:  "good lines, blank lines skipped but counted",
			input: "{\"kind\":\"verify\",\"to\":\"+8613800000001\"}\n\n   \n{\"kind\":\"notify\",\"to\":\"+8613800000002\",\"template_id\":\"T1\",\"template_params\":[\"a\",\"b\"]}\n",
			want: []outcome{
				{Line: 1, Req: `{"kind":"verify","to":"+8613800000001"}`},
				{Line: 4, Req: `{"kind":"notify","to":"+8613800000002","template_id":"T1","template_params":["a","b"]}`},
			},
		},
		{
			name:  "CRLF, byte-order mark and no final newline",
			input: "\ufeff{\"kind\":\"verify\",\"to\":\"1\"}\r\n{\"kind\":\"verify\",\"to\":\"2\"}",
			want: []outcome{
				{Line: 1, Req: `{"kind":"verify","to":"1"}`},
				{Line: 2, Req: `{"kind":"verify","to":"2"}`},
			},
		},
		{
			name: "bad lines are numbered and do not stop the file",
			input: strings.Join([]string{
				`{"kind":"verify","to":"+8613800000001"`,
				`{"kind":"verify","to":8613800000001}`,
				`{"kind":"verify","to":"+8613800000001","colour":"red"}`,
				`{"kind":"verify","to":"+8613800000001"} {}`,
				`[1,2]`,
				`{"kind":"verify","to":"+8613800000009"}`,
			}, "\n"),
			want: []outcome{
				{Line: 1, Err: "body: malformed JSON"},
				{Line: 2, Err: "to: must be a string"},
				{Line: 3, Err: "colour: unknown field"},
				{Line: 4, Err: "body: unexpected data after the JSON object"},
				{Line: 5, Err: "body: must be an object"},
				{Line: 6, Req: `{"kind":"verify","to":"+8613800000009"}`},
			},
		},
		{
			name:  "a line over the limit is reported and the next one read",
			input: long + "\n" + `{"kind":"verify","to":"+8613800000003"}` + "\n",
			want: []outcome{
				{Line: 1, Err: fmt.Sprintf("body: line longer than %d bytes", maxLineBytes)},
				{Line: 2, Req: `{"kind":"verify","to":"+8613800000003"}`},
			},
		},
		{name: "empty", input: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := outcomes(readAll(t, newJSONLReader(strings.NewReader(tt.input))))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				w := tt.want[i]
				if got[i].Line != w.Line || got[i].Req != w.Req || !strings.HasPrefix(got[i].Err, w.Err) || (w.Err == "") != (got[i].Err == "") {
					t.Errorf("record %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestCSVReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  []outcome
	}{
		{
			name: "fields, params split on |, empty cells left out",
			input: "kind,to,template_id,template_params,collect_digits,bulk,callback_url\n" +
				"notify,+8613800000001,T1,Alice|42|x y,2,,\n" +
				"notify,+8613800000002,T1,,,false,https://example.com/h\n",
			want: []outcome{
				{Line: 2, Req: `{"kind":"notify","to":"+8613800000001","template_id":"T1","template_params":["Alice","42","x y"],"collect_digits":2}`},
				{Line: 3, Req: `{"kind":"notify","to":"+8613800000002","template_id":"T1","callback_url":"https://example.com/h","bulk":false}`},
			},
		},
		{
			name: "quoting: commas, quotes and a line break inside fields; the record's first line is reported",
			input: "\ufeff kind , TO ,template_params,record,from,max_duration_minutes\n" +
				"notify,+8613800000001,\"a,b|say \"\"hi\"\"\",,,\n" +
				"\n" +
				"click2call,+8613800000002,\"\",yes,+8613800000003,\"1\n0\"\n" +
				"verify,+8613800000004,,,,\n",
			want: []outcome{
				{Line: 2, Req: `{"kind":"notify","to":"+8613800000001","template_params":["a,b","say \"hi\""]}`},
				{Line: 4, Err: "max_duration_minutes: must be an integer"},
				{Line: 6, Req: `{"kind":"verify","to":"+8613800000004"}`},
			},
		},
		{
			name: "bad rows are numbered and skipped",
			input: "kind,to,collect_digits,record,bulk\n" +
				"notify,+8613800000001,many,,\n" +
				"click2call,+8613800000001,,perhaps,\n" +
				"notify,+8613800000001,,,sometimes\n" +
				"notify,+8613800000001\n" +
				"notify,+86138\"00000001,,,\n" +
				"verify,+8613800000005,,,\n",
			want: []outcome{
				{Line: 2, Err: "collect_digits: must be an integer"},
				{Line: 3, Err: "record: must be true or false"},
				{Line: 4, Err: "bulk: must be true or false"},
				{Line: 5, Err: "columns: has 2 fields, the header has 5"},
				{Line: 6, Err: "csv: bare \" in non-quoted-field"},
				{Line: 7, Req: `{"kind":"verify","to":"+8613800000005"}`},
			},
		},
		{name: "header only", input: "kind,to\n", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rr, err := newCSVReader(strings.NewReader(tt.input))
			if err != nil {
				t.Fatalf("header: %v", err)
			}
			got := outcomes(readAll(t, rr))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				w := tt.want[i]
				if got[i].Line != w.Line || got[i].Req != w.Req || !strings.HasPrefix(got[i].Err, w.Err) || (w.Err == "") != (got[i].Err == "") {
					t.Errorf("record %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input, want string
	}{
		{"empty file", "", "header: the CSV file is empty"},
		{"unknown column", "kind,to,colour\n", `header: unknown column "colour"`},
		{"column twice", "kind,to,TO\n", `header: column "to" appears twice`},
		{"missing kind", "to,template_id\n", `header: missing column "kind"`},
		{"missing to", "kind\n", `header: missing column "to"`},
		{"play column", "kind,to,play\n", `header: column "play" is not supported in CSV`},
		{"unnamed column", "kind,,to\n", "header: column 2 has no name"},
		{"broken quoting", "kind,\"to\n", "header: line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newCSVReader(strings.NewReader(tt.input))
			var fe *queue.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Error(), tt.want) {
				t.Fatalf("err = %v, want a header FieldError starting %q", err, tt.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]fileFormat{"a.csv": formatCSV, "B.CSV": formatCSV, "x/y.jsonl": formatJSONL, "z.ndjson": formatJSONL} {
		if got, err := formatOf(path); err != nil || got != want {
			t.Errorf("formatOf(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
	for _, path := range []string{"a.json", "a", "a.csv.gz"} {
		if _, err := formatOf(path); exitCode(err) != exitBadInput {
			t.Errorf("formatOf(%q) = %v, want a usage error", path, err)
		}
	}
	for input, want := range map[string]fileFormat{
		`{"kind":"verify"}`: formatJSONL, "\n\n  {": formatJSONL, "\ufeff{": formatJSONL,
		"kind,to\n": formatCSV, "": formatCSV, "\ufeffkind": formatCSV, "   ": formatCSV,
	} {
		if got := sniffFormat(bufio.NewReader(strings.NewReader(input))); got != want {
			t.Errorf("sniffFormat(%q) = %q, want %q", input, got, want)
		}
	}
}

func TestLinePrep(t *testing.T) {
	t.Parallel()
	p := &linePrep{
		v:           queue.NewValidator(queue.ValidatorOptions{DefaultRegion: "CN"}),
		callbackURL: "https://example.com/default", ttl: "1h", keyPrefix: "run1", bulk: true,
	}
	tests := []struct {
		name    string
		rec     record
		want    queue.Request
		wantErr string
	}{
		{
			name: "notify defaults to bulk, gets file defaults, key from the line and an E.164 number",
			rec:  record{Line: 7, Req: queue.Request{Kind: "notify", To: "138 0000 0001", TemplateID: "T1"}},
			want: queue.Request{Kind: "notify", To: "+8613800000001", TemplateID: "T1", Bulk: ptr(true),
				CallbackURL: "https://example.com/default", TTL: "1h", IdempotencyKey: "run1-7"},
		},
		{
			name: "what the line says wins",
			rec: record{Line: 8, Req: queue.Request{Kind: "notify", To: "+8613800000001", TemplateID: "T1", Bulk: ptr(false),
				CallbackURL: "https://example.com/mine", TTL: "5m", IdempotencyKey: "mine"}},
			want: queue.Request{Kind: "notify", To: "+8613800000001", TemplateID: "T1", Bulk: ptr(false),
				CallbackURL: "https://example.com/mine", TTL: "5m", IdempotencyKey: "mine"},
		},
		{
			name: "verify is not made bulk",
			rec:  record{Line: 9, Req: queue.Request{Kind: "verify", To: "+8613800000001"}},
			want: queue.Request{Kind: "verify", To: "+8613800000001", CallbackURL: "https://example.com/default", TTL: "1h", IdempotencyKey: "run1-9"},
		},
		{
			name: "click2call numbers are normalised",
			rec:  record{Line: 10, Req: queue.Request{Kind: "click2call", From: "13800000002", To: "13800000003"}},
			want: queue.Request{Kind: "click2call", From: "+8613800000002", To: "+8613800000003", CallbackURL: "https://example.com/default", TTL: "1h", IdempotencyKey: "run1-10"},
		},
		{name: "invalid", rec: record{Line: 11, Req: queue.Request{Kind: "notify", To: "+8613800000001"}}, wantErr: "template_id"},
		{name: "kind missing", rec: record{Line: 12, Req: queue.Request{To: "+8613800000001"}}, wantErr: "kind"},
		{name: "decode error kept", rec: record{Line: 13, Err: &queue.FieldError{Field: "body", Message: "x"}}, wantErr: "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := tt.rec
			p.prepare(&rec)
			if tt.wantErr != "" {
				var fe *queue.FieldError
				if !errors.As(rec.Err, &fe) || fe.Field != tt.wantErr {
					t.Fatalf("err = %v, want field %s", rec.Err, tt.wantErr)
				}
				return
			}
			if rec.Err != nil {
				t.Fatalf("err = %v", rec.Err)
			}
			if !reflect.DeepEqual(rec.Req, tt.want) {
				t.Errorf("request\n%+v\nwant\n%+v", rec.Req, tt.want)
			}
		})
	}
}

// FuzzJSONLReader: any input reads to the end without panicking, with strictly increasing line
// numbers, each record either a request or a field error.
func FuzzJSONLReader(f *testing.F) {
	f.Add([]byte("{\"kind\":\"verify\",\"to\":\"+8613800000001\"}\n\n{\"kind\":1}\r\n"))
	f.Add([]byte("\ufeff[]\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStream(t, newJSONLReader(bytes.NewReader(data)))
	})
}

// FuzzCSVReader: the same for CSV, after any header.
func FuzzCSVReader(f *testing.F) {
	f.Add([]byte("kind,to,template_params\nnotify,+8613800000001,a|b\n\"x\ny\",1,2\n"))
	f.Add([]byte("kind,to,bulk,record,collect_digits\nnotify,1,yes,no,3\nverify,\"2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rr, err := newCSVReader(bytes.NewReader(data))
		if err != nil {
			var fe *queue.FieldError
			if !errors.As(err, &fe) || fe.Field != "header" {
				t.Fatalf("header error %v is not a header FieldError", err)
			}
			return
		}
		checkStream(t, rr)
	})
}

func checkStream(t *testing.T, rr recordReader) {
	t.Helper()
	last := 0
	for {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("fatal error from an in-memory reader: %v", err)
		}
		if rec.Line <= last {
			t.Fatalf("line %d after line %d", rec.Line, last)
		}
		last = rec.Line
		var fe *queue.FieldError
		if rec.Err != nil && !errors.As(rec.Err, &fe) {
			t.Fatalf("line %d: error %v is not a FieldError", rec.Line, rec.Err)
		}
	}
}

// genFile writes n job lines (every 100th one bad) in the format.
func genFile(n int, f fileFormat) []byte {
	var b bytes.Buffer
	if f == formatCSV {
		b.WriteString("kind,to,template_id,template_params\n")
	}
	for i := 1; i <= n; i++ {
		to := number(i)
		if i%100 == 0 {
			to = "12345"
		}
		if f == formatCSV {
			fmt.Fprintf(&b, "notify,%s,T1,Customer %d|%d.50\n", to, i, i)
		} else {
			fmt.Fprintf(&b, `{"kind":"notify","to":%q,"template_id":"T1","template_params":["Customer %d","%d.50"]}`+"\n", to, i, i)
		}
	}
	return b.Bytes()
}

// BenchmarkParseFile reads and validates 100,000 generated lines, as `enqueue file` does before
// sending: the client-side ceiling on jobs per second.
func BenchmarkParseFile(b *testing.B) {
	const lines = 100_000
	for _, f := range []fileFormat{formatJSONL, formatCSV} {
		data := genFile(lines, f)
		b.Run(string(f), func(b *testing.B) {
			p := &linePrep{v: queue.NewValidator(queue.ValidatorOptions{}), bulk: true}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				rr, err := newRecordReader(bytes.NewReader(data), f)
				if err != nil {
					b.Fatal(err)
				}
				bad := 0
				for {
					rec, err := rr.Next()
					if err != nil {
						break
					}
					p.prepare(&rec)
					if rec.Err != nil {
						bad++
					}
				}
				if bad != lines/100 {
					b.Fatalf("%d bad lines, want %d", bad, lines/100)
				}
			}
			b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
