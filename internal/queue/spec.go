// Package queue is the dispatcher's job layer: the job kinds and their producer-facing request
// format, validation at the edge, enqueueing on asynq, the worker's task handlers, and the retry
// policy that turns the provider's reply classes into retry, reschedule or stop.
package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Kind is a job kind as producers name it. The strings are a contract.
type Kind string

// The job kinds.
const (
	KindNotify     Kind = "notify"
	KindVerify     Kind = "verify"
	KindClick2Call Kind = "click2call"
)

// Queue names, by urgency: verify strictly before notify before bulk (see Queues).
const (
	QueueVerify   = "verify"
	QueueNotify   = "notify"
	QueueBulk     = "bulk"
	QueueWebhooks = "webhooks"
)

// Limits of a request, from the provider's rules (ref §2–§4, §11) and our own.
const (
	MaxPlayItems        = 5
	MaxTemplateIDLen    = 32
	MaxTemplateParamLen = 32 // bytes of one template variable value
	MaxTemplateParams   = 20
	MaxVoiceFileLen     = 128
	MaxCollectDigits    = 32
	MaxDurationMinutes  = 1440
	MaxIdempotencyKey   = 128
	MaxCallbackURLLen   = 2048
	MaxTTL              = 7 * 24 * time.Hour
	MaxScheduleAhead    = 30 * 24 * time.Hour
	DefaultVerifyTTL    = 5 * time.Minute
	DefaultTTL          = 24 * time.Hour
)

// PlayItem is one item of a notify job's `play` list: a template with its parameters, or an
// approved voice file.
type PlayItem struct {
	TemplateID     string   `json:"template_id,omitempty"`
	TemplateParams []string `json:"template_params,omitempty"`
	VoiceFile      string   `json:"voice_file,omitempty"`
}

// Request is the body a producer submits (POST /v1/jobs, each item of /v1/jobs/batch, each line
// of an `enqueue file`). Field names are a contract.
type Request struct {
	Kind               string     `json:"kind"`
	To                 string     `json:"to"`
	From               string     `json:"from,omitempty"`
	TemplateID         string     `json:"template_id,omitempty"`
	TemplateParams     []string   `json:"template_params,omitempty"`
	VoiceFile          string     `json:"voice_file,omitempty"`
	Play               []PlayItem `json:"play,omitempty"`
	CollectDigits      int        `json:"collect_digits,omitempty"`
	Code               string     `json:"code,omitempty"`
	MaxDurationMinutes int        `json:"max_duration_minutes,omitempty"`
	Record             bool       `json:"record,omitempty"`
	IdempotencyKey     string     `json:"idempotency_key,omitempty"`
	CallbackURL        string     `json:"callback_url,omitempty"`
	ScheduledAt        string     `json:"scheduled_at,omitempty"`
	TTL                string     `json:"ttl,omitempty"`
	// Bulk puts a notify job on the bulk queue, behind single notifications. Batch and file
	// submissions default it to true for notify jobs.
	Bulk *bool `json:"bulk,omitempty"`
	// Timezone overrides the callee's time zone (IANA name) for the calling window.
	Timezone string `json:"timezone,omitempty"`
}

// FieldError is a validation failure that names the offending field (JSON name, with an index
// for list items, e.g. "play[1].template_id").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"error"`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// ErrInvalid is wrapped by every FieldError check through errors.Is.
var ErrInvalid = errors.New("invalid job")

// Is makes errors.Is(err, ErrInvalid) true for a *FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// DecodeRequest decodes one JSON request strictly: unknown fields, wrong types and trailing data
// are FieldErrors that name the field.
func DecodeRequest(data []byte) (Request, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Request{}, jsonFieldError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Request{}, fieldErr("body", "unexpected data after the JSON object")
	}
	return req, nil
}

