package voice_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// Every request carries the fixed Authorization value and an X-AKSK UsernameToken with a fresh
// nonce and Created in UTC (ref §1.2, §1.3). The server below prints the deterministic parts and
// checks the digest the way the platform does.
func Example_signedRequest() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		tok, err := voice.ParseUsernameToken(r.Header.Get("X-AKSK"))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.Method, r.URL.Path)
		fmt.Println("Content-Type:", r.Header.Get("Content-Type"))
		fmt.Println("Authorization:", r.Header.Get("Authorization"))
		fmt.Println("Username:", tok.Username)
		fmt.Println("Created:", tok.Created)
		fmt.Println("Nonce length:", len(tok.Nonce))
		fmt.Println("digest ok:", tok.PasswordDigest == voice.PasswordDigest("app-secret", tok.Nonce, tok.Created))
		io.WriteString(w, `{"resultcode":"0","resultdesc":"Success","sessionId":"1200_366_0_20161228102743@callenabler.home1.com"}`)
	}))
	defer srv.Close()

	beijing := time.FixedZone("CST", 8*3600)
	c, err := voice.NewClient(voice.Config{
		BaseURL:   srv.URL,
		AppKey:    "app-key",
		AppSecret: "app-secret",
		Now:       func() time.Time { return time.Date(2024, 5, 1, 16, 0, 0, 0, beijing) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseIdleConnections()
	resp, err := c.Notify(context.Background(), &voice.NotifyRequest{
		DisplayNbr:   "+8675500000001",
		CalleeNbr:    "+8613800000002",
		PlayInfoList: []voice.PlayItem{{TemplateID: "abc123", TemplateParas: []string{"3"}}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sessionId:", resp.SessionID)
	// Output:
	// POST /rest/httpsessions/callnotify/v2.0
	// Content-Type: application/json;charset=UTF-8
	// Authorization: AKSK realm="SDP",profile="UsernameToken",type="Appkey"
	// Username: app-key
	// Created: 2024-05-01T08:00:00Z
	// Nonce length: 32
	// digest ok: true
	// sessionId: 1200_366_0_20161228102743@callenabler.home1.com
}

// Every failed call returns an *APIError; its Class tells the sender what to do next.
func ExampleClassOf() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"resultcode":"1020165","resultdesc":"The appkey call port of using exceeds the limited."}`)
	}))
	defer srv.Close()
	c, err := voice.NewClient(voice.Config{BaseURL: srv.URL, AppKey: "app-key", AppSecret: "app-secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseIdleConnections()

	_, err = c.Verify(context.Background(), &voice.VerifyRequest{
		DisplayNbr: "+8675500000001", CalleeNbr: "+8613800000002",
		LanguageType: voice.LanguageChinese, PreTone: "welcome.wav", VerifyCode: "123456",
	})
	var apiErr *voice.APIError
	if errors.As(err, &apiErr) {
		fmt.Println("code:", apiErr.Code, "HTTP:", apiErr.HTTPStatus, "class:", apiErr.Class)
	}
	switch voice.ClassOf(err) {
	case voice.ClassRate:
		fmt.Println("back off at least a minute, then retry")
	case voice.ClassAmbiguous:
		fmt.Println("the call may have been placed: wait for pushes, never redial blindly")
	}

	// A request that breaks a documented rule is never sent.
	_, err = c.Verify(context.Background(), &voice.VerifyRequest{
		DisplayNbr: "+8675500000001", CalleeNbr: "+8613800000002",
		LanguageType: voice.LanguageChinese, PreTone: "welcome.wav", VerifyCode: "12a",
	})
	var valErr *voice.ValidationError
	if errors.As(err, &valErr) {
		fmt.Println("invalid field:", valErr.Field, "class:", voice.ClassOf(err))
	}
	// Output:
	// code: 1020165 HTTP: 403 class: rate
	// back off at least a minute, then retry
	// invalid field: verifyCode class: permanent
}

func ExampleFeeInfo_Outcome() {
	push, err := voice.ParseFeePush([]byte(`{"eventType":"fee","feeLst":[{"direction":0,"spId":"sp","appKey":"k",
		"bindNum":"+8675500000001","sessionId":"1200_1@callenabler","callerNum":"+8675500000001",
		"calleeNum":"+8613800000002","callOutStartTime":"2019-01-24 03:04:24","callEndTime":"2019-01-24 03:04:50",
		"callOutUnaswRsn":17,"sipStatusCode":486,"serviceType":"001"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	cdr := push.FeeLst[0]
	fmt.Println(voice.MaskNumber(cdr.CalleeNum), cdr.Outcome(), cdr.TalkTime(), voice.Retryable(cdr.Outcome()))
	// Output: +86138****0002 busy 0s false
}
