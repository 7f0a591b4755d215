package voice

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// ValidationError reports a request field that breaks a documented rule. The client checks every
// request before sending it, so a ValidationError means nothing was sent; its class is permanent.
type ValidationError struct {
	Field  string // JSON path as sent, e.g. "playInfoList[2].templateId"
	Reason string
}

// Error names the field and the rule it breaks.
func (e *ValidationError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

// Field length limits from the reference. Lengths count bytes: every field the rules apply to is
// ASCII (numbers, codes, file names, Base64), and userData must be ASCII (see checkUserData).
const (
	maxPlayItems      = 5   // playInfoList[1-5] (ref §2.1)
	maxTemplateID     = 32  // templateId String(1-32) (ref §2.2)
	maxFileName       = 128 // notifyVoice, preTone, posTone, … String(1-128) (ref §2.2, §3.1, §13)
	maxTemplateParam  = 32  // each template variable ≤ 32 bytes (ref §2.3)
	maxCollectInd     = 32  // collectInd 0–32 (ref §2.2)
	maxTrigger        = 32  // collectContentTriggerReplaying String(1-32) (ref §2.2)
	maxTimes          = 9   // times 0–9 (ref §3.1)
	maxMaxDuration    = 1440
	maxUserData       = 256 // userData String(1-256) (ref §2.1)
	maxEncodedPushURL = 128 // statusUrl/feeUrl String(1-128), Base64 form (ref §2.1, §8)
	maxSessionID      = 256 // sessionId String(1-256) (ref §1.5, §5.1)
	maxRecordParam    = 128 // fileName, recordDomain String(1-128) (ref §5.2)
)

var verifyCodeRE = regexp.MustCompile(`^[0-9]{2,8}$`)

// checker collects the first rule broken; later checks are skipped once one failed.
type checker struct{ err *ValidationError }

func (c *checker) fail(field, format string, args ...any) {
	if c.err == nil {
		c.err = &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
}

func (c *checker) result() error {
	if c.err == nil {
		return nil
	}
	return c.err
}

// number checks a phone number (ref §11): `+`, a country code that does not start with 0, then
// digits only, 4–31 characters in all. Display numbers follow the same format (they must also be
// one of the app's fixed-line numbers, which only the platform can check: `1010023`).
func (c *checker) number(field, v string) {
	switch {
	case v == "":
		c.fail(field, "required")
	case len(v) < 4 || len(v) > 31:
		c.fail(field, "length %d, want 4–31 characters", len(v))
	case v[0] != '+':
		c.fail(field, "must start with + and the country code (E.164)")
	case v[1] == '0':
		c.fail(field, "country code cannot start with 0")
	default:
		for i := 1; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				c.fail(field, "only digits may follow the +")
				return
			}
		}
	}
}

// text checks an optional (required=false) or required string of at most max bytes without
// control characters.
func (c *checker) text(field, v string, required bool, max int) {
	if v == "" {
		if required {
			c.fail(field, "required")
		}
		return
	}
	if len(v) > max {
		c.fail(field, "length %d, want at most %d", len(v), max)
		return
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			c.fail(field, "control characters are not allowed")
			return
		}
	}
}

// userData checks the opaque SP data (ref §2.1, §11): at most 256 bytes, no `{` or `}`, and
// printable ASCII only, because the reference requires Chinese (any non-ASCII) text to be Base64
// encoded first.
func (c *checker) userData(v string) {
	if len(v) > maxUserData {
		c.fail("userData", "length %d, want at most %d", len(v), maxUserData)
		return
	}
	for i := 0; i < len(v); i++ {
		switch b := v[i]; {
		case b == '{' || b == '}':
			c.fail("userData", "must not contain { or }")
			return
		case b < 0x20 || b > 0x7e:
			c.fail("userData", "only printable ASCII; Base64-encode other text first")
			return
		}
	}
}