// jsonFieldError turns a json decoding error into a FieldError naming the field when it can.
func jsonFieldError(err error) *FieldError {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return fieldErr(field, "must be %s, got JSON %s", jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fieldErr("body", "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if name == "" {
			return fieldErr("body", "unknown field with an empty name")
		}
		return fieldErr(name, "unknown field")
	case errors.Is(err, io.EOF):
		return fieldErr("body", "empty body: a JSON object is required")
	default:
		return fieldErr("body", "malformed JSON: %v", err)
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64":
		return "an integer"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "ptr":
		return "true or false"
	case "struct":
		return "an object"
	default:
		return kind
	}
}

// Job is a validated, normalised request: what the worker needs to place the call. Phone numbers
// are E.164. The verification code travels sealed (see CodeSealer), never in clear.
type Job struct {
	ID             string     `json:"id"`
	Kind           Kind       `json:"kind"`
	Queue          string     `json:"queue"`
	To             string     `json:"to"`
	From           string     `json:"from,omitempty"`
	Play           []PlayItem `json:"play,omitempty"`
	CollectDigits  int        `json:"collect_digits,omitempty"`
	SealedCode     string     `json:"sealed_code,omitempty"`
	MaxDuration    int        `json:"max_duration,omitempty"`
	Record         bool       `json:"record,omitempty"`
	CallbackURL    string     `json:"callback_url,omitempty"`
	IdempotencyKey string     `json:"-"`
	CreatedAt      time.Time  `json:"created_at"`
	ScheduledAt    *time.Time `json:"scheduled_at,omitempty"`
	DispatchBy     time.Time  `json:"dispatch_by"`
	Timezone       string     `json:"timezone,omitempty"`
}

// Validator checks and normalises requests. Its zero value is not usable: build it with
// NewValidator.
type Validator struct {
	region   string
	checkURL func(string) error
	now      func() time.Time
}

