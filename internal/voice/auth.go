package voice

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Header names and the fixed Authorization value of the AKSK scheme (ref §1.2).
const (
	HeaderAuthorization = "Authorization"
	HeaderXAKSK         = "X-AKSK"
	AuthorizationValue  = `AKSK realm="SDP",profile="UsernameToken",type="Appkey"`
)

// CreatedLayout is the format of `Created`: UTC, no fractional seconds (ref §1.3).
const CreatedLayout = "2006-01-02T15:04:05Z"

// PasswordDigest computes Base64(HMAC-SHA256(key=appSecret, message=nonce+created)) (ref §1.3).
func PasswordDigest(appSecret, nonce, created string) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write([]byte(nonce))
	mac.Write([]byte(created))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// NewNonce returns a fresh crypto-random nonce: 32 upper-case hex characters, as in Huawei's
// example (ref §1.3: 1–128 characters, digits and letters only).
func NewNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate nonce: %w", err)
	}
	return strings.ToUpper(hex.EncodeToString(b[:])), nil
}

// FormatCreated formats t as `Created`, converted to UTC.
func FormatCreated(t time.Time) string { return t.UTC().Format(CreatedLayout) }

// UsernameToken is the content of an X-AKSK header.
type UsernameToken struct {
	Username       string
	PasswordDigest string
	Nonce          string
	Created        string
}

// NewUsernameToken builds a token for appKey/appSecret with a fresh nonce created at now.
func NewUsernameToken(appKey, appSecret string, now time.Time) (UsernameToken, error) {
	nonce, err := NewNonce()
	if err != nil {
		return UsernameToken{}, err
	}
	created := FormatCreated(now)
	return UsernameToken{
		Username:       appKey,
		PasswordDigest: PasswordDigest(appSecret, nonce, created),
		Nonce:          nonce,
		Created:        created,
	}, nil
}

// String formats the token as the X-AKSK header value (no spaces after commas, as in the
// reference's request example).
func (t UsernameToken) String() string {
	return fmt.Sprintf(`UsernameToken Username="%s",PasswordDigest="%s",Nonce="%s",Created="%s"`,
		t.Username, t.PasswordDigest, t.Nonce, t.Created)
}

// ErrMalformedToken reports an X-AKSK (or Authorization) value that cannot be parsed.
var ErrMalformedToken = errors.New("malformed AKSK header")

// ParseUsernameToken parses an X-AKSK header value. It tolerates optional whitespace around the
// commas and around '=' (both forms appear in official material, ref §1.2). Missing attributes
// are left empty, so that a server can answer each with its own code.
func ParseUsernameToken(h string) (UsernameToken, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(h), "UsernameToken")
	if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
		return UsernameToken{}, fmt.Errorf("%w: X-AKSK must start with \"UsernameToken \"", ErrMalformedToken)
	}
	attrs, err := ParseAttributes(rest)
	if err != nil {
		return UsernameToken{}, err
	}
	return UsernameToken{
		Username:       attrs["Username"],
		PasswordDigest: attrs["PasswordDigest"],
		Nonce:          attrs["Nonce"],
		Created:        attrs["Created"],
	}, nil
}

// ParseAttributes parses a list of name="value" pairs separated by commas, as in the Authorization
// and X-AKSK headers. Names are case-sensitive; values must be double-quoted and may not contain
// quotes; a repeated name is an error.
func ParseAttributes(s string) (map[string]string, error) {
	attrs := make(map[string]string, 4)
	s = strings.TrimSpace(s)
	for s != "" {
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("%w: attribute without '=' in %q", ErrMalformedToken, s)
		}
		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, "\", \t") {
			return nil, fmt.Errorf("%w: bad attribute name %q", ErrMalformedToken, name)
		}
		rest = strings.TrimLeft(rest, " \t")
		if !strings.HasPrefix(rest, `"`) {
			return nil, fmt.Errorf("%w: value of %s must be quoted", ErrMalformedToken, name)
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return nil, fmt.Errorf("%w: unterminated value of %s", ErrMalformedToken, name)
		}
		if _, dup := attrs[name]; dup {
			return nil, fmt.Errorf("%w: attribute %s repeated", ErrMalformedToken, name)
		}
		attrs[name] = rest[1 : 1+end]
		s = strings.TrimLeft(rest[2+end:], " \t")
		if s == "" {
			break
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("%w: expected ',' after %s", ErrMalformedToken, name)
		}
		s = strings.TrimLeft(s[1:], " \t")
	}
	return attrs, nil
}

// PushDigest is the PasswordDigest of a signed push (newer reference versions, ref §8):
// Base64(HMAC-SHA256(appSecret, pushURL + "\n" + nonce + "\n" + created)), or, in the earlier
// variant (newline false), the same without the separators.
func PushDigest(appSecret, pushURL, nonce, created string, newline bool) string {
	sep := ""
	if newline {
		sep = "\n"
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write([]byte(pushURL + sep + nonce + sep + created))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
