package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// fileFormat is the syntax of an input file.
type fileFormat string

const (
	formatCSV   fileFormat = "csv"
	formatJSONL fileFormat = "jsonl"
)

// parseFormat reads a --format value.
func parseFormat(s string) (fileFormat, error) {
	switch strings.ToLower(s) {
	case "csv":
		return formatCSV, nil
	case "jsonl", "ndjson":
		return formatJSONL, nil
	}
	return "", usagef("format: must be csv or jsonl, got %q", truncate(s, 40))
}

// formatOf tells the format from a file name's extension.
func formatOf(path string) (fileFormat, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".csv":
		return formatCSV, nil
	case ".jsonl", ".ndjson":
		return formatJSONL, nil
	default:
		return "", usagef("format: cannot tell the format of %q from its extension: use .csv, .jsonl or .ndjson, or --format csv|jsonl", truncate(filepath.Base(path), 80))
	}
}

// sniffFormat guesses the format of a stream whose name tells nothing (stdin): JSONL when the
// first byte after any byte-order mark and white space opens a JSON object, CSV otherwise.
func sniffFormat(r *bufio.Reader) fileFormat {
	for n := 1; n <= 4096; n++ {
		b, _ := r.Peek(n)
		if len(b) < n {
			return formatCSV
		}
		if len(b) < len(utf8BOM) && bytes.HasPrefix(utf8BOM, b) {
			continue // maybe the start of a byte-order mark
		}
		b = bytes.TrimLeft(bytes.TrimPrefix(b, utf8BOM), " \t\r\n")
		if len(b) > 0 {
			if b[0] == '{' {
				return formatJSONL
			}
			return formatCSV
		}
	}
	return formatCSV
}

var utf8BOM = []byte("\xef\xbb\xbf")

// record is one job line of an input file: its line number (1-based; for CSV the line where
// the record starts) and the request, or the error that makes the line bad.
type record struct {
	Line int
	Req  queue.Request
	Err  error // a *queue.FieldError naming the field
}

// recordReader streams the records of a file. Next returns io.EOF at the end; any other error is
// fatal for the whole file (I/O, a bad CSV header), a bad line is a record with Err set.
type recordReader interface {
	Next() (record, error)
}

// newRecordReader returns a reader for the format.
func newRecordReader(r io.Reader, f fileFormat) (recordReader, error) {
	if f == formatCSV {
		return newCSVReader(r)
	}
	return newJSONLReader(r), nil
}

// maxLineBytes bounds one JSONL line; a request is a few hundred bytes.
const maxLineBytes = 1 << 20

// jsonlReader reads one queue.Request JSON object per line; blank lines are skipped.
type jsonlReader struct {
	r    *bufio.Reader
	line int
	long []byte // assembles lines longer than the bufio buffer
}

func newJSONLReader(r io.Reader) *jsonlReader {
	return &jsonlReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Next implements recordReader.
func (j *jsonlReader) Next() (record, error) {
	for {
		data, tooLong, err := j.readLine()
		if err != nil {
			return record{}, err
		}
		j.line++
		if j.line == 1 {
			data = bytes.TrimPrefix(data, utf8BOM)
		}
		rec := record{Line: j.line}
		switch {
		case tooLong:
			rec.Err = &queue.FieldError{Field: "body", Message: fmt.Sprintf("line longer than %d bytes", maxLineBytes)}
			return rec, nil
		case len(bytes.TrimSpace(data)) == 0:
			continue
		}
		rec.Req, rec.Err = queue.DecodeRequest(data)
		return rec, nil
	}
}

// readLine returns the next line without its line ending (valid until the next call), or io.EOF
// when there are no more. A line longer than maxLineBytes is skipped and reported as tooLong.
func (j *jsonlReader) readLine() (line []byte, tooLong bool, err error) {
	j.long = j.long[:0]
	for {
		chunk, err := j.r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong && len(j.long)+len(chunk) <= maxLineBytes {
				j.long = append(j.long, chunk...)
			} else {
				tooLong = true
			}
			continue
		case errors.Is(err, io.EOF):
			if len(chunk) == 0 && len(j.long) == 0 && !tooLong {
				return nil, false, io.EOF
			}
		case err != nil:
			return nil, false, fmt.Errorf("read line %d: %w", j.line+1, err)
		}
		if len(j.long) > 0 || tooLong {
			if tooLong || len(j.long)+len(chunk) > maxLineBytes+2 {
				return nil, true, nil
			}
			chunk = append(j.long, chunk...)
		}
		chunk = bytes.TrimSuffix(chunk, []byte("\n"))
		chunk = bytes.TrimSuffix(chunk, []byte("\r"))
		return chunk, false, nil
	}
}

