package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// linePrep readies one file record for submission: file-wide defaults for what the line leaves
// empty, bulk=true for notify jobs, then client-side validation so that a bad line is reported
// by number before anything is sent. Valid numbers are sent in E.164, read with the CLI's region.
type linePrep struct {
	v           *queue.Validator
	callbackURL string
	at          string
	ttl         string
	timezone    string
	keyPrefix   string // idempotency key prefix: "PREFIX-LINE" for lines without a key
	bulk        bool   // true; its address is the default Bulk of notify lines
}

func (p *linePrep) prepare(rec *record) {
	if rec.Err != nil {
		return
	}
	r := &rec.Req
	if r.CallbackURL == "" {
		r.CallbackURL = p.callbackURL
	}
	if r.ScheduledAt == "" {
		r.ScheduledAt = p.at
	}
	if r.TTL == "" {
		r.TTL = p.ttl
	}
	if r.Timezone == "" {
		r.Timezone = p.timezone
	}
	if r.IdempotencyKey == "" && p.keyPrefix != "" {
		r.IdempotencyKey = p.keyPrefix + "-" + strconv.Itoa(rec.Line)
	}
	if r.Kind == string(queue.KindNotify) && r.Bulk == nil {
		r.Bulk = &p.bulk
	}
	job, _, err := p.v.Validate(*r)
	if err != nil {
		rec.Err = err
		return
	}
	normalise(r, job)
}

// normalise puts the validated E.164 numbers into the request, so the server reads them exactly
// as the CLI did whatever its own default region.
func normalise(r *queue.Request, job queue.Job) {
	r.To = job.To
	if job.From != "" {
		r.From = job.From
	}
}

// fileStats counts the outcome of a file submission.
type fileStats struct {
	Submitted int // accepted, new or existing
	Existing  int // of Submitted, returned by an idempotency key
	Rejected  int // bad lines and items the server refused
	Unsent    int // good lines not submitted (or not confirmed) because a batch failed
	Failed    bool
}

// bulkOptions tunes submitFile.
type bulkOptions struct {
	BatchSize int // ≤ queue.MaxBatch
	InFlight  int // batches in flight at once
	IDs       bool
}

// reporter serialises what submitFile writes: bad lines on stderr (clearing the progress bar
// first), IDs on stdout, progress.
type reporter struct {
	mu     sync.Mutex
	stderr io.Writer
	stdout *bufio.Writer
	bar    *progressbar.ProgressBar // nil when hidden
}

func (r *reporter) errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		_ = r.bar.Clear()
	}
	fmt.Fprintf(r.stderr, format+"\n", args...)
}

// lineError reports one bad line: "line N: FIELD: message".
func (r *reporter) lineError(line int, err error) {
	var fe *queue.FieldError
	if errors.As(err, &fe) {
		if fe.Field == "" {
			r.errorf("line %d: %s", line, fe.Message)
			return
		}
		r.errorf("line %d: %s: %s", line, fe.Field, fe.Message)
		return
	}
	r.errorf("line %d: %v", line, err)
}

func (r *reporter) add(n int) {
	if r.bar == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.bar.Add(n)
}

func (r *reporter) id(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.stdout.WriteString(id)
	_ = r.stdout.WriteByte('\n')
}

// finish completes the bar (its total was an estimate) and flushes stdout.
func (r *reporter) finish(done int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		if done > 0 && int64(done) != r.bar.GetMax64() {
			r.bar.ChangeMax(done)
		}
		if done > 0 {
			_ = r.bar.Set(done)
			_ = r.bar.Finish()
		}
		_, _ = io.WriteString(r.stderr, "\n")
	}
	return r.stdout.Flush()
}

// batch is a run of consecutive records of the file (good and bad), validated and sent by one
// worker as one request.
type batch struct {
	seq  int
	recs []record
}

// batchDone is a batch after its worker: sent[i] is the index in recs of reqs[i] and items[i].
type batchDone struct {
	*batch
	sent  []int
	items []queue.BatchItem
	err   error
}

// lineRange formats the lines of recs[idx…] for messages: "lines 2001-3000" or "line 7".
func lineRange(first, last int) string {
	if first == last {
		return "line " + strconv.Itoa(first)
	}
	return fmt.Sprintf("lines %d-%d", first, last)
}

