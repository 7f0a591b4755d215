package voicesim

import (
	"crypto/hmac"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// Authentication (ref §1.2, §1.3, §9.1, §12.2). The checks run in this order and the first failure
// answers:
//
//  1. Authorization header missing, not "AKSK ..." or unparseable → 1023006
//  2. realm missing → 1023007, realm ≠ "SDP" → 1023009
//  3. profile missing → 1023008, profile ≠ "UsernameToken" → 1023010
//  4. type missing → 1023012, type ≠ "Appkey" → 1023011
//  5. X-AKSK missing → 1023033; not "UsernameToken ..." or unparseable → 1023006
//  6. Username missing → 1023034, Nonce missing → 1023035, Created missing → 1023036
//  7. PasswordDigest missing, Nonce not 1–128 letters/digits, Created not
//     "yyyy-MM-ddTHH:mm:ssZ" → 1023006
//  8. Created further than SkewWindow from the clock, either way → 1010013
//  9. PasswordDigest ≠ Base64(HMAC-SHA256(AppSecret, Nonce+Created)) → 1023006
//  10. Username is not the app key → 1010003
//
// The simulator knows one app, so the digest is checked against its secret before the app key,
// in the reference's order: a request signed with the right secret under a wrong key gets 1010003,
// one signed with another secret gets 1023006.
//
// Nonces are not checked for replay (ref §1.3 ❓).

var nonceRE = regexp.MustCompile(`^[0-9A-Za-z]{1,128}$`)

// authenticate returns nil when the request carries valid AKSK headers for the app.
func (s *Simulator) authenticate(h http.Header) *rejection {
	authz := h.Get(voice.HeaderAuthorization)
	if authz == "" {
		return reject(voice.CodeAuthFailed)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(authz), "AKSK")
	if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return reject(voice.CodeAuthFailed)
	}
	attrs, err := voice.ParseAttributes(rest)
	if err != nil {
		return reject(voice.CodeAuthFailed)
	}
	for _, check := range []struct{ name, want, missing, wrong string }{
		{"realm", "SDP", "1023007", "1023009"},
		{"profile", "UsernameToken", "1023008", "1023010"},
		{"type", "Appkey", "1023012", "1023011"},
	} {
		v, ok := attrs[check.name]
		if !ok {
			return reject(check.missing)
		}
		if v != check.want {
			return reject(check.wrong)
		}
	}

	xaksk := h.Get(voice.HeaderXAKSK)
	if xaksk == "" {
		return reject("1023033")
	}
	tok, err := voice.ParseUsernameToken(xaksk)
	if err != nil {
		return reject(voice.CodeAuthFailed)
	}
	switch {
	case tok.Username == "":
		return reject("1023034")
	case tok.Nonce == "":
		return reject("1023035")
	case tok.Created == "":
		return reject("1023036")
	case tok.PasswordDigest == "" || !nonceRE.MatchString(tok.Nonce):
		return reject(voice.CodeAuthFailed)
	}
	created, err := time.Parse(voice.CreatedLayout, tok.Created)
	if err != nil {
		return reject(voice.CodeAuthFailed)
	}
	if skew := s.cfg.Now().Sub(created); skew > s.cfg.SkewWindow || skew < -s.cfg.SkewWindow {
		return reject(voice.CodeTimeOutLimit)
	}
	want := voice.PasswordDigest(s.cfg.AppSecret, tok.Nonce, tok.Created)
	if !hmac.Equal([]byte(want), []byte(tok.PasswordDigest)) {
		return reject(voice.CodeAuthFailed)
	}
	if tok.Username != s.cfg.AppKey {
		return reject(voice.CodeInvalidAppKey)
	}
	return nil
}

// signPush adds the optional push signature (ref §8, newer doc versions): the fixed
// Authorization value and an X-AKSK whose digest covers the push URL. Created is UTC (the doc
// describes it as UTC+8 while appending Z; we keep true UTC like the API side).
func (s *Simulator) signPush(h http.Header, pushURL string) error {
	nonce, err := voice.NewNonce()
	if err != nil {
		return err
	}
	created := voice.FormatCreated(s.cfg.Now())
	tok := voice.UsernameToken{
		Username:       s.cfg.AppKey,
		PasswordDigest: voice.PushDigest(s.cfg.AppSecret, pushURL, nonce, created, s.cfg.PushNewlineDigest),
		Nonce:          nonce,
		Created:        created,
	}
	h.Set(voice.HeaderAuthorization, voice.AuthorizationValue)
	h.Set(voice.HeaderXAKSK, tok.String())
	return nil
}
