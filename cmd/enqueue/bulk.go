package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// linePrep readies one file record for submission: file-wide defaults for what the line leaves
// empty, bulk=true for notify jobs, then client-side validation so that a bad line is reported
// by number before its batch is sent. Valid numbers are sent in E.164, read with the CLI's
// region.
type linePrep struct {
	v *queue.Validator
	// skipValidation: the backend validates every item of a batch before writing any, with
	// the same rules and region (--redis), so a second pass here would only cost CPU.
	skipValidation bool
	// serverValidates: the backend (the gateway, --api) validates every item with the same
	// rules but its own default region. A line whose numbers are all in international form
	// ("+…") reads the same in any region, so it is left to the gateway, which reports a bad
	// one by item (and so by line); the others are checked and normalised here with --region.
	serverValidates bool
	callbackURL     string
	at              string
	ttl             string
	timezone        string
	keyPrefix       string // idempotency key prefix: "PREFIX-LINE" for lines without a key
	bulk            bool   // true; its address is the default Bulk of notify lines
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
	if p.skipValidation || p.serverValidates && international(r.To) && (r.From == "" || international(r.From)) {
		return
	}
	job, _, err := p.v.Validate(*r)
	if err != nil {
		rec.Err = err
		return
	}
	normalise(r, job)
}