// submitFile streams records from rr and submits them in batches of up to o.BatchSize lines,
// with o.InFlight batches in flight. Each worker validates its batch (so validation, the costly
// part, runs on every core) and sends the good lines; a collector then handles batches in file
// order, so that bad lines are reported in line order, server refusals with their line numbers,
// and IDs come out in file order. When a batch fails as a whole (network, server error) no
// further batch is sent: the batches in flight finish, and every line range not submitted is
// reported. At most InFlight+1 batches are held in memory, whatever the file's size.
func submitFile(ctx context.Context, be backend, rr recordReader, prep *linePrep, o bulkOptions, rep *reporter) (fileStats, error) {
	var (
		st       fileStats // the reader's; merged with the collector's at the end
		cst      fileStats // the collector's
		work     = make(chan *batch)
		done     = make(chan batchDone, o.InFlight)
		stop     = make(chan struct{})
		stopOnce sync.Once
		workers  sync.WaitGroup
		collect  sync.WaitGroup
	)
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	for range o.InFlight {
		workers.Go(func() {
			for b := range work {
				d := batchDone{batch: b}
				reqs := make([]queue.Request, 0, len(b.recs))
				for i := range b.recs {
					prep.prepare(&b.recs[i])
					if b.recs[i].Err == nil {
						reqs = append(reqs, b.recs[i].Req)
						d.sent = append(d.sent, i)
					}
				}
				if len(reqs) > 0 {
					d.items, d.err = be.SubmitBatch(ctx, reqs)
				}
				done <- d
			}
		})
	}
	collect.Go(func() {
		pending := make(map[int]batchDone, o.InFlight)
		next := 0
		for d := range done {
			pending[d.seq] = d
			for {
				d, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				cst.report(d, o.IDs, rep)
				if d.err != nil {
					halt()
				}
				rep.add(len(d.recs))
			}
		}
	})

	newBatch := func(seq int) *batch {
		return &batch{seq: seq, recs: make([]record, 0, o.BatchSize)}
	}
	cur := newBatch(0)
	// send hands cur to a worker; false when sending has stopped (a batch failed, ctx ended).
	send := func() bool {
		select {
		case <-stop:
			return false
		case <-ctx.Done():
			return false
		default:
		}
		select {
		case work <- cur:
			cur = newBatch(cur.seq + 1)
			return true
		case <-stop:
			return false
		case <-ctx.Done():
			return false
		}
	}
	var (
		readErr error
		stopped bool // a batch could not be sent: cur holds lines not submitted
		eof     bool
	)
	for !stopped {
		rec, err := rr.Next()
		if errors.Is(err, io.EOF) {
			eof = true
			break
		}
		if err != nil {
			readErr = err
			break
		}
		cur.recs = append(cur.recs, rec)
		if len(cur.recs) >= o.BatchSize {
			stopped = !send()
		}
	}
	if !stopped && readErr == nil && len(cur.recs) > 0 {
		stopped = !send()
	}
	close(work)
	workers.Wait()
	close(done)
	collect.Wait()

	st.Submitted, st.Existing, st.Rejected, st.Unsent, st.Failed = cst.Submitted, cst.Existing, cst.Rejected, cst.Unsent, cst.Failed
	switch {
	case stopped:
		st.Failed = true
		st.Unsent += len(cur.recs)
		why := "stopped after the error above"
		if err := ctx.Err(); err != nil {
			why = "interrupted: " + err.Error()
		}
		if eof {
			rep.errorf("enqueue: %s not submitted (%s)", lineRange(cur.recs[0].Line, cur.recs[len(cur.recs)-1].Line), why)
		} else {
			rep.errorf("enqueue: lines from %d on not submitted (%s)", cur.recs[0].Line, why)
		}
	case readErr != nil:
		st.Failed = true
		if len(cur.recs) > 0 {
			st.Unsent += len(cur.recs)
			rep.errorf("enqueue: stopped reading: %v; lines from %d on not submitted", readErr, cur.recs[0].Line)
		} else {
			rep.errorf("enqueue: stopped reading: %v; the lines after it were not submitted", readErr)
		}
	}
	if err := ctx.Err(); err != nil && !st.Failed {
		st.Failed = true
		return st, fmt.Errorf("submit file: %w", err)
	}
	return st, nil
}

// report accounts for one finished batch, in line order: bad lines and refused items on stderr
// ("line N: FIELD: message"), IDs on stdout, and the range of a batch that failed as a whole.
func (s *fileStats) report(d batchDone, ids bool, rep *reporter) {
	k := 0 // next index into d.sent / d.items
	for i, rec := range d.recs {
		if k < len(d.sent) && d.sent[k] == i {
			if d.err == nil {
				it := d.items[k]
				switch {
				case it.Error != "":
					s.Rejected++
					rep.lineError(rec.Line, &queue.FieldError{Field: it.Field, Message: it.Error})
				default:
					s.Submitted++
					if it.Existing {
						s.Existing++
					}
					if ids {
						rep.id(it.ID)
					}
				}
			}
			k++
			continue
		}
		s.Rejected++
		rep.lineError(rec.Line, rec.Err)
	}
	if d.err != nil {
		s.Failed = true
		s.Unsent += len(d.sent)
		first, last := d.recs[d.sent[0]].Line, d.recs[d.sent[len(d.sent)-1]].Line
		rep.errorf("enqueue: %s not submitted: %v", lineRange(first, last), d.err)
	}
}

// summary is the last line on stderr: "submitted N, rejected M" and what else happened.
func (s fileStats) summary(elapsed time.Duration) string {
	msg := fmt.Sprintf("submitted %d, rejected %d", s.Submitted, s.Rejected)
	if s.Unsent > 0 {
		msg += fmt.Sprintf(", not submitted %d", s.Unsent)
	}
	if s.Existing > 0 {
		msg += fmt.Sprintf(" (%d already existed: idempotency key seen)", s.Existing)
	}
	if secs := elapsed.Seconds(); secs > 0 && s.Submitted > 0 {
		msg += fmt.Sprintf(" in %s, %.0f jobs/s", elapsed.Round(time.Millisecond), float64(s.Submitted)/secs)
	}
	return msg
}
