package voicesim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// The simulator validates request bodies on its own, from the raw JSON, as the platform would
// (ref §2–§5, §11, §12.3): it must catch what our client gets wrong, so it shares none of the
// client's validation. Field names are case-sensitive. The rules where the reference is silent:
//
//   - a missing required field, a value of the wrong JSON type, or a value outside its length or
//     range gets 1010002 with resultdesc "Invalid request. <field>" (nested fields are named like
//     "playInfoList[1].collectInd");
//   - a present but invalid displayNbr/displayCalleeNbr gets 1010023, callerNbr 1010024 and
//     verifyCode 1010022; a missing one gets 1010002 like any other required field;
//   - "true"/"false" flags must be JSON strings, integers must be JSON integers;
//   - an optional string that is present must still respect its minimum length (String(1-N));
//   - unknown fields are ignored, as the Java SDK does.

// maxBodyBytes caps a request body; larger bodies get 1010002.
const maxBodyBytes = 64 << 10

// rejection is a refused request: the result code and its resultdesc.
type rejection struct {
	code, desc string
}

func (r *rejection) Error() string { return r.code + " " + r.desc }

// reject returns the rejection for code with the table's resultdesc.
func reject(code string) *rejection {
	desc := "Request refused."
	if info, ok := voice.LookupCode(code); ok {
		desc = info.Desc
	}
	return &rejection{code: code, desc: desc}
}

// invalidParam is 1010002 naming the offending parameter.
func invalidParam(name string) *rejection {
	return &rejection{code: voice.CodeInvalidRequest, desc: "Invalid request. " + name}
}

var (
	numberRE     = regexp.MustCompile(`^\+[0-9]{3,30}$`) // String(4-31), + and digits (ref §11)
	verifyCodeRE = regexp.MustCompile(`^[0-9]{2,8}$`)    // ref §3.1
)

// wellFormedNumber reports whether n is "+" followed by 3 to 30 digits.
func wellFormedNumber(n string) bool { return numberRE.MatchString(n) }

// fields reads typed values out of one JSON object and keeps the first problem it meets, so that
// a validation reads top to bottom in the documented field order.
type fields struct {
	obj    map[string]json.RawMessage
	prefix string // "playInfoList[0]." for nested objects
	err    *rejection
}

// parseObject decodes a body that must be one JSON object.
func parseObject(body []byte, prefix string) (*fields, *rejection) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		if prefix == "" {
			return nil, &rejection{code: voice.CodeInvalidRequest, desc: "Invalid request."}
		}
		return nil, invalidParam(strings.TrimSuffix(prefix, "."))
	}
	return &fields{obj: obj, prefix: prefix}, nil
}

func (f *fields) fail(r *rejection) {
	if f.err == nil {
		f.err = r
	}
}

func (f *fields) invalid(name string) { f.fail(invalidParam(f.prefix + name)) }

// raw returns a field's JSON when it is present and not null.
func (f *fields) raw(name string) (json.RawMessage, bool) {
	v, ok := f.obj[name]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, false
	}
	return v, true
}

