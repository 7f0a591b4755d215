package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// backend is where jobs go: the gateway's HTTP API (httpBackend) or Redis directly
// (redisBackend). Commands only see this interface.
type backend interface {
	// Submit submits one job. Bad input is a *queue.FieldError.
	Submit(ctx context.Context, req queue.Request) (queue.SubmitResult, error)
	// SubmitBatch submits up to queue.MaxBatch jobs and returns one item per request (Index is
	// the request's position). An error means the batch as a whole was not submitted, or its
	// outcome is unknown.
	SubmitBatch(ctx context.Context, reqs []queue.Request) ([]queue.BatchItem, error)
	// Status returns the job record as JSON; errJobNotFound when there is no such job.
	Status(ctx context.Context, id string) (json.RawMessage, error)
	// Cancel cancels a job not yet dialled and returns its record as JSON; errJobNotFound or
	// errAlreadyDispatched.
	Cancel(ctx context.Context, id string) (json.RawMessage, error)
	Close() error
}

// Errors shared by both backends, checked with errors.Is.
var (
	errJobNotFound       = errors.New("job not found")
	errAlreadyDispatched = errors.New("job already dispatched")
)

// apiError is a reply of the gateway that is not a success and not a field error.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message)
}

// unconfirmedError is a failure after the request was sent in full: the server may have acted
// on it (a timeout, a connection dropped before the reply).
type unconfirmedError struct{ err error }

func (e *unconfirmedError) Error() string { return e.err.Error() }
func (e *unconfirmedError) Unwrap() error { return e.err }

// usageError is bad input found by the CLI itself (flags, arguments, configuration): exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // network, server error, not found, anything not the caller's input
	exitBadInput = 2 // usage and validation errors
)

// exitCode maps an error to the process exit code: 2 for bad input (usage errors, a field
// error, a 400/413/422 reply), 1 for anything else.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	var fe *queue.FieldError
	var ae *apiError
	switch {
	case errors.As(err, &ue), errors.As(err, &fe):
		return exitBadInput
	case errors.As(err, &ae) && (ae.Status == 400 || ae.Status == 413 || ae.Status == 422):
		return exitBadInput
	}
	return exitFailure
}
