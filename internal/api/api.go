// Package api is the producers' HTTP API: submit jobs one by one or in batches, read a job's
// record, cancel a job that has not been dialled.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// Body limits: one job is small; a batch of 1,000 jobs fits comfortably in 4 MiB.
const (
	MaxJobBytes   = 64 << 10
	MaxBatchBytes = 4 << 20
)

// Options configures the API.
type Options struct {
	Submitter *queue.Submitter
	// Tokens are the producer bearer tokens accepted (several during a rotation). Empty means no
	// authentication, which is allowed only with DevMode.
	Tokens  []string
	DevMode bool
	Logger  *slog.Logger
}

// API serves /v1/jobs.
type API struct {
	o   Options
	log *slog.Logger
}

// New returns the API.
func New(o Options) (*API, error) {
	if o.Submitter == nil {
		return nil, errors.New("new api: no submitter")
	}
	if len(o.Tokens) == 0 && !o.DevMode {
		return nil, errors.New("new api: no producer token configured (set VOICEQUEUE_API_TOKEN, or run in dev mode)")
	}
	for _, t := range o.Tokens {
		if len(t) < 16 {
			return nil, errors.New("new api: producer tokens must be at least 16 characters")
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{o: o, log: o.Logger.With("component", "api")}, nil
}

// Register adds the API routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.Handle("POST /v1/jobs", a.Auth(http.HandlerFunc(a.submit)))
	mux.Handle("POST /v1/jobs/batch", a.Auth(http.HandlerFunc(a.batch)))
	mux.Handle("GET /v1/jobs/{id}", a.Auth(http.HandlerFunc(a.get)))
	mux.Handle("DELETE /v1/jobs/{id}", a.Auth(http.HandlerFunc(a.cancel)))
}

// Auth requires a valid producer bearer token (constant-time compare against each configured
// token); with no tokens in dev mode it lets everything through.
func (a *API) Auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(a.o.Tokens) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			// A browser (the queue UI) sends the token as the password of Basic auth.
			_, given, ok = r.BasicAuth()
		}
		valid := 0
		for _, t := range a.o.Tokens {
			valid |= subtle.ConstantTimeCompare([]byte(given), []byte(t))
		}
		if !ok || valid != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="voicequeue"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="voicequeue"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "missing or invalid bearer token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads a capped body; an oversized body is answered 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "request body too large", Field: "body"})
			return nil, false
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "read body: " + err.Error(), Field: "body"})
		return nil, false
	}
	return body, true
}

func (a *API) fail(w http.ResponseWriter, err error) {
	var fe *queue.FieldError
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fe.Message, Field: fe.Field})
	case errors.Is(err, queue.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{Error: "job not found"})
	case errors.Is(err, queue.ErrAlreadyDispatched):
		writeJSON(w, http.StatusConflict, errorBody{Error: err.Error()})
	default:
		a.log.Error("request failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "temporarily unavailable; nothing was submitted, retry with the same idempotency key"})
	}
}

func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, MaxJobBytes)
	if !ok {
		return
	}
	req, err := queue.DecodeRequest(body)
	if err != nil {
		a.fail(w, err)
		return
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if req.IdempotencyKey != "" && req.IdempotencyKey != key {
			a.fail(w, &queue.FieldError{Field: "idempotency_key", Message: "differs from the Idempotency-Key header"})
			return
		}
		req.IdempotencyKey = key
	}
	res, err := a.o.Submitter.Submit(r.Context(), req)
	if err != nil {
		a.fail(w, err)
		return
	}
	status := http.StatusAccepted
	if res.Existing {
		status = http.StatusOK
	}
	writeJSON(w, status, res)
}

type batchResponse struct {
	Accepted int               `json:"accepted"`
	Rejected int               `json:"rejected"`
	Results  []queue.BatchItem `json:"results"`
}

func (a *API) batch(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, MaxBatchBytes)
	if !ok {
		return
	}
	reqs, index, results, err := decodeBatch(body)
	if err != nil {
		a.fail(w, err)
		return
	}
	if len(reqs) > 0 {
		items, err := a.o.Submitter.SubmitBatch(r.Context(), reqs)
		if err != nil {
			a.fail(w, err)
			return
		}
		for j, it := range items {
			it.Index = index[j]
			results[index[j]] = it
		}
	}
	resp := batchResponse{Results: results}
	for _, it := range results {
		if it.Error != "" {
			resp.Rejected++
		} else {
			resp.Accepted++
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeBatch reads a batch body {"jobs": [ … ]}. Each item is decoded on its own so that one bad
// item is reported by index and never sinks the others: it returns the good requests, the index
// of each in the batch, and a result slot per item (filled for the bad ones). Notify jobs default
// to the bulk queue. A malformed envelope is a *queue.FieldError.
func decodeBatch(body []byte) ([]queue.Request, []int, []queue.BatchItem, error) {
	var env struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, nil, nil, &queue.FieldError{Field: "jobs", Message: "body must be {\"jobs\": [ … ]}: " + err.Error()}
	}
	if len(env.Jobs) == 0 || len(env.Jobs) > queue.MaxBatch {
		return nil, nil, nil, &queue.FieldError{Field: "jobs", Message: "must hold 1 to 1000 jobs"}
	}
	results := make([]queue.BatchItem, len(env.Jobs))
	reqs := make([]queue.Request, 0, len(env.Jobs))
	index := make([]int, 0, len(env.Jobs))
	for i, raw := range env.Jobs {
		req, err := queue.DecodeRequest(raw)
		if err != nil {
			var fe *queue.FieldError
			errors.As(err, &fe)
			results[i] = queue.BatchItem{Index: i, Error: fe.Message, Field: fe.Field}
			continue
		}
		if req.Kind == string(queue.KindNotify) && req.Bulk == nil {
			bulk := true
			req.Bulk = &bulk
		}
		reqs = append(reqs, req)
		index = append(index, i)
	}
	return reqs, index, results, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	rec, err := a.o.Submitter.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (a *API) cancel(w http.ResponseWriter, r *http.Request) {
	rec, err := a.o.Submitter.CancelRecord(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}