// international reports whether a number is written in international form ("+" first, after
// any leading spaces), which no default region changes.
func international(number string) bool {
	return strings.HasPrefix(strings.TrimLeft(number, " \t"), "+")
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
	Submitted int  // accepted, new or existing
	Existing  int  // of Submitted, returned by an idempotency key
	Rejected  int  // bad lines and items the server refused
	Unsent    int  // lines read but not submitted (or not confirmed) because a batch failed
	Unread    bool // reading stopped before the end of the file
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
// worker as one request. reqs are the good lines' requests as sent, and sent[i] the index in
// recs of reqs[i]. Batches are recycled (batchPool) once the collector is done with them.
type batch struct {
	seq  int
	recs []record
	reqs []queue.Request
	sent []int
}

// batchDone is a batch after its worker: items[i] answers reqs[i]. skipped: not even
// validated, because an earlier batch had failed.
type batchDone struct {
	*batch
	items   []queue.BatchItem
	err     error
	skipped bool
}

// batchPool recycles batches, so that a file of any size costs a handful of batch allocations
// (each about half a MiB at 1,000 lines) rather than one per 1,000 lines: less work for the
// garbage collector, which runs on the CPUs the gateway needs. It never blocks: an empty pool
// allocates.
type batchPool struct {
	size int // records per batch
	free chan *batch
}

func newBatchPool(size, keep int) *batchPool {
	return &batchPool{size: size, free: make(chan *batch, keep)}
}

// get returns an empty batch numbered seq.
func (p *batchPool) get(seq int) *batch {
	select {
	case b := <-p.free:
		b.seq = seq
		return b
	default:
		return &batch{seq: seq, recs: make([]record, 0, p.size), reqs: make([]queue.Request, 0, p.size), sent: make([]int, 0, p.size)}
	}
}

// put empties b (dropping what its records point to) and keeps it for reuse.
func (p *batchPool) put(b *batch) {
	clear(b.recs)
	clear(b.reqs)
	b.recs, b.reqs, b.sent = b.recs[:0], b.reqs[:0], b.sent[:0]
	select {
	case p.free <- b:
	default:
	}
}

// lineRange formats lines for messages: "lines 2001-3000" or "line 7".
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
// further batch is sent: the batches already in flight finish, and every line range not
// submitted is reported. At most about 2×InFlight batches are held in memory, whatever the
// file's size.
func submitFile(ctx context.Context, be backend, rr recordReader, prep *linePrep, o bulkOptions, rep *reporter) (fileStats, error) {
	var (
		col      = &collector{ids: o.IDs, rep: rep}
		pool     = newBatchPool(o.BatchSize, 2*o.InFlight+2)
		work     = make(chan *batch)
		done     = make(chan batchDone, o.InFlight)
		stop     = make(chan struct{})
		stopOnce sync.Once
		workers  sync.WaitGroup
		collect  sync.WaitGroup
	)
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return ctx.Err() != nil
		}
	}
	for range o.InFlight {
		workers.Go(func() {
			for b := range work {
				d := batchDone{batch: b, skipped: stopped()}
				if !d.skipped {
					for i := range b.recs {
						prep.prepare(&b.recs[i])
						if b.recs[i].Err == nil {
							b.reqs = append(b.reqs, b.recs[i].Req)
							b.sent = append(b.sent, i)
						}
					}
					if len(b.reqs) > 0 {
						if d.items, d.err = be.SubmitBatch(ctx, b.reqs); d.err != nil {
							halt() // before anyone takes the next batch
						}
					}
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
				col.batch(d)
				pool.put(d.batch)
			}
		}
	})

	cur := pool.get(0)
	// send hands cur to a worker; false when sending has stopped (a batch failed, ctx ended).
	send := func() bool {
		if stopped() {
			return false
		}
		select {
		case work <- cur:
			cur = pool.get(cur.seq + 1)
			return true
		case <-stop:
			return false
		case <-ctx.Done():
			return false
		}
	}
	var (
		readErr error
		held    bool // a batch could not be sent: cur holds lines not submitted
		eof     bool
	)
	for !held {
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
			held = !send()
		}
	}
	if !held && readErr == nil && len(cur.recs) > 0 {
		held = !send()
	}
	close(work)
	workers.Wait()
	close(done)
	collect.Wait()

	st := col.st
	why := "stopped after the error above"
	if err := ctx.Err(); err != nil {
		why = "interrupted: " + err.Error()
	}
	switch {
	case held:
		st.Failed = true
		st.Unsent += len(cur.recs)
		from := cur.recs[0].Line
		if col.skipFrom != 0 {
			from = col.skipFrom // skipped batches end where cur starts
		}
		if eof {
			rep.errorf("enqueue: %s not submitted (%s)", lineRange(from, cur.recs[len(cur.recs)-1].Line), why)
		} else {
			st.Unread = true
			rep.errorf("enqueue: lines from %d on not submitted (%s)", from, why)
		}
	case col.skipFrom != 0:
		rep.errorf("enqueue: %s not submitted (%s)", lineRange(col.skipFrom, col.skipTo), why)
	}
	if readErr != nil {
		st.Failed, st.Unread = true, true
		if len(cur.recs) > 0 && !held {
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

// collector accounts for finished batches, in file order.
type collector struct {
	ids      bool
	rep      *reporter
	st       fileStats
	skipFrom int // first and last line of the run of skipped batches not yet reported (0: none)
	skipTo   int
}

// batch reports one finished batch, in line order: bad lines and refused items on stderr
// ("line N: FIELD: message"), IDs on stdout, and the range of a batch that failed as a whole.
func (c *collector) batch(d batchDone) {
	defer c.rep.add(len(d.recs))
	if d.skipped {
		c.st.Failed = true
		c.st.Unsent += len(d.recs)
		if c.skipFrom == 0 {
			c.skipFrom = d.recs[0].Line
		}
		c.skipTo = d.recs[len(d.recs)-1].Line
		return
	}
	if c.skipFrom != 0 { // a batch sent after skipped ones (workers race to the stop flag)
		c.rep.errorf("enqueue: %s not submitted (stopped after the error above)", lineRange(c.skipFrom, c.skipTo))
		c.skipFrom, c.skipTo = 0, 0
	}
	k := 0 // next index into d.sent and d.items
	for i, rec := range d.recs {
		if k < len(d.sent) && d.sent[k] == i {
			if d.err == nil {
				it := d.items[k]
				if it.Error != "" {
					c.st.Rejected++
					c.rep.lineError(rec.Line, &queue.FieldError{Field: it.Field, Message: it.Error})
				} else {
					c.st.Submitted++
					if it.Existing {
						c.st.Existing++
					}
					if c.ids {
						c.rep.id(it.ID)
					}
				}
			}
			k++
			continue
		}
		c.st.Rejected++
		c.rep.lineError(rec.Line, rec.Err)
	}
	if d.err != nil {
		c.st.Failed = true
		c.st.Unsent += len(d.sent)
		first, last := d.recs[d.sent[0]].Line, d.recs[d.sent[len(d.sent)-1]].Line
		var ue *unconfirmedError
		if errors.As(d.err, &ue) {
			c.rep.errorf("enqueue: %s not submitted (or not confirmed: the gateway may have taken some; "+
				"submitting them again is safe only with idempotency keys): %v", lineRange(first, last), d.err)
			return
		}
		c.rep.errorf("enqueue: %s not submitted: %v", lineRange(first, last), d.err)
	}
}

// summary is the last line on stderr: "submitted N, rejected M" and what else happened.
func (s fileStats) summary(elapsed time.Duration) string {
	msg := fmt.Sprintf("submitted %d, rejected %d", s.Submitted, s.Rejected)
	if s.Unsent > 0 || s.Unread {
		msg += fmt.Sprintf(", not submitted %d", s.Unsent)
		if s.Unread {
			msg += " and the rest of the file"
		}
	}
	if s.Existing > 0 {
		msg += fmt.Sprintf(" (%d already existed: idempotency key seen)", s.Existing)
	}
	if secs := elapsed.Seconds(); secs > 0 && s.Submitted > 0 {
		msg += fmt.Sprintf(" in %s, %.0f jobs/s", elapsed.Round(time.Millisecond), float64(s.Submitted)/secs)
	}
	return msg
}
