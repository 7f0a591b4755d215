// Package queueui serves asynq's web UI (github.com/hibiken/asynqmon) under a path prefix: the
// queues, their tasks in every state, the servers and Redis. The gateway mounts it behind the
// producer bearer token. It is read-only unless asked otherwise, and it never shows a full phone
// number, a sealed verification code or a URL's query string.
package queueui

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// Handler returns the UI for the asynq queues in rdb, rooted at prefix (for example "/ui/": the
// page is prefix itself, the UI's JSON API is under prefix+"api/"). Mount it on that prefix
// without stripping it:
//
//	mux.Handle("/ui/", auth(queueui.Handler(rdb, "/ui/", true)))
//
// With readOnly the UI shows everything and changes nothing: any request other than GET or HEAD
// is refused with 405 before it reaches asynqmon (which also hides its buttons). Without it an
// operator can pause and resume queues and run, archive or delete tasks.
//
// The handler uses rdb and never closes it: the process closes its shared client, once.
func Handler(rdb redis.UniversalClient, prefix string, readOnly bool) http.Handler {
	root := "/" + strings.Trim(prefix, "/")
	if root == "/" {
		root = ""
	}
	ui := asynqmon.New(asynqmon.Options{
		RootPath:         root,
		RedisConnOpt:     sharedClient{rdb},
		ReadOnly:         readOnly,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(func(_ string, b []byte) string { return Redact(b) }),
		ResultFormatter:  asynqmon.ResultFormatterFunc(func(_ string, b []byte) string { return Redact(b) }),
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == root && root != "" {
			// "/ui" → "/ui/": the page's relative asset paths need the slash.
			http.Redirect(w, r, root+"/", http.StatusMovedPermanently)
			return
		}
		if readOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the queue UI is read-only", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		ui.ServeHTTP(w, r)
	})
}

// sharedClient hands asynqmon the process's client instead of letting it dial its own.
type sharedClient struct{ c redis.UniversalClient }

func (s sharedClient) MakeRedisClient() any { return s.c }

var (
	// phoneRE finds E.164 numbers (the form every number takes once a job is accepted).
	phoneRE = regexp.MustCompile(`\+[0-9]{6,15}`)
	// queryRE finds the query string of a URL (callback URLs may carry tokens in it).
	queryRE = regexp.MustCompile(`(https?://[^\s"'?#]*)\?[^\s"'#]*`)
	// sealedRE finds sealed verification codes and codes in JSON payloads.
	sealedRE = regexp.MustCompile(`"(sealed_code|code)"\s*:\s*"[^"]*"`)
)

// Redact returns a payload or result as the UI shows it: phone numbers masked as in the logs
// (+86138****0001), URL query strings and verification codes replaced, and bytes that are not
// printable text summarised instead of shown.
func Redact(b []byte) string {
	s := string(b)
	for _, r := range s {
		if r == '\uFFFD' || (r < 0x20 && r != '\n' && r != '\r' && r != '\t') {
			return "non-printable bytes"
		}
	}
	s = sealedRE.ReplaceAllString(s, `"$1":"[redacted]"`)
	s = queryRE.ReplaceAllString(s, "$1?[redacted]")
	return phoneRE.ReplaceAllStringFunc(s, voice.MaskNumber)
}
