package voicesim

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
)

func TestAuthenticationOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	now := e.clock.Now()
	const nonce = "66C92B11FF8A425FB8D4CCFE0ED9ED1F"
	created := voice.FormatCreated(now)
	digest := voice.PasswordDigest(testSecret, nonce, created)
	token := func(user, dig, nonce, created string) string {
		return fmt.Sprintf(`UsernameToken Username="%s",PasswordDigest="%s",Nonce="%s",Created="%s"`, user, dig, nonce, created)
	}
	staleCreated := voice.FormatCreated(now.Add(-6 * time.Minute))
	futureCreated := voice.FormatCreated(now.Add(6 * time.Minute))

	tests := []struct {
		name        string
		authz, aksk string // "" = header absent
		want        string
	}{
		{"valid", voice.AuthorizationValue, token(testKey, digest, nonce, created), "0"},
		{"valid with spaces after commas", `AKSK realm="SDP", profile="UsernameToken", type="Appkey"`,
			fmt.Sprintf(`UsernameToken Username="%s", PasswordDigest="%s", Nonce="%s", Created="%s"`, testKey, digest, nonce, created), "0"},
		{"authorization missing", "", token(testKey, digest, nonce, created), "1023006"},
		{"authorization not AKSK", `WSSE realm="SDP",profile="UsernameToken",type="Appkey"`, token(testKey, digest, nonce, created), "1023006"},
		{"authorization unparseable", `AKSK realm=SDP`, token(testKey, digest, nonce, created), "1023006"},
		{"realm missing", `AKSK profile="UsernameToken",type="Appkey"`, token(testKey, digest, nonce, created), "1023007"},
		{"profile missing", `AKSK realm="SDP",type="Appkey"`, token(testKey, digest, nonce, created), "1023008"},
		{"realm wrong", `AKSK realm="sdp",profile="UsernameToken",type="Appkey"`, token(testKey, digest, nonce, created), "1023009"},
		{"profile wrong", `AKSK realm="SDP",profile="Token",type="Appkey"`, token(testKey, digest, nonce, created), "1023010"},
		{"type wrong", `AKSK realm="SDP",profile="UsernameToken",type="app_key"`, token(testKey, digest, nonce, created), "1023011"},
		{"type missing", `AKSK realm="SDP",profile="UsernameToken"`, token(testKey, digest, nonce, created), "1023012"},
		{"realm checked before X-AKSK", `AKSK profile="UsernameToken",type="Appkey"`, "", "1023007"},
		{"x-aksk missing", voice.AuthorizationValue, "", "1023033"},
		{"x-aksk not a UsernameToken", voice.AuthorizationValue, `Token Username="x"`, "1023006"},
		{"username missing", voice.AuthorizationValue, fmt.Sprintf(`UsernameToken PasswordDigest="%s",Nonce="%s",Created="%s"`, digest, nonce, created), "1023034"},
		{"nonce missing", voice.AuthorizationValue, fmt.Sprintf(`UsernameToken Username="%s",PasswordDigest="%s",Created="%s"`, testKey, digest, created), "1023035"},
		{"created missing", voice.AuthorizationValue, fmt.Sprintf(`UsernameToken Username="%s",PasswordDigest="%s",Nonce="%s"`, testKey, digest, nonce), "1023036"},
		{"username checked before nonce", voice.AuthorizationValue, `UsernameToken PasswordDigest="x"`, "1023034"},
		{"digest missing", voice.AuthorizationValue, fmt.Sprintf(`UsernameToken Username="%s",Nonce="%s",Created="%s"`, testKey, nonce, created), "1023006"},
		{"nonce with bad characters", voice.AuthorizationValue, token(testKey, digest, "ab-cd", created), "1023006"},
		{"created malformed", voice.AuthorizationValue, token(testKey, digest, nonce, "2024-05-01 08:00:00"), "1023006"},
		{"created stale", voice.AuthorizationValue, token(testKey, voice.PasswordDigest(testSecret, nonce, staleCreated), nonce, staleCreated), "1010013"},
		{"created in the future", voice.AuthorizationValue, token(testKey, voice.PasswordDigest(testSecret, nonce, futureCreated), nonce, futureCreated), "1010013"},
		{"stale checked before digest", voice.AuthorizationValue, token(testKey, "bad", nonce, staleCreated), "1010013"},
		{"wrong digest", voice.AuthorizationValue, token(testKey, "s5kvOOC2o3sG6c34PY4lyGNj3c5F8dwXJhro7VWmojg=", nonce, created), "1023006"},
		{"other secret under unknown key", voice.AuthorizationValue, token("otherKey", voice.PasswordDigest("otherSecret", nonce, created), nonce, created), "1023006"},
		{"unknown app key", voice.AuthorizationValue, token("otherKey", digest, nonce, created), "1010003"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.doWith(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000001", nil), func(h http.Header) {
				if tt.authz != "" {
					h.Set("Authorization", tt.authz)
				}
				if tt.aksk != "" {
					h.Set("X-AKSK", tt.aksk)
				}
			})
			if r.resp.ResultCode != tt.want {
				t.Fatalf("resultcode = %q (%s), want %q", r.resp.ResultCode, r.resp.ResultDesc, tt.want)
			}
			info, _ := voice.LookupCode(tt.want)
			if r.status != info.HTTPStatus {
				t.Errorf("HTTP %d, want %d", r.status, info.HTTPStatus)
			}
			if tt.want != "0" && (r.resp.ResultDesc != info.Desc || r.resp.SessionID != "") {
				t.Errorf("reply %+v, want desc %q and no sessionId", r.resp, info.Desc)
			}
		})
	}
}

// TestAuthenticationVector checks the reference's test vector through the simulator's check.
func TestAuthenticationVector(t *testing.T) {
	t.Parallel()
	created := time.Date(2018, 2, 12, 15, 30, 20, 0, time.UTC)
	sim, err := New(Config{AppKey: testKey, AppSecret: testSecret, Now: func() time.Time { return created }})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	h := http.Header{}
	h.Set("Authorization", voice.AuthorizationValue)
	h.Set("X-AKSK", `UsernameToken Username="testAppKey",PasswordDigest="s5kvOOC2o3sG6c34PY4lyGNj3c5F8dwXJhro7VWmojg=",Nonce="66C92B11FF8A425FB8D4CCFE0ED9ED1F",Created="2018-02-12T15:30:20Z"`)
	if rej := sim.authenticate(h); rej != nil {
		t.Fatalf("reference vector refused: %v", rej)
	}
	h.Set("X-AKSK", `UsernameToken Username="testAppKey",PasswordDigest="jdKtbmPhwiDlE7s1RlhAiLQDeaNTcWGB5Q/uVunmcZo=",Nonce="66C92B11FF8A425FB8D4CCFE0ED9ED1F",Created="2018-02-12T15:30:20Z"`)
	if rej := sim.authenticate(h); rej == nil || rej.code != voice.CodeAuthFailed {
		t.Fatalf("legacy WSSE digest: got %v, want 1023006", rej)
	}
}

func TestSkewWindowConfigurable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{SkewWindow: time.Minute})
	r := e.doWith(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000001", nil), func(h http.Header) {
		sign(h, testKey, testSecret, e.clock.Now().Add(-90*time.Second))
	})
	if r.resp.ResultCode != voice.CodeTimeOutLimit {
		t.Fatalf("resultcode %q, want 1010013", r.resp.ResultCode)
	}
}
