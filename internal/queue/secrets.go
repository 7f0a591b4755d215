package queue

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// DeriveKey derives a 32-byte key for one purpose ("userdata", "code", "webhook", …) from a
// configured secret, so that one operator secret can serve several uses without one use's key
// revealing another's.
func DeriveKey(secret, purpose string) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("voicequeue/" + purpose))
	return mac.Sum(nil)
}

// CodeSealer encrypts verification codes (AES-256-GCM) so that a code is never kept in clear in
// Redis: the task payload carries it sealed and the job record never carries it at all.
type CodeSealer struct{ aead cipher.AEAD }

// NewCodeSealer returns a sealer for a 32-byte key (see DeriveKey).
func NewCodeSealer(key []byte) (*CodeSealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("new code sealer: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("new code sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new code sealer: %w", err)
	}
	return &CodeSealer{aead: aead}, nil
}

// Seal encrypts a code, binding it to the job ID so that a sealed code can't be moved to another
// job.
func (s *CodeSealer) Seal(jobID, code string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal code: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(code), []byte(jobID))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// ErrSealedCode reports a sealed code that does not open with this key and job ID.
var ErrSealedCode = errors.New("sealed verification code does not open")

// Open decrypts a code sealed for jobID.
func (s *CodeSealer) Open(jobID, sealed string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", ErrSealedCode
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(jobID))
	if err != nil {
		return "", ErrSealedCode
	}
	return string(plain), nil
}

// GenerateCode returns n crypto-random decimal digits (2 ≤ n ≤ 8).
func GenerateCode(n int) (string, error) {
	if n < 2 || n > 8 {
		return "", fmt.Errorf("generate code: length %d outside 2..8", n)
	}
	var b strings.Builder
	ten := big.NewInt(10)
	for range n {
		d, err := rand.Int(rand.Reader, ten)
		if err != nil {
			return "", fmt.Errorf("generate code: %w", err)
		}
		b.WriteByte(byte('0' + d.Int64()))
	}
	return b.String(), nil
}

// Tagger signs the job reference that travels in the provider's `userData`, so that a push can
// only touch the job it was made for. The form is "<job id>.<attempt>.<tag>", where tag is the
// first 16 bytes of HMAC-SHA256(key, "<job id>.<attempt>") in unpadded base64url: 22 characters,
// no braces, well inside the 256-character limit (ref §2.1).
type Tagger struct{ key []byte }

// NewTagger returns a tagger for key (see DeriveKey).
func NewTagger(key []byte) *Tagger { return &Tagger{key: append([]byte(nil), key...)} }

// Errors of Tagger.Parse.
var (
	ErrNoReference = errors.New("push carries no job reference")
	ErrForgedTag   = errors.New("push job reference has a bad tag")
)

// Reference is what a push's userData identifies: a job and which attempt of it.
type Reference struct {
	JobID   string
	Attempt int
}

// Tag returns the userData for an attempt of a job.
func (t *Tagger) Tag(ref Reference) string {
	msg := ref.JobID + "." + strconv.Itoa(ref.Attempt)
	return msg + "." + t.mac(msg)
}

func (t *Tagger) mac(msg string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// Parse verifies userData and returns its reference. An empty userData is ErrNoReference; anything
// else that does not verify is ErrForgedTag.
func (t *Tagger) Parse(userData string) (Reference, error) {
	if userData == "" {
		return Reference{}, ErrNoReference
	}
	i := strings.LastIndexByte(userData, '.')
	if i <= 0 {
		return Reference{}, ErrForgedTag
	}
	msg, tag := userData[:i], userData[i+1:]
	if !hmac.Equal([]byte(tag), []byte(t.mac(msg))) {
		return Reference{}, ErrForgedTag
	}
	j := strings.LastIndexByte(msg, '.')
	if j <= 0 {
		return Reference{}, ErrForgedTag
	}
	attempt, err := strconv.Atoi(msg[j+1:])
	if err != nil || attempt < 0 {
		return Reference{}, ErrForgedTag
	}
	return Reference{JobID: msg[:j], Attempt: attempt}, nil
}
