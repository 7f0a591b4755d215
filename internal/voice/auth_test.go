package voice

import (
	"regexp"
	"testing"
	"time"
)

// TestPasswordDigestVector reproduces the test vector of ref §1.3.
func TestPasswordDigestVector(t *testing.T) {
	t.Parallel()
	got := PasswordDigest("testAppSecret123", "66C92B11FF8A425FB8D4CCFE0ED9ED1F", "2018-02-12T15:30:20Z")
	if want := "s5kvOOC2o3sG6c34PY4lyGNj3c5F8dwXJhro7VWmojg="; got != want {
		t.Fatalf("PasswordDigest = %q, want %q", got, want)
	}
}

func TestNewNonce(t *testing.T) {
	t.Parallel()
	charset := regexp.MustCompile(`^[0-9A-Za-z]{1,128}$`)
	seen := make(map[string]bool, 1000)
	for range 1000 {
		n, err := NewNonce()
		if err != nil {
			t.Fatal(err)
		}
		if !charset.MatchString(n) || len(n) != 32 {
			t.Fatalf("nonce %q: want 32 letters/digits (ref §1.3)", n)
		}
		if seen[n] {
			t.Fatalf("nonce %q repeated", n)
		}
		seen[n] = true
	}
}

func TestFormatCreated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"UTC", time.Date(2018, 2, 12, 15, 30, 20, 0, time.UTC), "2018-02-12T15:30:20Z"},
		{"Beijing clock converted", time.Date(2018, 2, 12, 23, 30, 20, 0, time.FixedZone("CST", 8*3600)), "2018-02-12T15:30:20Z"},
		{"negative offset crosses the date", time.Date(2018, 2, 11, 22, 30, 20, 0, time.FixedZone("EST", -5*3600)), "2018-02-12T03:30:20Z"},
		{"fraction dropped", time.Date(2018, 2, 12, 15, 30, 20, 999_999_999, time.UTC), "2018-02-12T15:30:20Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := FormatCreated(tt.in); got != tt.want {
				t.Fatalf("FormatCreated = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewUsernameToken(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 5, 1, 16, 0, 0, 0, time.FixedZone("CST", 8*3600))
	a, err := NewUsernameToken("key", "secret", now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewUsernameToken("key", "secret", now)
	if err != nil {
		t.Fatal(err)
	}
	if a.Nonce == b.Nonce {
		t.Fatal("two tokens share a nonce")
	}
	if a.Created != "2024-05-01T08:00:00Z" || a.Username != "key" || a.PasswordDigest != PasswordDigest("secret", a.Nonce, a.Created) {
		t.Fatalf("token = %+v", a)
	}
}

// TestUsernameTokenRoundTrip: String() then ParseUsernameToken gives the token back, and the
// parser accepts both comma forms of ref §1.2 plus the lower-case header name's value as is.
func TestUsernameTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tok := UsernameToken{
		Username:       "testAppKey",
		PasswordDigest: "s5kvOOC2o3sG6c34PY4lyGNj3c5F8dwXJhro7VWmojg=",
		Nonce:          "66C92B11FF8A425FB8D4CCFE0ED9ED1F",
		Created:        "2018-02-12T15:30:20Z",
	}
	tests := []struct{ name, header string }{
		{"String form (no spaces)", tok.String()},
		{"spaces after commas (doc prose)", `UsernameToken Username="testAppKey", PasswordDigest="s5kvOOC2o3sG6c34PY4lyGNj3c5F8dwXJhro7VWmojg=", Nonce="66C92B11FF8A425FB8D4CCFE0ED9ED1F", Created="2018-02-12T15:30:20Z"`},
		{"spaces around commas and equals", `UsernameToken  Username = "testAppKey" ,PasswordDigest="s5kvOOC2o3sG6c34PY4lyGNj3c5F8dwXJhro7VWmojg=" , Nonce="66C92B11FF8A425FB8D4CCFE0ED9ED1F",	Created="2018-02-12T15:30:20Z" `},
		{"other attribute order", `UsernameToken Created="2018-02-12T15:30:20Z",Nonce="66C92B11FF8A425FB8D4CCFE0ED9ED1F",PasswordDigest="s5kvOOC2o3sG6c34PY4lyGNj3c5F8dwXJhro7VWmojg=",Username="testAppKey"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseUsernameToken(tt.header)
			if err != nil {
				t.Fatalf("ParseUsernameToken(%q): %v", tt.header, err)
			}
			if got != tok {
				t.Fatalf("got %+v, want %+v", got, tok)
			}
		})
	}
	if want := `UsernameToken Username="testAppKey",PasswordDigest="s5kvOOC2o3sG6c34PY4lyGNj3c5F8dwXJhro7VWmojg=",Nonce="66C92B11FF8A425FB8D4CCFE0ED9ED1F",Created="2018-02-12T15:30:20Z"`; tok.String() != want {
		t.Fatalf("String() = %s\nwant       %s", tok.String(), want)
	}
}

func TestParseUsernameTokenErrors(t *testing.T) {
	t.Parallel()
	for _, h := range []string{
		``,
		`Basic abc`,
		`UsernameTokenX Username="a"`,
		`UsernameToken Username=a`,
		`UsernameToken Username="a`,
		`UsernameToken Username="a" Nonce="b"`,
		`UsernameToken Username="a",Username="b"`,
		`UsernameToken ="a"`,
	} {
		t.Run(h, func(t *testing.T) {
			t.Parallel()
			if tok, err := ParseUsernameToken(h); err == nil {
				t.Fatalf("ParseUsernameToken(%q) = %+v, want an error", h, tok)
			}
		})
	}
}

func BenchmarkPasswordDigest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		PasswordDigest("testAppSecret123", "66C92B11FF8A425FB8D4CCFE0ED9ED1F", "2018-02-12T15:30:20Z")
	}
}