// pushURL checks statusUrl / feeUrl (ref §8, §11). Decisions on the ◐ rules:
//   - Allowed characters are exactly those the reference lists: letters, digits and
//     `- : . / _ # ? &`. Everything else is refused, including `%`, `=`, `~`, `@`, `+`, `[`, `]`
//     and spaces, so a push URL cannot carry percent-escapes or `key=value` query parameters:
//     route pushes by path (e.g. https://gw.example.com/callbacks/status). We refuse rather than
//     risk a URL the platform silently never pushes to.
//   - The 128-character limit applies to the Base64 form that is sent, so the plain URL may have
//     at most 96 bytes.
//   - The scheme is http or https (https recommended) and the host is not empty.
func (c *checker) pushURL(field string, u EncodedURL) {
	if u == "" {
		return
	}
	s := string(u)
	for i := 0; i < len(s); i++ {
		if !pushURLChar(s[i]) {
			c.fail(field, "character %q not allowed: only letters, digits and - : . / _ # ? & (ref §8)", s[i])
			return
		}
	}
	if n := len(u.Encoded()); n > maxEncodedPushURL {
		c.fail(field, "Base64 form has %d characters, want at most %d (URL at most 96 bytes)", n, maxEncodedPushURL)
		return
	}
	parsed, err := url.Parse(s)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		c.fail(field, "must be an absolute http:// or https:// URL with a host")
	}
}

func pushURLChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("-:./_#?&", b) >= 0
}

// Validate checks the request against the rules of ref §2 and §11 and returns the first
// *ValidationError found, or nil.
func (r *NotifyRequest) Validate() error {
	var c checker
	if r == nil {
		c.fail("body", "missing")
		return c.result()
	}
	c.number("displayNbr", r.DisplayNbr)
	c.number("calleeNbr", r.CalleeNbr)
	switch n := len(r.PlayInfoList); {
	case n == 0:
		c.fail("playInfoList", "required: 1 to %d items", maxPlayItems)
	case n > maxPlayItems:
		c.fail("playInfoList", "%d items, want at most %d", n, maxPlayItems)
	}
	for i, item := range r.PlayInfoList {
		item.validate(&c, fmt.Sprintf("playInfoList[%d].", i))
	}
	c.pushURL("statusUrl", r.StatusURL)
	c.pushURL("feeUrl", r.FeeURL)
	c.userData(r.UserData)
	return c.result()
}

// validate checks one play item (ref §2.2). Beyond the documented ranges it refuses settings the
// reference calls meaningless: replay without collection, a trigger without replay, a trigger
// longer than the digits collected (it could never match).
func (p PlayItem) validate(c *checker, prefix string) {
	switch {
	case p.NotifyVoice == "" && p.TemplateID == "":
		c.fail(prefix+"templateId", "one of notifyVoice or templateId is required")
	case p.NotifyVoice != "" && p.TemplateID != "":
		c.fail(prefix+"notifyVoice", "set either notifyVoice or templateId, not both")
	case p.NotifyVoice != "":
		c.text(prefix+"notifyVoice", p.NotifyVoice, true, maxFileName)
		if len(p.TemplateParas) > 0 {
			c.fail(prefix+"templateParas", "only allowed with templateId")
		}
	default:
		c.text(prefix+"templateId", p.TemplateID, true, maxTemplateID)
	}
	for i, v := range p.TemplateParas {
		if len(v) > maxTemplateParam {
			c.fail(fmt.Sprintf("%stemplateParas[%d]", prefix, i), "length %d bytes, want at most %d", len(v), maxTemplateParam)
		}
	}
	if p.CollectInd < 0 || p.CollectInd > maxCollectInd {
		c.fail(prefix+"collectInd", "%d, want 0–%d", p.CollectInd, maxCollectInd)
	}
	if p.ReplayAfterCollection && p.CollectInd == 0 {
		c.fail(prefix+"replayAfterCollection", "only with collectInd > 0")
	}
	if t := p.CollectContentTriggerReplaying; t != "" {
		switch {
		case !bool(p.ReplayAfterCollection):
			c.fail(prefix+"collectContentTriggerReplaying", "only with replayAfterCollection \"true\"")
		case len(t) > maxTrigger:
			c.fail(prefix+"collectContentTriggerReplaying", "length %d, want at most %d", len(t), maxTrigger)
		case strings.Trim(t, "0123456789*#") != "":
			c.fail(prefix+"collectContentTriggerReplaying", "only DTMF digits 0-9 * #")
		case len(t) > p.CollectInd:
			c.fail(prefix+"collectContentTriggerReplaying", "longer than collectInd %d: it could never match", p.CollectInd)
		}
	}
}

