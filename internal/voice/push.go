package voice

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrMalformedPush reports a push body that is not valid JSON or breaks a documented rule. Receivers
// answer it with a non-200 status; note that the platform never re-sends a status push and re-sends
// a CDR push at most 6 times (ref §8).
var ErrMalformedPush = errors.New("malformed push")

func malformed(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformedPush, field, fmt.Sprintf(format, args...))
}

// ParseStatusPush parses the body of a call-status push (ref §6.1). It checks that eventType is one
// of the five documented events and that statusInfo.sessionId has 1–256 characters. Unknown fields
// are ignored; field names match case-insensitively (encoding/json), which only widens what is
// accepted. The timestamp may be a "yyyy-MM-dd HH:mm:ss" UTC string or UNIX seconds/milliseconds.
func ParseStatusPush(body []byte) (*StatusPush, error) {
	var wire struct {
		EventType  EventType       `json:"eventType"`
		StatusInfo *CallStatusInfo `json:"statusInfo"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		return nil, decodeError(err, locateStatusField(body))
	}
	switch wire.EventType {
	case EventCallout, EventAlerting, EventAnswer, EventCollectInfo, EventDisconnect:
	case "":
		return nil, malformed("eventType", "missing")
	default:
		return nil, malformed("eventType", "unknown event %q", truncate(string(wire.EventType)))
	}
	if wire.StatusInfo == nil {
		return nil, malformed("statusInfo", "missing")
	}
	if err := checkSessionID("statusInfo.sessionId", wire.StatusInfo.SessionID); err != nil {
		return nil, err
	}
	return &StatusPush{EventType: wire.EventType, StatusInfo: *wire.StatusInfo}, nil
}

// ParseFeePush parses the body of a CDR push (ref §7.1): eventType "fee" and 1–50 records, each
// with a sessionId of 1–256 characters. Times are UTC strings parsed leniently (see PushTime).
// Unknown fields are ignored.
func ParseFeePush(body []byte) (*FeePush, error) {
	var p FeePush
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, decodeError(err, locateFeeField(body))
	}
	switch {
	case p.EventType == "":
		return nil, malformed("eventType", "missing")
	case p.EventType != EventFee:
		return nil, malformed("eventType", "%q, want %q", truncate(string(p.EventType)), EventFee)
	case len(p.FeeLst) == 0:
		return nil, malformed("feeLst", "missing or empty")
	case len(p.FeeLst) > MaxFeeRecords:
		return nil, malformed("feeLst", "%d records, at most %d allowed", len(p.FeeLst), MaxFeeRecords)
	}
	for i := range p.FeeLst {
		if err := checkSessionID(fmt.Sprintf("feeLst[%d].sessionId", i), p.FeeLst[i].SessionID); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// decodeError wraps a JSON decoding error, naming the field when it could be located.
func decodeError(err error, field string) error {
	if field == "" {
		return fmt.Errorf("%w: decode: %w", ErrMalformedPush, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrMalformedPush, field, err)
}

// locateStatusField returns the JSON path of the first field of a status push whose value fails
// to decode ("statusInfo.timestamp"), or "". Only used on the error path: errors returned by
// custom decoders (Timestamp, PushTime) do not name their field.
func locateStatusField(body []byte) string {
	top, ok := objectFields(body)
	if !ok {
		return ""
	}
	for _, k := range top.keys {
		if !strings.EqualFold(k, "statusInfo") {
			if !decodes(k, top.vals[k], &StatusPush{}) {
				return k
			}
			continue
		}
		info, ok := objectFields(top.vals[k])
		if !ok {
			return k
		}
		for _, ik := range info.keys {
			if !decodes(ik, info.vals[ik], &CallStatusInfo{}) {
				return k + "." + ik
			}
		}
	}
	return ""
}

// locateFeeField is locateStatusField for CDR pushes ("feeLst[3].callEndTime").
func locateFeeField(body []byte) string {
	top, ok := objectFields(body)
	if !ok {
		return ""
	}
	for _, k := range top.keys {
		if !strings.EqualFold(k, "feeLst") {
			if !decodes(k, top.vals[k], &FeePush{}) {
				return k
			}
			continue
		}
		var recs []json.RawMessage
		if json.Unmarshal(top.vals[k], &recs) != nil {
			return k
		}
		for i, rec := range recs {
			fields, ok := objectFields(rec)
			if !ok {
				return fmt.Sprintf("%s[%d]", k, i)
			}
			for _, rk := range fields.keys {
				if !decodes(rk, fields.vals[rk], &FeeInfo{}) {
					return fmt.Sprintf("%s[%d].%s", k, i, rk)
				}
			}
		}
	}
	return ""
}

type fieldSet struct {
	keys []string
	vals map[string]json.RawMessage
}

// objectFields splits a JSON object into its fields, sorted by name for a deterministic report.
func objectFields(b []byte) (fieldSet, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || m == nil {
		return fieldSet{}, false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fieldSet{keys: keys, vals: m}, true
}

// decodes reports whether the single field {key: val} decodes into target.
func decodes(key string, val json.RawMessage, target any) bool {
	obj, err := json.Marshal(map[string]json.RawMessage{key: val})
	if err != nil {
		return false
	}
	return json.Unmarshal(obj, target) == nil
}

func checkSessionID(field, v string) error {
	switch n := utf8.RuneCountInString(v); {
	case n == 0:
		return malformed(field, "missing")
	case n > maxSessionID:
		return malformed(field, "%d characters, at most %d allowed", n, maxSessionID)
	}
	return nil
}

// truncate shortens outside input quoted in an error.
func truncate(s string) string {
	const max = 32
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// IsClick2Call reports whether the CDR is of a click-to-call: serviceType "002", or, when
// serviceType is absent or undocumented, any leg-B (fwd*) field set. serviceType "001" (notify and
// verify) is never click-to-call.
func (f *FeeInfo) IsClick2Call() bool {
	switch f.ServiceType {
	case ServiceTypeCallback:
		return true
	case ServiceTypePlayback:
		return false
	}
	return !f.FwdAnswerTime.IsZero() || !f.FwdStartTime.IsZero() || f.FwdDstNum != ""
}

// TalkTime is the conversation time of the call (ref §7.3): callEndTime − fwdAnswerTime for
// click-to-call (documented; billing starts when leg B answers), callEndTime − callOutAnswerTime
// for notify and verify (the reference's inference). It is zero when the call was not answered, the
// end time is missing, or the end precedes the answer.
func (f *FeeInfo) TalkTime() time.Duration {
	answer := f.CallOutAnswerTime
	if f.IsClick2Call() {
		answer = f.FwdAnswerTime
	}
	if answer.IsZero() || f.CallEndTime.IsZero() || f.CallEndTime.Before(answer.Time) {
		return 0
	}
	return f.CallEndTime.Sub(answer.Time)
}

// Signed pushes (ref §8 ◐): newer documentation versions put the request's Authorization and an
// X-AKSK header on pushes, with PasswordDigest = Base64(HMAC-SHA256(APP_Secret, pushURL + "\n" +
// Nonce + "\n" + Created)); an earlier variant concatenates without "\n"; Created is described as
// UTC+8 while keeping the 'Z' suffix. Older documentation says pushes carry no authentication.
var (
	// ErrPushUnsigned: the push has no X-AKSK header. Receivers must accept such pushes.
	ErrPushUnsigned = errors.New("push not signed")
	// ErrPushSignature: the push carries an X-AKSK header that does not verify.
	ErrPushSignature = errors.New("push signature invalid")
)

// DefaultPushWindow is the clock-skew window VerifyPush uses when given none. The platform
// publishes no number; 5 minutes is the reference's suggestion for requests (ref §1.3 ❓).
const DefaultPushWindow = 5 * time.Minute

// beijing is the UTC+8 offset some page versions give for Created.
const beijing = 8 * time.Hour

// VerifyPush checks the X-AKSK header of a push received at pushURL (the plain URL exactly as sent
// in statusUrl/feeUrl). It returns ErrPushUnsigned when there is no X-AKSK header, an error
// wrapping ErrPushSignature when the header is malformed, names another app key, has a Created
// outside window (≤ 0: DefaultPushWindow) of now read either as UTC or as UTC+8, or matches
// neither digest variant; nil when it verifies.
//
// The reference says receivers must never reject a push only because it is unsigned
// (ErrPushUnsigned); what to do with an invalid signature is the receiver's policy.
func VerifyPush(h http.Header, pushURL, appKey, appSecret string, now time.Time, window time.Duration) error {
	raw := h.Get(HeaderXAKSK)
	if raw == "" {
		return ErrPushUnsigned
	}
	if window <= 0 {
		window = DefaultPushWindow
	}
	tok, err := ParseUsernameToken(raw)
	if err != nil {
		return fmt.Errorf("verify push: %w: %w", ErrPushSignature, err)
	}
	switch {
	case tok.Username != appKey:
		return fmt.Errorf("verify push: %w: Username is not our app key", ErrPushSignature)
	case tok.Nonce == "" || tok.PasswordDigest == "" || tok.Created == "":
		return fmt.Errorf("verify push: %w: Nonce, PasswordDigest or Created missing", ErrPushSignature)
	}
	created, err := time.Parse(CreatedLayout, tok.Created)
	if err != nil {
		return fmt.Errorf("verify push: %w: Created %q is not yyyy-MM-ddTHH:mm:ssZ", ErrPushSignature, truncate(tok.Created))
	}
	if !within(created, now, window) && !within(created.Add(-beijing), now, window) {
		return fmt.Errorf("verify push: %w: Created outside the %v window (as UTC or UTC+8)", ErrPushSignature, window)
	}
	for _, newline := range []bool{true, false} {
		want := PushDigest(appSecret, pushURL, tok.Nonce, tok.Created, newline)
		if hmac.Equal([]byte(want), []byte(tok.PasswordDigest)) {
			return nil
		}
	}
	return fmt.Errorf("verify push: %w: PasswordDigest does not match", ErrPushSignature)
}

func within(t, now time.Time, window time.Duration) bool {
	d := now.Sub(t)
	return d <= window && d >= -window
}

// SignPush sets Authorization and X-AKSK on a push to pushURL the way the newer documentation
// describes (ref §8): the "\n"-separated digest and Created in UTC. The simulator uses it.
func SignPush(h http.Header, pushURL, appKey, appSecret string, now time.Time) error {
	nonce, err := NewNonce()
	if err != nil {
		return fmt.Errorf("sign push: %w", err)
	}
	created := FormatCreated(now)
	tok := UsernameToken{
		Username:       appKey,
		PasswordDigest: PushDigest(appSecret, pushURL, nonce, created, true),
		Nonce:          nonce,
		Created:        created,
	}
	h.Set(HeaderAuthorization, AuthorizationValue)
	h.Set(HeaderXAKSK, tok.String())
	return nil
}
