package voice

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// APIError is every outcome of a client call other than "accepted": a platform reply with a
// non-zero `resultcode` (ref §9), a reply that is not a platform reply (a 404 without JSON means a
// wrong base URL or URI, ref §1.5), a transport failure, or a request that failed validation and
// was never sent. Callers inspect it with errors.As and steer on Class.
type APIError struct {
	Op         string // "notify", "verify", "click2call", "callstop" or "record"
	URL        string // scheme, host and path only: never the query
	HTTPStatus int    // 0 when no reply came
	Code       string // the platform's `resultcode`; empty when there was no platform reply
	Desc       string // the platform's `resultdesc`, or our description of a non-platform reply
	Class      Class
	Err        error // the underlying transport, context or validation error, if any
}

// Error describes the failure without secrets: the URL is redacted and no header is included.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("voice ")
	b.WriteString(e.Op)
	if e.URL != "" {
		b.WriteString(" ")
		b.WriteString(e.URL)
	}
	b.WriteString(":")
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " HTTP %d", e.HTTPStatus)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " resultcode %s", e.Code)
	}
	if e.Desc != "" {
		fmt.Fprintf(&b, " %q", e.Desc)
	}
	fmt.Fprintf(&b, " (%s)", e.Class)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error, so that errors.Is(err, context.Canceled) and
// errors.As(err, **ValidationError) see through an APIError.
func (e *APIError) Unwrap() error { return e.Err }

// ClassOf returns what a sender should do after err:
//   - nil: ClassAccepted;
//   - an *APIError anywhere in the chain: its Class;
//   - a *ValidationError: ClassPermanent (the request is wrong and was not sent);
//   - anything else: ClassAmbiguous, because nothing tells whether a request reached the platform.
//     The client itself never returns such an error: it wraps context and transport errors in an
//     *APIError with the class it could establish.
func ClassOf(err error) Class {
	if err == nil {
		return ClassAccepted
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Class
	}
	var valErr *ValidationError
	if errors.As(err, &valErr) {
		return ClassPermanent
	}
	return ClassAmbiguous
}

// redactURL keeps only scheme, host and path: the query of the recording-URL API (and anything a
// deployment puts there) never reaches an error or a log line.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// stripURLError removes the *url.Error layer that net/http adds: its message repeats the full URL
// including the query, while APIError already carries the redacted URL.
func stripURLError(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}