// Validate checks the request against the rules of ref §3 and §11 and returns the first
// *ValidationError found, or nil. LanguageType must be set to LanguageChinese explicitly.
func (r *VerifyRequest) Validate() error {
	var c checker
	if r == nil {
		c.fail("body", "missing")
		return c.result()
	}
	c.number("displayNbr", r.DisplayNbr)
	c.number("calleeNbr", r.CalleeNbr)
	if r.LanguageType != LanguageChinese {
		c.fail("languageType", "%d, only %d (Chinese) is supported", r.LanguageType, LanguageChinese)
	}
	c.text("preTone", r.PreTone, true, maxFileName)
	if !verifyCodeRE.MatchString(r.VerifyCode) {
		c.fail("verifyCode", "want 2 to 8 digits 0-9")
	}
	c.text("posTone", r.PosTone, false, maxFileName)
	if r.Times != nil && (*r.Times < 0 || *r.Times > maxTimes) {
		c.fail("times", "%d, want 0–%d", *r.Times, maxTimes)
	}
	c.pushURL("statusUrl", r.StatusURL)
	c.pushURL("feeUrl", r.FeeURL)
	c.userData(r.UserData)
	return c.result()
}

// Validate checks the request against the rules of ref §4 and §11 and returns the first
// *ValidationError found, or nil. displayCalleeNbr is required (ref §4.1 ◐: every official
// example sends it). Options the reference calls "only valid if" another option is set are
// refused without it: lastMinVoice/lastMinToUE without maxDuration, preVoice without
// playPreVoice, recordHintTone without recordFlag.
func (r *Click2CallRequest) Validate() error {
	var c checker
	if r == nil {
		c.fail("body", "missing")
		return c.result()
	}
	c.number("displayNbr", r.DisplayNbr)
	c.number("callerNbr", r.CallerNbr)
	c.number("displayCalleeNbr", r.DisplayCalleeNbr)
	c.number("calleeNbr", r.CalleeNbr)
	if r.MaxDuration < 0 || r.MaxDuration > maxMaxDuration {
		c.fail("maxDuration", "%d, want 0–%d minutes", r.MaxDuration, maxMaxDuration)
	}
	c.text("lastMinVoice", r.LastMinVoice, false, maxFileName)
	if r.LastMinVoice != "" && r.MaxDuration == 0 {
		c.fail("lastMinVoice", "only with maxDuration > 0")
	}
	switch r.LastMinToUE {
	case "":
	case LastMinToA, LastMinToB, LastMinToBoth:
		if r.MaxDuration == 0 {
			c.fail("lastMinToUE", "only with maxDuration > 0")
		}
	default:
		c.fail("lastMinToUE", "%q, want toa, tob or both", r.LastMinToUE)
	}
	c.text("preVoice", r.PreVoice, false, maxFileName)
	if r.PreVoice != "" && !r.PlayPreVoice {
		c.fail("preVoice", "only with playPreVoice \"true\"")
	}
	c.text("waitVoice", r.WaitVoice, false, maxFileName)
	switch r.CalleeMedia {
	case "", CalleeMediaAll, CalleeMediaNone, CalleeMediaFail:
	default:
		c.fail("calleeMedia", "%q, want all, none or fail", r.CalleeMedia)
	}
	c.pushURL("statusUrl", r.StatusURL)
	c.pushURL("feeUrl", r.FeeURL)
	c.text("recordHintTone", r.RecordHintTone, false, maxFileName)
	if r.RecordHintTone != "" && !r.RecordFlag {
		c.fail("recordHintTone", "only with recordFlag \"true\"")
	}
	c.userData(r.UserData)
	return c.result()
}

// Validate checks a callStop body (ref §5.1): sessionid 1–256 characters and signal "call_stop".
func (r *CallStopRequest) Validate() error {
	var c checker
	if r == nil {
		c.fail("body", "missing")
		return c.result()
	}
	c.text("sessionid", r.SessionID, true, maxSessionID)
	if r.Signal != SignalCallStop {
		c.fail("signal", "%q, want %q", r.Signal, SignalCallStop)
	}
	return c.result()
}
