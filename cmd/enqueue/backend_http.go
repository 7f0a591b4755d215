package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// Caps on what is read from a reply: a batch reply of 1,000 results is about 100 KiB.
const (
	maxReplyBytes = 32 << 20
	maxErrorBytes = 64 << 10
)

// httpBackend talks to the gateway's producer API (/v1/jobs…).
type httpBackend struct {
	base    string // e.g. "http://127.0.0.1:8080" or "https://host/prefix", no trailing slash
	token   string // bearer token; "" sends no Authorization header
	client  *http.Client
	timeout time.Duration // per request; 0 = none beyond ctx
}

// newHTTPBackend returns a backend for the gateway at base. conns is how many requests may be in
// flight at once (idle connections kept for reuse).
func newHTTPBackend(base, token string, timeout time.Duration, conns int) *httpBackend {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(conns, 2)
	return &httpBackend{
		base:    strings.TrimRight(base, "/"),
		token:   token,
		client:  &http.Client{Transport: tr},
		timeout: timeout,
	}
}

// parseAPIURL checks an --api value: an absolute http(s) URL without credentials.
func parseAPIURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usagef("api: must be an http or https URL such as http://127.0.0.1:8080, got %q", truncate(raw, 80))
	}
	if u.User != nil {
		return "", usagef("api: must not carry credentials (use VOICEQUEUE_API_TOKEN or --token-file)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", usagef("api: must not have a query or fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

type errorReply struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

type batchReply struct {
	Accepted int               `json:"accepted"`
	Rejected int               `json:"rejected"`
	Results  []queue.BatchItem `json:"results"`
}

// Submit implements backend: POST /v1/jobs.
func (b *httpBackend) Submit(ctx context.Context, req queue.Request) (queue.SubmitResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return queue.SubmitResult{}, fmt.Errorf("encode job: %w", err)
	}
	var res queue.SubmitResult
	if err := b.do(ctx, http.MethodPost, "/v1/jobs", body, &res); err != nil {
		return queue.SubmitResult{}, err
	}
	if res.ID == "" {
		return queue.SubmitResult{}, errors.New("submit job: the gateway replied without a job ID")
	}
	return res, nil
}

// SubmitBatch implements backend: POST /v1/jobs/batch. The reply must hold exactly one result per
// request; anything else is an error for the whole batch.
func (b *httpBackend) SubmitBatch(ctx context.Context, reqs []queue.Request) ([]queue.BatchItem, error) {
	body := getBuffer()
	defer putBuffer(body)
	body.Write(appendBatch(body.AvailableBuffer(), reqs))
	rep := &batchReplyDecoder{n: len(reqs)}
	if err := b.do(ctx, http.MethodPost, "/v1/jobs/batch", body.Bytes(), rep); err != nil {
		return nil, err
	}
	return orderItems(rep.Results, len(reqs))
}

// replyDecoder is an out value of do that decodes a reply itself.
type replyDecoder interface {
	decodeReply(data []byte) error
}

// batchReplyDecoder decodes a batch reply for n jobs with decodeBatchReply.
type batchReplyDecoder struct {
	batchReply
	n int
}

func (d *batchReplyDecoder) decodeReply(data []byte) error {
	return decodeBatchReply(data, d.n, &d.batchReply)
}

// buffers recycles request bodies and replies: a batch body of 1,000 jobs is about 150 KiB, its
// reply about 60 KiB, and growing fresh ones for every batch keeps the garbage collector busy.
var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer: a buffer grown larger than this (a huge reply) is left to the collector.
const maxPooledBuffer = 4 << 20

func getBuffer() *bytes.Buffer {
	buf := buffers.Get().(*bytes.Buffer)
	buf.Reset()
	return buf
}

func putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuffer {
		buffers.Put(buf)
	}
}

// orderItems returns items indexed by request position, checking that every request has exactly
// one result.
func orderItems(items []queue.BatchItem, n int) ([]queue.BatchItem, error) {
	if inOrder(items, n) {
		return items, nil // as the gateway replies: no copy
	}
	out := make([]queue.BatchItem, n)
	seen := make([]bool, n)
	for _, it := range items {
		if it.Index < 0 || it.Index >= n || seen[it.Index] {
			return nil, fmt.Errorf("submit batch: the reply has a bad or repeated result index %d for %d jobs", it.Index, n)
		}
		if it.Error == "" && it.ID == "" {
			return nil, fmt.Errorf("submit batch: result %d has neither an ID nor an error", it.Index)
		}
		seen[it.Index] = true
		out[it.Index] = it
	}
	if len(items) != n {
		return nil, fmt.Errorf("submit batch: the reply has %d results for %d jobs", len(items), n)
	}
	return out, nil
}

// inOrder reports whether items holds one valid result per request, in request order.
func inOrder(items []queue.BatchItem, n int) bool {
	if len(items) != n {
		return false
	}
	for i := range items {
		if it := &items[i]; it.Index != i || it.Error == "" && it.ID == "" {
			return false
		}
	}
	return true
}

// Status implements backend: GET /v1/jobs/{id}.
func (b *httpBackend) Status(ctx context.Context, id string) (json.RawMessage, error) {
	var rec json.RawMessage
	err := b.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, &rec)
	return rec, jobError("get job "+id, err)
}

