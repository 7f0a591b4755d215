package voice

import "strings"

// MaskNumber hides the middle of a phone number for logs (house rule: never log full numbers).
// It keeps a leading `+`, the first five characters after it and the last four, with "****" in
// between: "+8613800000001" → "+86138****0001". Numbers too short for that to hide at least three
// characters keep only the last four ("+49301234567" → "+****4567"); fewer than eight characters
// are masked completely ("+8612" → "****"). An empty string stays empty.
func MaskNumber(s string) string {
	if s == "" {
		return ""
	}
	plus, body := "", s
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		plus, body = "+", rest
	}
	r := []rune(body)
	switch n := len(r); {
	case n >= 12:
		return plus + string(r[:5]) + "****" + string(r[n-4:])
	case n >= 8:
		return plus + "****" + string(r[n-4:])
	default:
		return "****"
	}
}