// csvColumns are the columns a CSV header may name: the queue.Request JSON field names.
var csvColumns = []string{
	"kind", "to", "from", "template_id", "template_params", "voice_file", "code", "collect_digits",
	"max_duration_minutes", "record", "idempotency_key", "callback_url", "scheduled_at", "ttl",
	"bulk", "timezone",
}

// csvReader reads a CSV file whose header row names the request fields (csvColumns). A field
// left empty is absent. template_params holds the parameters separated by '|'.
type csvReader struct {
	r    *csv.Reader
	cols []string // column index → field name
}

// headerError is a fatal problem with the header row.
func headerError(format string, args ...any) error {
	return &queue.FieldError{Field: "header", Message: fmt.Sprintf(format, args...)}
}

func newCSVReader(r io.Reader) (*csvReader, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // checked here, so that the message names both counts
	header, err := cr.Read()
	switch {
	case errors.Is(err, io.EOF):
		return nil, headerError("the CSV file is empty: the first row must name the columns (%s)", strings.Join(csvColumns, ","))
	case err != nil:
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, headerError("line %d: %v", pe.StartLine, pe.Err)
		}
		return nil, fmt.Errorf("read CSV header: %w", err)
	}
	known := make(map[string]bool, len(csvColumns))
	for _, c := range csvColumns {
		known[c] = true
	}
	cols := make([]string, len(header))
	seen := make(map[string]bool, len(header))
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		name := strings.ToLower(strings.TrimSpace(h))
		switch {
		case name == "":
			return nil, headerError("column %d has no name", i+1)
		case name == "play":
			return nil, headerError("column %q is not supported in CSV: use template_id/template_params or voice_file, or a JSONL file for play lists", name)
		case !known[name]:
			return nil, headerError("unknown column %q (known: %s)", truncate(h, 40), strings.Join(csvColumns, ","))
		case seen[name]:
			return nil, headerError("column %q appears twice", name)
		}
		seen[name] = true
		cols[i] = name
	}
	for _, need := range []string{"kind", "to"} {
		if !seen[need] {
			return nil, headerError("missing column %q", need)
		}
	}
	return &csvReader{r: cr, cols: cols}, nil
}

// Next implements recordReader.
func (c *csvReader) Next() (record, error) {
	fields, err := c.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return record{Line: pe.StartLine, Err: &queue.FieldError{Field: "csv", Message: pe.Err.Error()}}, nil
		}
		if errors.Is(err, io.EOF) {
			return record{}, io.EOF
		}
		return record{}, fmt.Errorf("read CSV: %w", err)
	}
	line, _ := c.r.FieldPos(0)
	rec := record{Line: line}
	if len(fields) != len(c.cols) {
		rec.Err = &queue.FieldError{Field: "columns", Message: fmt.Sprintf("has %d fields, the header has %d", len(fields), len(c.cols))}
		return rec, nil
	}
	for i, v := range fields {
		if v == "" {
			continue
		}
		if err := setField(&rec.Req, c.cols[i], v); err != nil {
			rec.Err = err
			return rec, nil
		}
	}
	return rec, nil
}

// setField sets one request field from its CSV text.
func setField(req *queue.Request, name, v string) error {
	var err error
	switch name {
	case "kind":
		req.Kind = v
	case "to":
		req.To = v
	case "from":
		req.From = v
	case "template_id":
		req.TemplateID = v
	case "template_params":
		req.TemplateParams = strings.Split(v, "|")
	case "voice_file":
		req.VoiceFile = v
	case "code":
		req.Code = v
	case "collect_digits":
		req.CollectDigits, err = csvInt(name, v)
	case "max_duration_minutes":
		req.MaxDurationMinutes, err = csvInt(name, v)
	case "record":
		req.Record, err = csvBool(name, v)
	case "idempotency_key":
		req.IdempotencyKey = v
	case "callback_url":
		req.CallbackURL = v
	case "scheduled_at":
		req.ScheduledAt = v
	case "ttl":
		req.TTL = v
	case "bulk":
		var b bool
		b, err = csvBool(name, v)
		req.Bulk = &b
	case "timezone":
		req.Timezone = v
	}
	return err
}

func csvInt(field, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, &queue.FieldError{Field: field, Message: fmt.Sprintf("must be an integer, got %q", truncate(v, 20))}
	}
	return n, nil
}

func csvBool(field, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "t", "1", "yes", "y":
		return true, nil
	case "false", "f", "0", "no", "n":
		return false, nil
	}
	return false, &queue.FieldError{Field: field, Message: fmt.Sprintf("must be true or false, got %q", truncate(v, 20))}
}