// ValidatorOptions configures a Validator.
type ValidatorOptions struct {
	// DefaultRegion is the ISO 3166 region used to read numbers written without a country code
	// (default "CN").
	DefaultRegion string
	// CheckCallbackURL vets callback URLs (e.g. the SSRF guard); nil accepts any http(s) URL.
	CheckCallbackURL func(string) error
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// NewValidator returns a Validator.
func NewValidator(o ValidatorOptions) *Validator {
	v := &Validator{region: strings.ToUpper(o.DefaultRegion), checkURL: o.CheckCallbackURL, now: o.Now}
	if v.region == "" {
		v.region = "CN"
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v
}

var (
	digitsRe    = regexp.MustCompile(`^[0-9]{2,8}$`)
	voiceFileRe = regexp.MustCompile(`^[A-Za-z0-9._@-]+$`)
)

// Validate checks a request and returns the normalised job (without ID, queue defaults applied)
// and the verification code in clear (verify jobs only, "" when the producer left it to us).
// The first problem found is returned as a *FieldError.
func (v *Validator) Validate(req Request) (Job, string, error) {
	now := v.now().UTC()
	job := Job{Kind: Kind(req.Kind), CreatedAt: now}
	var err error
	if job.To, err = v.number("to", req.To); err != nil {
		return Job{}, "", err
	}
	var code string
	switch job.Kind {
	case KindNotify:
		if job.Play, err = v.play(req); err != nil {
			return Job{}, "", err
		}
		if req.CollectDigits < 0 || req.CollectDigits > MaxCollectDigits {
			return Job{}, "", fieldErr("collect_digits", "must be between 0 and %d", MaxCollectDigits)
		}
		job.CollectDigits = req.CollectDigits
		job.Queue = QueueNotify
		if req.Bulk != nil && *req.Bulk {
			job.Queue = QueueBulk
		}
		if err := v.noneOf(req, "code", "from", "max_duration_minutes", "record"); err != nil {
			return Job{}, "", err
		}
	case KindVerify:
		if req.Code != "" && !digitsRe.MatchString(req.Code) {
			return Job{}, "", fieldErr("code", "must be 2 to 8 digits")
		}
		code = req.Code
		job.Queue = QueueVerify
		if err := v.noneOf(req, "template_id", "template_params", "voice_file", "play", "collect_digits", "from", "max_duration_minutes", "record", "bulk"); err != nil {
			return Job{}, "", err
		}
	case KindClick2Call:
		if job.From, err = v.number("from", req.From); err != nil {
			return Job{}, "", err
		}
		if req.MaxDurationMinutes < 0 || req.MaxDurationMinutes > MaxDurationMinutes {
			return Job{}, "", fieldErr("max_duration_minutes", "must be between 0 and %d (0 = no limit)", MaxDurationMinutes)
		}
		job.MaxDuration = req.MaxDurationMinutes
		job.Record = req.Record
		job.Queue = QueueNotify
		if err := v.noneOf(req, "template_id", "template_params", "voice_file", "play", "collect_digits", "code", "bulk"); err != nil {
			return Job{}, "", err
		}
	case "":
		return Job{}, "", fieldErr("kind", "is required: one of notify, verify, click2call")
	default:
		return Job{}, "", fieldErr("kind", "unknown kind %q: one of notify, verify, click2call", truncate(req.Kind, 32))
	}

	if len(req.IdempotencyKey) > MaxIdempotencyKey || !printable(req.IdempotencyKey) {
		return Job{}, "", fieldErr("idempotency_key", "must be at most %d printable ASCII characters", MaxIdempotencyKey)
	}
	job.IdempotencyKey = req.IdempotencyKey

	if req.CallbackURL != "" {
		if err := v.callbackURL(req.CallbackURL); err != nil {
			return Job{}, "", err
		}
		job.CallbackURL = req.CallbackURL
	}

	start := now
	if req.ScheduledAt != "" {
		at, err := time.Parse(time.RFC3339, req.ScheduledAt)
		if err != nil {
			return Job{}, "", fieldErr("scheduled_at", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
		if at.After(now.Add(MaxScheduleAhead)) {
			return Job{}, "", fieldErr("scheduled_at", "must be at most %s ahead", MaxScheduleAhead)
		}
		if at.After(now) {
			at = at.UTC()
			job.ScheduledAt = &at
			start = at
		}
	}

	ttl := DefaultTTL
	if job.Kind == KindVerify {
		ttl = DefaultVerifyTTL
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return Job{}, "", fieldErr("ttl", "must be a duration such as \"10m\" or \"2h\"")
		}
		if d <= 0 || d > MaxTTL {
			return Job{}, "", fieldErr("ttl", "must be greater than 0 and at most %s", MaxTTL)
		}
		ttl = d
	}
	job.DispatchBy = start.Add(ttl)

	if req.Timezone != "" {
		if _, err := time.LoadLocation(req.Timezone); err != nil || req.Timezone == "Local" {
			return Job{}, "", fieldErr("timezone", "unknown IANA time zone %q", truncate(req.Timezone, 64))
		}
		job.Timezone = req.Timezone
	}
	return job, code, nil
}

// number parses a phone number and returns it in E.164.
func (v *Validator) number(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fieldErr(field, "is required: a phone number such as +8613800000001")
	}
	if len(s) > 40 {
		return "", fieldErr(field, "is too long for a phone number")
	}
	num, err := phonenumbers.Parse(s, v.region)
	if err != nil {
		return "", fieldErr(field, "not a phone number: %v", err)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", fieldErr(field, "not a valid phone number (default region %s)", v.region)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// play collects the notify play items from either the flat fields or the `play` list.
func (v *Validator) play(req Request) ([]PlayItem, error) {
	flat := req.TemplateID != "" || len(req.TemplateParams) > 0 || req.VoiceFile != ""
	if flat && len(req.Play) > 0 {
		return nil, fieldErr("play", "give either play or template_id/template_params/voice_file, not both")
	}
	items := req.Play
	prefix := func(i int) string { return fmt.Sprintf("play[%d].", i) }
	if flat {
		items = []PlayItem{{TemplateID: req.TemplateID, TemplateParams: req.TemplateParams, VoiceFile: req.VoiceFile}}
		prefix = func(int) string { return "" }
	}
	if len(items) == 0 {
		return nil, fieldErr("template_id", "a notify job needs template_id, voice_file or a play list")
	}
	if len(items) > MaxPlayItems {
		return nil, fieldErr("play", "at most %d items", MaxPlayItems)
	}
	out := make([]PlayItem, len(items))
	for i, it := range items {
		p := prefix(i)
		switch {
		case it.TemplateID != "" && it.VoiceFile != "":
			return nil, fieldErr(p+"voice_file", "give either template_id or voice_file, not both")
		case it.TemplateID == "" && it.VoiceFile == "":
			return nil, fieldErr(p+"template_id", "each play item needs template_id or voice_file")
		case it.VoiceFile != "":
			if len(it.TemplateParams) > 0 {
				return nil, fieldErr(p+"template_params", "only allowed with template_id")
			}
			if len(it.VoiceFile) > MaxVoiceFileLen || !voiceFileRe.MatchString(it.VoiceFile) {
				return nil, fieldErr(p+"voice_file", "must be 1 to %d letters, digits or - _ . @", MaxVoiceFileLen)
			}
		default:
			if len(it.TemplateID) > MaxTemplateIDLen || !printable(it.TemplateID) || strings.ContainsAny(it.TemplateID, " {}") {
				return nil, fieldErr(p+"template_id", "must be 1 to %d printable characters without spaces", MaxTemplateIDLen)
			}
			if len(it.TemplateParams) > MaxTemplateParams {
				return nil, fieldErr(p+"template_params", "at most %d parameters", MaxTemplateParams)
			}
			for j, param := range it.TemplateParams {
				f := fmt.Sprintf("%stemplate_params[%d]", p, j)
				switch {
				case param == "":
					return nil, fieldErr(f, "must not be empty")
				case !utf8.ValidString(param):
					return nil, fieldErr(f, "must be valid UTF-8")
				case len(param) > MaxTemplateParamLen:
					return nil, fieldErr(f, "at most %d bytes (UTF-8); split longer values over several variables", MaxTemplateParamLen)
				case strings.ContainsAny(param, "{}\r\n"):
					return nil, fieldErr(f, "must not contain braces or line breaks")
				}
			}
		}
		out[i] = PlayItem{TemplateID: it.TemplateID, TemplateParams: append([]string(nil), it.TemplateParams...), VoiceFile: it.VoiceFile}
	}
	return out, nil
}

// noneOf rejects fields that do not belong to the request's kind, so that a typo of kind never
// silently drops what the producer asked for.
func (v *Validator) noneOf(req Request, fields ...string) error {
	for _, f := range fields {
		set := false
		switch f {
		case "template_id":
			set = req.TemplateID != ""
		case "template_params":
			set = len(req.TemplateParams) > 0
		case "voice_file":
			set = req.VoiceFile != ""
		case "play":
			set = len(req.Play) > 0
		case "collect_digits":
			set = req.CollectDigits != 0
		case "code":
			set = req.Code != ""
		case "from":
			set = req.From != ""
		case "max_duration_minutes":
			set = req.MaxDurationMinutes != 0
		case "record":
			set = req.Record
		case "bulk":
			set = req.Bulk != nil && *req.Bulk
		}
		if set {
			return fieldErr(f, "not allowed for kind %s", req.Kind)
		}
	}
	return nil
}

func (v *Validator) callbackURL(raw string) error {
	if len(raw) > MaxCallbackURLLen {
		return fieldErr("callback_url", "at most %d characters", MaxCallbackURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fieldErr("callback_url", "must be an absolute http or https URL")
	}
	if v.checkURL != nil {
		if err := v.checkURL(raw); err != nil {
			return fieldErr("callback_url", "refused: %v", err)
		}
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
