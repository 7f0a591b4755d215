package voicesim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// Push delivery (ref §6.2, §7.1, §7.4, §8):
//
//   - Status pushes of one call go out one after another, in state order, from the call's own
//     goroutine; different calls push concurrently. A failed status push is never re-sent.
//   - CDRs wait in a batch keyed by push URL and `callEndTime` second for CDRMergeWindow
//     (simulated); a batch is pushed when the window ends or at once when it holds 50. A failed
//     CDR push is re-sent up to MaxCDRRetries times, CDRRetryInterval (simulated) apart; then
//     it is given up, as the platform does.
//   - A push succeeds on HTTP 200; for a CDR a JSON body with a `resultcode` other than "0" is a
//     failure too (ref §7.4 ◐). Bodies are read to the end (bounded) and closed.
//   - Pushes carry no authentication unless SignPushes is set.

// Push kinds, as metric labels.
const (
	kindStatus = "status"
	kindCDR    = "cdr"
)

// maxReplyBytes bounds how much of a receiver's reply is read.
const maxReplyBytes = 64 << 10

// statusSender sends a call's status pushes in order, except when ReorderPushes holds one back to
// send it after the next push of the call.
type statusSender struct {
	s    *Simulator
	c    *call
	held *voice.StatusPush
}

// emit sends a status push (or holds it back to reorder it).
func (o *statusSender) emit(p voice.StatusPush) {
	if o.held != nil {
		held := *o.held
		o.held = nil
		o.s.sendStatus(o.c, p)
		o.s.sendStatus(o.c, held)
		return
	}
	if o.c.statusURL != "" && o.s.faults.chance(o.s.cfg.Faults.ReorderPushes) {
		o.held = &p
		return
	}
	o.s.sendStatus(o.c, p)
}

// finish runs the CDR hand-off and then sends a status push still held back, so that a held
// last disconnect can arrive after the CDR.
func (o *statusSender) finish(handOff func()) {
	handOff()
	if o.held != nil {
		o.s.sendStatus(o.c, *o.held)
		o.held = nil
	}
}

// sendStatus pushes one status event of a call and records it.
func (s *Simulator) sendStatus(c *call, p voice.StatusPush) {
	rec := PushRecord{
		Event:     p.EventType,
		EventTime: p.StatusInfo.Timestamp.Time,
		StateCode: p.StatusInfo.StateCode,
		DigitInfo: p.StatusInfo.DigitInfo,
	}
	if c.statusURL == "" {
		s.recordPush(c.id, rec)
		return
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen with these types
		s.log.Error("encode status push", "error", err)
		return
	}
	copies := 1
	if s.faults.chance(s.cfg.Faults.DuplicatePushes) {
		copies = 2
	}
	for i := range copies {
		r := rec
		r.Duplicate = i > 0
		r.Pushed = true
		r.SentAt = s.cfg.Now()
		r.Status, err = s.deliver(kindStatus, c.statusURL, body)
		r.Delivered = err == nil
		if err != nil {
			r.Error = err.Error()
			s.log.Debug("status push failed", "session_id", c.id, "event", string(p.EventType), "error", err)
		}
		s.recordPush(c.id, r)
	}
}

// deliver sends one push and reports the receiver's HTTP status and whether it counts as a
// failure.
func (s *Simulator) deliver(kind, pushURL string, body []byte) (status int, err error) {
	if d := s.cfg.Faults.DelayPushes; d > 0 {
		if !s.sleep(s.ctx, s.faults.duration(d)) {
			return 0, s.ctx.Err()
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.PushTimeout)
	defer cancel()
	start := time.Now()
	defer func() {
		s.metrics.pushes.WithLabelValues(kind).Inc()
		s.metrics.pushDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
		if err != nil {
			s.metrics.pushFailures.WithLabelValues(kind).Inc()
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, pushURL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build push: %w", err)
	}
	req.Header.Set("Content-Type", voice.ContentType)
	if s.cfg.SignPushes {
		if err := s.signPush(req.Header, pushURL); err != nil {
			return 0, fmt.Errorf("sign push: %w", err)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// Push URLs carry the receiver's path secret: keep only scheme and host in the error,
		// which ends up in logs.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			if u, perr := url.Parse(uerr.URL); perr == nil {
				uerr.URL = u.Scheme + "://" + u.Host + "/…"
			}
		}
		return 0, fmt.Errorf("send push: %w", err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBytes)) // let the connection be reused
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read push reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("receiver answered HTTP %d", resp.StatusCode)
	}
	if kind == kindCDR {
		var r struct {
			ResultCode *string `json:"resultcode"`
		}
		if json.Unmarshal(reply, &r) == nil && r.ResultCode != nil && *r.ResultCode != voice.CodeSuccess {
			return resp.StatusCode, fmt.Errorf("receiver answered resultcode %q", *r.ResultCode)
		}
	}
	return resp.StatusCode, nil
}