// str reads a String(min-max) counted in characters.
func (f *fields) str(name string, required bool, minLen, maxLen int) string {
	if f.err != nil {
		return ""
	}
	v, ok := f.raw(name)
	if !ok {
		if required {
			f.invalid(name)
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		f.invalid(name)
		return ""
	}
	if n := utf8.RuneCountInString(s); n < minLen || n > maxLen {
		f.invalid(name)
		return ""
	}
	return s
}

// integer reads a JSON integer in [lo, hi]; absent gives def and present=false.
func (f *fields) integer(name string, required bool, lo, hi, def int) (n int, present bool) {
	if f.err != nil {
		return def, false
	}
	v, ok := f.raw(name)
	if !ok {
		if required {
			f.invalid(name)
		}
		return def, false
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
	if err != nil || n < lo || n > hi {
		f.invalid(name)
		return def, false
	}
	return n, true
}

// flag reads an optional "true"/"false" string (default false).
func (f *fields) flag(name string) bool {
	switch f.enum(name, "true", "false") {
	case "true":
		return true
	default:
		return false
	}
}

// enum reads an optional string that must be one of values.
func (f *fields) enum(name string, values ...string) string {
	if _, ok := f.raw(name); !ok || f.err != nil {
		return ""
	}
	s := f.str(name, false, 0, 128)
	if f.err == nil && !slices.Contains(values, s) {
		f.invalid(name)
	}
	return s
}

// number reads a phone number; a malformed present value gets code.
func (f *fields) number(name string, required bool, code string) string {
	if _, ok := f.raw(name); !ok {
		f.str(name, required, 4, 31) // missing: 1010002 naming it, when required
		return ""
	}
	s := f.str(name, false, 0, 1<<10)
	if f.err == nil && !wellFormedNumber(s) {
		f.fail(numberRejection(code, f.prefix+name))
	}
	return s
}

// numberRejection names the parameter for 1010002 and uses the table text for the others.
func numberRejection(code, name string) *rejection {
	if code == voice.CodeInvalidRequest {
		return invalidParam(name)
	}
	return reject(code)
}

// display reads a required display number: well formed and, when an allow-list is configured,
// one of the app's fixed-line numbers (1010023).
func (f *fields) display(name string, allowed []string) string {
	s := f.number(name, true, voice.CodeInvalidDisplayNbr)
	if f.err == nil && len(allowed) > 0 && !slices.Contains(allowed, s) {
		f.fail(reject(voice.CodeInvalidDisplayNbr))
	}
	return s
}

// userData reads the optional String(1-256) without braces (ref §2.1).
func (f *fields) userData(name string) string {
	s := f.str(name, false, 1, 256)
	if f.err == nil && strings.ContainsAny(s, "{}") {
		f.invalid(name)
	}
	return s
}

// allowedURLChar reports whether c may appear in a push URL (ref §8 ◐).
func allowedURLChar(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.ContainsRune("-:./_#?&", c)
}

// pushURL reads an optional Base64 statusUrl/feeUrl, String(1-128) on the wire, and returns the
// decoded http(s) URL.
func (f *fields) pushURL(name string, anyChars bool) string {
	enc := f.str(name, false, 1, 128)
	if f.err != nil || enc == "" {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		f.invalid(name)
		return ""
	}
	s := string(raw)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\r\n") {
		f.invalid(name)
		return ""
	}
	if !anyChars && strings.IndexFunc(s, func(c rune) bool { return !allowedURLChar(c) }) >= 0 {
		f.invalid(name)
		return ""
	}
	return s
}

// parseNotify validates a callnotify body (ref §2.1, §2.2).
func (s *Simulator) parseNotify(body []byte) (voice.NotifyRequest, *rejection) {
	f, rej := parseObject(body, "")
	if rej != nil {
		return voice.NotifyRequest{}, rej
	}
	req := voice.NotifyRequest{
		DisplayNbr: f.display("displayNbr", s.cfg.DisplayNumbers),
		CalleeNbr:  f.number("calleeNbr", true, voice.CodeInvalidRequest),
	}
	req.PlayInfoList = f.playList("playInfoList")
	req.StatusURL = voice.EncodedURL(f.pushURL("statusUrl", s.cfg.AllowAnyURLChars))
	req.FeeURL = voice.EncodedURL(f.pushURL("feeUrl", s.cfg.AllowAnyURLChars))
	req.ReturnIdlePort = voice.Flag(f.flag("returnIdlePort"))
	req.UserData = f.userData("userData")
	if f.err != nil {
		return voice.NotifyRequest{}, f.err
	}
	for i, item := range req.PlayInfoList {
		if rej := s.checkTemplate(i, item); rej != nil {
			return voice.NotifyRequest{}, rej
		}
	}
	return req, nil
}

// playList reads playInfoList: 1 to 5 items, each with exactly one of notifyVoice/templateId.
func (f *fields) playList(name string) []voice.PlayItem {
	if f.err != nil {
		return nil
	}
	v, ok := f.raw(name)
	var items []json.RawMessage
	if !ok || json.Unmarshal(v, &items) != nil || len(items) < 1 || len(items) > 5 {
		f.invalid(name)
		return nil
	}
	list := make([]voice.PlayItem, 0, len(items))
	for i, rawItem := range items {
		item, rej := parseObject(rawItem, fmt.Sprintf("%s[%d].", name, i))
		if rej != nil {
			f.fail(rej)
			return nil
		}
		p := voice.PlayItem{
			NotifyVoice: item.str("notifyVoice", false, 1, 128),
			TemplateID:  item.str("templateId", false, 1, 32),
		}
		if item.err == nil && (p.NotifyVoice == "") == (p.TemplateID == "") {
			f.fail(invalidParam(fmt.Sprintf("%s[%d]", name, i)))
			return nil
		}
		if p.TemplateID != "" {
			p.TemplateParas = item.strList("templateParas")
		}
		p.CollectInd, _ = item.integer("collectInd", false, 0, 32, 0)
		p.ReplayAfterCollection = voice.Flag(item.flag("replayAfterCollection"))
		p.CollectContentTriggerReplaying = item.str("collectContentTriggerReplaying", false, 1, 32)
		if item.err != nil {
			f.fail(item.err)
			return nil
		}
		list = append(list, p)
	}
	return list
}

// strList reads an optional list of strings.
func (f *fields) strList(name string) []string {
	v, ok := f.raw(name)
	if !ok || f.err != nil {
		return nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		f.invalid(name)
		return nil
	}
	return list
}

// checkTemplate applies the template rules of ref §2.3 to one play item (1012003–1012005).
func (s *Simulator) checkTemplate(i int, item voice.PlayItem) *rejection {
	if item.TemplateID == "" {
		return nil
	}
	if s.templates == nil {
		for _, p := range item.TemplateParas {
			if len(p) > maxVariableBytes {
				return &rejection{code: "1012005", desc: fmt.Sprintf("templateParas[%d] of templateParas does not meet template", i)}
			}
		}
		return nil
	}
	vars, ok := s.templates[item.TemplateID]
	if !ok {
		return reject("1012003")
	}
	if len(item.TemplateParas) != len(vars) {
		return reject("1012004")
	}
	for j, v := range vars {
		if !v.fits(item.TemplateParas[j]) {
			return &rejection{code: "1012005", desc: v.placeholder + " of templateParas does not meet template"}
		}
	}
	return nil
}

// parseVerify validates a callVerify body (ref §3.1).
func (s *Simulator) parseVerify(body []byte) (voice.VerifyRequest, *rejection) {
	f, rej := parseObject(body, "")
	if rej != nil {
		return voice.VerifyRequest{}, rej
	}
	req := voice.VerifyRequest{
		DisplayNbr: f.display("displayNbr", s.cfg.DisplayNumbers),
		CalleeNbr:  f.number("calleeNbr", true, voice.CodeInvalidRequest),
	}
	req.LanguageType, _ = f.integer("languageType", true, voice.LanguageChinese, voice.LanguageChinese, 0)
	req.PreTone = f.str("preTone", true, 1, 128)
	req.VerifyCode = f.str("verifyCode", true, 0, 1<<10)
	if f.err == nil && !verifyCodeRE.MatchString(req.VerifyCode) {
		f.fail(reject(voice.CodeInvalidVerifyCode))
	}
	req.PosTone = f.str("posTone", false, 1, 128)
	if times, ok := f.integer("times", false, 0, 9, 3); ok {
		req.Times = &times
	}
	req.StatusURL = voice.EncodedURL(f.pushURL("statusUrl", s.cfg.AllowAnyURLChars))
	req.FeeURL = voice.EncodedURL(f.pushURL("feeUrl", s.cfg.AllowAnyURLChars))
	req.ReturnIdlePort = voice.Flag(f.flag("returnIdlePort"))
	req.UserData = f.userData("userData")
	if f.err != nil {
		return voice.VerifyRequest{}, f.err
	}
	return req, nil
}

// parseClick2Call validates a click2Call body (ref §4.1).
func (s *Simulator) parseClick2Call(body []byte) (voice.Click2CallRequest, *rejection) {
	f, rej := parseObject(body, "")
	if rej != nil {
		return voice.Click2CallRequest{}, rej
	}
	req := voice.Click2CallRequest{
		DisplayNbr: f.display("displayNbr", s.cfg.DisplayNumbers),
		CallerNbr:  f.number("callerNbr", true, voice.CodeInvalidCallerNbr),
	}
	req.DisplayCalleeNbr = f.display("displayCalleeNbr", s.cfg.DisplayNumbers)
	req.CalleeNbr = f.number("calleeNbr", true, voice.CodeInvalidRequest)
	req.MaxDuration, _ = f.integer("maxDuration", false, 0, 1440, 0)
	req.LastMinVoice = f.str("lastMinVoice", false, 1, 128)
	req.LastMinToUE = f.enum("lastMinToUE", voice.LastMinToA, voice.LastMinToB, voice.LastMinToBoth)
	req.PlayPreVoice = voice.Flag(f.flag("playPreVoice"))
	req.PreVoice = f.str("preVoice", false, 1, 128)
	req.WaitVoice = f.str("waitVoice", false, 1, 128)
	req.CalleeMedia = f.enum("calleeMedia", voice.CalleeMediaAll, voice.CalleeMediaNone, voice.CalleeMediaFail)
	req.StatusURL = voice.EncodedURL(f.pushURL("statusUrl", s.cfg.AllowAnyURLChars))
	req.FeeURL = voice.EncodedURL(f.pushURL("feeUrl", s.cfg.AllowAnyURLChars))
	req.RecordFlag = voice.Flag(f.flag("recordFlag"))
	req.RecordHintTone = f.str("recordHintTone", false, 1, 128)
	req.PartyTypeRequiredInDisconnect = voice.Flag(f.flag("partyTypeRequiredInDisconnect"))
	req.ReturnIdlePort = voice.Flag(f.flag("returnIdlePort"))
	req.UserData = f.userData("userData")
	if f.err != nil {
		return voice.Click2CallRequest{}, f.err
	}
	if bool(req.RecordFlag) && !s.cfg.RecordingEnabled {
		return voice.Click2CallRequest{}, reject(voice.CodeRecordingOff)
	}
	return req, nil
}

// parseCallStop validates a callStop body (ref §5.1): lower-case `sessionid` and the fixed signal.
func parseCallStop(body []byte) (voice.CallStopRequest, *rejection) {
	f, rej := parseObject(body, "")
	if rej != nil {
		return voice.CallStopRequest{}, rej
	}
	req := voice.CallStopRequest{
		SessionID: f.str("sessionid", true, 1, 256),
		Signal:    f.str("signal", true, 1, 128),
	}
	if f.err == nil && req.Signal != voice.SignalCallStop {
		f.invalid("signal")
	}
	if f.err != nil {
		return voice.CallStopRequest{}, f.err
	}
	return req, nil
}

// Templates (ref §2.3).

// maxVariableBytes is the most a template variable may hold.
const maxVariableBytes = 32

// maxTemplateBytes is the most a template may hold.
const maxTemplateBytes = 900

var (
	placeholderRE = regexp.MustCompile(`\$\{[^}]*\}`)
	dateRE        = regexp.MustCompile(`^[0-9]{4}/[0-9]{2}/[0-9]{2}$`)
	timeRE        = regexp.MustCompile(`^[0-9]{2}:[0-9]{2}(:[0-9]{2})?$`)
	digitsRE      = regexp.MustCompile(`^[0-9]*$`)
)

// templateVar is one variable of a template: ${TXT_n}, ${NUM_n}, ${DATE} or ${TIME}.
type templateVar struct {
	placeholder string // as written, e.g. "${NUM_6}"
	kind        string // "TXT", "NUM", "DATE", "TIME"
	max         int    // n of TXT_n and NUM_n
}

// parseTemplate lists the variables of a template text in order.
func parseTemplate(text string) ([]templateVar, error) {
	if len(text) > maxTemplateBytes {
		return nil, fmt.Errorf("template is %d bytes, more than %d", len(text), maxTemplateBytes)
	}
	var vars []templateVar
	for _, ph := range placeholderRE.FindAllString(text, -1) {
		name := ph[2 : len(ph)-1]
		v := templateVar{placeholder: ph, kind: name}
		if kind, n, ok := strings.Cut(name, "_"); ok {
			size, err := strconv.Atoi(n)
			if (kind != "TXT" && kind != "NUM") || err != nil || size < 1 || size > maxVariableBytes {
				return nil, fmt.Errorf("bad variable %s", ph)
			}
			v.kind, v.max = kind, size
		} else if name != "DATE" && name != "TIME" {
			return nil, errors.New("bad variable " + ph)
		}
		vars = append(vars, v)
	}
	return vars, nil
}

// fits reports whether a parameter value matches the variable.
func (v templateVar) fits(val string) bool {
	switch v.kind {
	case "TXT":
		return len(val) <= v.max
	case "NUM":
		return len(val) <= v.max && digitsRE.MatchString(val)
	case "DATE":
		return dateRE.MatchString(val)
	case "TIME":
		return timeRE.MatchString(val)
	}
	return false
}