// Cancel implements backend: DELETE /v1/jobs/{id}.
func (b *httpBackend) Cancel(ctx context.Context, id string) (json.RawMessage, error) {
	var rec json.RawMessage
	err := b.do(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil, &rec)
	return rec, jobError("cancel job "+id, err)
}

// jobError turns 404 and 409 replies about one job into the shared sentinels.
func jobError(op string, err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w", op, errJobNotFound)
		case http.StatusConflict:
			return fmt.Errorf("%s: %w (%s)", op, errAlreadyDispatched, ae.Message)
		}
	}
	return err
}

// Close implements backend.
func (b *httpBackend) Close() error {
	b.client.CloseIdleConnections()
	return nil
}

// do sends one request and decodes a 2xx reply into out. Other replies become a
// *queue.FieldError (400 naming a field) or an *apiError. A cancelled context wins over the
// transport error it causes.
func (b *httpBackend) do(ctx context.Context, method, path string, body []byte, out any) error {
	if b.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	op := strings.ToLower(method) + " " + b.base + path
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "voicequeue-enqueue")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.token != "" {
		req.Header.Set("Authorization", "Bearer "+b.token)
	}
	var wrote atomic.Bool // the whole request went out: a failure now leaves its fate unknown
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) { wrote.Store(info.Err == nil) },
	}))
	resp, err := b.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
			if errors.Is(ctxErr, context.DeadlineExceeded) && b.timeout > 0 {
				err = fmt.Errorf("no reply within %s: %w", b.timeout, ctxErr)
			}
		} else {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the URL is already in op
			}
		}
		err = fmt.Errorf("%s: %w", op, err)
		if wrote.Load() {
			return &unconfirmedError{err: err}
		}
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %w", op, replyError(resp))
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxReplyBytes+1)); err != nil {
		return &unconfirmedError{err: fmt.Errorf("%s: read reply: %w", op, err)}
	}
	if buf.Len() > maxReplyBytes {
		return fmt.Errorf("%s: reply larger than %d bytes", op, maxReplyBytes)
	}
	if d, ok := out.(replyDecoder); ok {
		err = d.decodeReply(buf.Bytes())
	} else {
		err = json.Unmarshal(buf.Bytes(), out)
	}
	if err != nil {
		return fmt.Errorf("%s: decode reply (HTTP %d): %w", op, resp.StatusCode, err)
	}
	return nil
}

// replyError reads an error reply. A 400 naming a field is a *queue.FieldError (bad input,
// exit 2); everything else an *apiError.
func replyError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var rep errorReply
	if json.Unmarshal(data, &rep) != nil || rep.Error == "" {
		rep = errorReply{Error: strings.TrimSpace(truncate(string(data), 200))}
	}
	switch {
	case resp.StatusCode == http.StatusBadRequest && rep.Field != "":
		return &queue.FieldError{Field: rep.Field, Message: rep.Error}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		msg := rep.Error
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return &apiError{Status: resp.StatusCode, Message: msg + " (set VOICEQUEUE_API_TOKEN, --token-file or --token)"}
	case resp.StatusCode == http.StatusRequestEntityTooLarge && rep.Error == "":
		return &apiError{Status: resp.StatusCode, Message: "request body too large"}
	}
	if rep.Error == "" {
		rep.Error = http.StatusText(resp.StatusCode)
	}
	return &apiError{Status: resp.StatusCode, Message: rep.Error}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