// cdrKey groups CDRs that may share a push: same receiver, same `callEndTime` second (the
// simulator has one app).
type cdrKey struct {
	url string
	end int64
}

// cdrBatch is a CDR push being gathered or delivered.
type cdrBatch struct {
	key      cdrKey
	fees     []voice.FeeInfo
	sessions []string
	full     chan struct{} // closed when the batch holds MaxFeeRecords
}

// queueCDR adds a call's CDR to the open batch for its key, opening one if needed.
func (s *Simulator) queueCDR(c *call, fee voice.FeeInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.setCDRLocked(c.id, fee)
	if c.feeURL == "" {
		return
	}
	key := cdrKey{url: c.feeURL, end: fee.CallEndTime.Unix()}
	b := s.batches[key]
	if b == nil {
		b = &cdrBatch{key: key, full: make(chan struct{})}
		s.batches[key] = b
		// The call goroutine that gets here holds a WaitGroup count, so Add is safe during Close.
		s.wg.Add(1)
		s.addWorkLocked()
		go s.runBatch(b)
	}
	b.fees = append(b.fees, fee)
	b.sessions = append(b.sessions, c.id)
	if len(b.fees) == voice.MaxFeeRecords {
		delete(s.batches, key)
		close(b.full)
	}
}

// runBatch waits for the merge window (or a full batch), then pushes the batch, re-sending it on
// failure up to MaxCDRRetries times.
func (s *Simulator) runBatch(b *cdrBatch) {
	defer s.wg.Done()
	defer s.doneWork()
	t := time.NewTimer(s.wall(s.cfg.CDRMergeWindow))
	defer t.Stop()
	select {
	case <-b.full:
	case <-t.C:
	case <-s.ctx.Done():
		return
	}
	s.mu.Lock()
	if s.batches[b.key] == b {
		delete(s.batches, b.key)
	}
	fees, sessions := b.fees, b.sessions
	s.mu.Unlock()

	body, err := json.Marshal(voice.FeePush{EventType: voice.EventFee, FeeLst: fees})
	if err != nil { // cannot happen with these types
		s.log.Error("encode CDR push", "error", err)
		return
	}
	for attempt := 0; attempt <= s.cfg.MaxCDRRetries; attempt++ {
		if attempt > 0 {
			if !s.sleep(s.ctx, s.wall(s.cfg.CDRRetryInterval)) {
				return
			}
			s.metrics.cdrRetries.Inc()
		}
		delivered := false
		copies := 1
		if s.faults.chance(s.cfg.Faults.DuplicatePushes) {
			copies = 2
		}
		for i := range copies {
			rec := PushRecord{Event: voice.EventFee, Attempt: attempt, Records: len(fees),
				Pushed: true, Duplicate: i > 0, SentAt: s.cfg.Now()}
			rec.Status, err = s.deliver(kindCDR, b.key.url, body)
			rec.Delivered = err == nil
			if err != nil {
				rec.Error = err.Error()
			}
			delivered = delivered || rec.Delivered
			s.mu.Lock()
			s.stats.cdrPushLocked(sessions, rec)
			s.mu.Unlock()
		}
		if delivered {
			return
		}
		s.log.Debug("CDR push failed", "attempt", attempt, "records", len(fees), "error", err)
	}
	s.mu.Lock()
	s.stats.cdrGivenUpLocked()
	s.mu.Unlock()
	s.metrics.cdrGivenUp.Inc()
	s.log.Warn("CDR push given up", "records", len(fees), "retries", s.cfg.MaxCDRRetries)
}

// sleep waits d unless ctx ends first; it reports whether the full time passed.
func (s *Simulator) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
