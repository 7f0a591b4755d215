package voice

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func utc(s string) time.Time {
	t, err := time.Parse(PushTimeLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestParseStatusPushReferenceExample parses the §6.4 example field by field.
func TestParseStatusPushReferenceExample(t *testing.T) {
	t.Parallel()
	p, err := ParseStatusPush(readTestdata(t, "push_status_disconnect.json"))
	if err != nil {
		t.Fatal(err)
	}
	si := p.StatusInfo
	switch {
	case p.EventType != EventDisconnect,
		si.SessionID != "1201_612_4294967295_20190124030424@callenabler246.huaweicaas.com",
		!si.Timestamp.Equal(utc("2019-01-24 03:04:36")) || si.Timestamp.Unix,
		si.Caller != "+8675500000001", si.Called != "+8613800000002",
		si.StateCode == nil || *si.StateCode != 0,
		si.StateDesc != "The user releases the call.", si.UserData != "order-42":
		t.Fatalf("parsed %+v", p)
	}
	if got := DisconnectOutcome(*si.StateCode, true); got != OutcomeCompleted {
		t.Fatalf("outcome = %s, want completed", got)
	}
}

// TestParseStatusPushEvents: every event type of ref §6.1 and both timestamp forms.
func TestParseStatusPushEvents(t *testing.T) {
	t.Parallel()
	const sid = "1200_366_0_20161228102743@callenabler.home1.com"
	at := utc("2019-01-24 03:04:24")
	tests := []struct {
		name      string
		body      string
		event     EventType
		unix      bool
		wantDigit *string
	}{
		{"callout", `{"eventType":"callout","statusInfo":{"sessionId":"` + sid + `","timestamp":"2019-01-24 03:04:24","caller":"+8675500000001","called":"+8613800000002","userData":"order-42"}}`, EventCallout, false, nil},
		{"alerting", `{"eventType":"alerting","statusInfo":{"sessionId":"` + sid + `","timestamp":"2019-01-24  03:04:24","caller":"+8675500000001","called":"+8613800000002"}}`, EventAlerting, false, nil},
		{"answer unix seconds", `{"eventType":"answer","statusInfo":{"sessionId":"` + sid + `","timestamp":1548299064,"caller":"+8675500000001","called":"+8613800000002"}}`, EventAnswer, true, nil},
		{"answer unix seconds string", `{"eventType":"answer","statusInfo":{"sessionId":"` + sid + `","timestamp":"1548299064"}}`, EventAnswer, true, nil},
		{"answer unix milliseconds", `{"eventType":"answer","statusInfo":{"sessionId":"` + sid + `","timestamp":1548299064000}}`, EventAnswer, true, nil},
		{"collectInfo digits", `{"eventType":"collectInfo","statusInfo":{"sessionId":"` + sid + `","timestamp":"2019-01-24 03:04:24","digitInfo":"1","userData":"order-42"}}`, EventCollectInfo, false, ptr("1")},
		{"collectInfo empty digits", `{"eventType":"collectInfo","statusInfo":{"sessionId":"` + sid + `","timestamp":"2019-01-24 03:04:24","digitInfo":""}}`, EventCollectInfo, false, ptr("")},
		{"disconnect with partyType and unknown fields", `{"eventType":"disconnect","statusInfo":{"sessionId":"` + sid + `","timestamp":"2019-01-24 03:04:24","stateCode":8102,"stateDesc":"busy","partyType":1,"displayCallerNum":"+1","future":{"x":[1]}},"extra":true}`, EventDisconnect, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseStatusPush([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if p.EventType != tt.event || p.StatusInfo.SessionID != sid {
				t.Fatalf("parsed %+v", p)
			}
			if !p.StatusInfo.Timestamp.Equal(at) || p.StatusInfo.Timestamp.Unix != tt.unix {
				t.Fatalf("timestamp = %v (unix %v), want %v (unix %v)", p.StatusInfo.Timestamp.Time, p.StatusInfo.Timestamp.Unix, at, tt.unix)
			}
			if (tt.wantDigit == nil) != (p.StatusInfo.DigitInfo == nil) ||
				(tt.wantDigit != nil && *tt.wantDigit != *p.StatusInfo.DigitInfo) {
				t.Fatalf("digitInfo = %v, want %v", p.StatusInfo.DigitInfo, tt.wantDigit)
			}
			assertStableStatus(t, []byte(tt.body))
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseStatusPushErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, field string }{
		{"not JSON", `eventType=answer`, "decode"},
		{"empty", ``, "decode"},
		{"array", `[]`, "decode"},
		{"no eventType", `{"statusInfo":{"sessionId":"s"}}`, "eventType"},
		{"unknown eventType", `{"eventType":"ringing","statusInfo":{"sessionId":"s"}}`, "eventType"},
		{"fee sent to status", `{"eventType":"fee","statusInfo":{"sessionId":"s"}}`, "eventType"},
		{"no statusInfo", `{"eventType":"answer"}`, "statusInfo"},
		{"no sessionId", `{"eventType":"answer","statusInfo":{"timestamp":"2019-01-24 03:04:24"}}`, "statusInfo.sessionId"},
		{"sessionId 257", `{"eventType":"answer","statusInfo":{"sessionId":"` + strings.Repeat("s", 257) + `"}}`, "statusInfo.sessionId"},
		{"stateCode string", `{"eventType":"disconnect","statusInfo":{"sessionId":"s","stateCode":"0"}}`, "statusInfo.stateCode"},
		{"bad timestamp", `{"eventType":"answer","statusInfo":{"sessionId":"s","timestamp":"yesterday"}}`, "statusInfo.timestamp"},
		{"statusInfo not an object", `{"eventType":"answer","statusInfo":"s"}`, "statusInfo"},
		{"eventType not a string", `{"eventType":1,"statusInfo":{"sessionId":"s"}}`, "eventType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseStatusPush([]byte(tt.body))
			if !errors.Is(err, ErrMalformedPush) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("ParseStatusPush = %+v, %v; want ErrMalformedPush naming %s", p, err, tt.field)
			}
		})
	}
}

// TestParseFeePushReferenceExample parses the §7.5 example field by field.
func TestParseFeePushReferenceExample(t *testing.T) {
	t.Parallel()
	p, err := ParseFeePush(readTestdata(t, "push_fee_notify.json"))
	if err != nil {
		t.Fatal(err)
	}
	if p.EventType != EventFee || len(p.FeeLst) != 1 {
		t.Fatalf("parsed %+v", p)
	}
	f := p.FeeLst[0]
	switch {
	case f.Direction != 0, f.SpID != "sp_demo", f.AppKey != "<APP_Key>", f.ICID != "opaque-icid",
		f.BindNum != "+8675500000001", f.SessionID != "1200_366_0_20161228102743@callenabler.home1.com",
		f.CallerNum != "+8675500000001", f.CalleeNum != "+8613800000002",
		!f.CallOutStartTime.Equal(utc("2019-01-24 03:04:24")),
		!f.CallOutAlertingTime.Equal(utc("2019-01-24 03:04:27")),
		!f.CallOutAnswerTime.Equal(utc("2019-01-24 03:04:31")),
		!f.CallEndTime.Equal(utc("2019-01-24 03:04:52")),
		f.CallOutUnaswRsn == nil || *f.CallOutUnaswRsn != 0,
		f.ULFailReason == nil || *f.ULFailReason != 0,
		f.SIPStatusCode == nil || *f.SIPStatusCode != 0,
		f.TTSPlayTimes == nil || *f.TTSPlayTimes != 1, f.TTSTransDuration == nil || *f.TTSTransDuration != 1,
		f.ServiceType != ServiceTypePlayback, f.HostName != "callenabler246.huaweicaas.com", f.UserData != "order-42",
		!f.FwdAnswerTime.IsZero(), f.RecordFlag != nil:
		t.Fatalf("parsed %+v", f)
	}
	if got := f.TalkTime(); got != 21*time.Second {
		t.Fatalf("TalkTime = %v, want 21s", got)
	}
	if got := f.Outcome(); got != OutcomeCompleted {
		t.Fatalf("Outcome = %s, want completed", got)
	}
	assertStableFee(t, readTestdata(t, "push_fee_notify.json"))
}

// click2CallCDR is a click-to-call CDR with every documented field, as the CB page lists them.
func click2CallCDR(i int) map[string]any {
	return map[string]any{
		"direction": 0, "spId": "sp_demo", "appKey": "key", "icid": fmt.Sprintf("icid-%d", i),
		"bindNum": "+8675500000001", "sessionId": fmt.Sprintf("1202_%d_0_20190124030424@callenabler246.huaweicaas.com", i),
		"callerNum": "+8675500000001", "calleeNum": "+8613700000001",
		"fwdDisplayNum": "+8675500000001", "fwdDstNum": "+8613700000002",
		"callInTime": "2019-01-24 03:04:20", "callOutStartTime": "2019-01-24 03:04:20",
		"callOutAlertingTime": "2019-01-24 03:04:22", "callOutAnswerTime": "2019-01-24 03:04:25",
		"fwdStartTime": "2019-01-24 03:04:26", "fwdAlertingTime": "2019-01-24 03:04:28",
		"fwdAnswerTime": "2019-01-24 03:04:32", "callEndTime": "2019-01-24 03:06:02",
		"fwdUnaswRsn": 0, "callOutUnaswRsn": 0, "ulFailReason": 0, "sipStatusCode": 0,
		"recordFlag": 1, "recordStartTime": "2019-01-24 03:04:32", "recordObjectName": fmt.Sprintf("rec-%d.wav", i),
		"recordBucketName": "bucket", "recordDomain": "obs.example.com",
		"recordFileDownloadUrl": "https://obs.example.com/bucket/rec.wav",
		"ttsPlayTimes":          0, "ttsTransDuration": 0, "serviceType": "002",
		"hostName": "callenabler246.huaweicaas.com", "userData": fmt.Sprintf("job-%d", i),
	}
}

func feeBatch(t testing.TB, n int) []byte {
	t.Helper()
	recs := make([]map[string]any, n)
	for i := range recs {
		recs[i] = click2CallCDR(i)
	}
	b, err := json.Marshal(map[string]any{"eventType": "fee", "feeLst": recs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFeePushBatches(t *testing.T) {
	t.Parallel()
	p, err := ParseFeePush(feeBatch(t, MaxFeeRecords))
	if err != nil {
		t.Fatalf("50-record batch: %v", err)
	}
	if len(p.FeeLst) != MaxFeeRecords {
		t.Fatalf("parsed %d records, want %d", len(p.FeeLst), MaxFeeRecords)
	}
	for i, f := range p.FeeLst {
		if want := fmt.Sprintf("1202_%d_0_20190124030424@callenabler246.huaweicaas.com", i); f.SessionID != want {
			t.Fatalf("record %d sessionId = %q", i, f.SessionID)
		}
		if !f.IsClick2Call() || f.TalkTime() != 90*time.Second || f.Outcome() != OutcomeCompleted ||
			f.RecordObjectName != fmt.Sprintf("rec-%d.wav", i) || *f.RecordFlag != 1 {
			t.Fatalf("record %d: click2call %v, talk %v, outcome %s", i, f.IsClick2Call(), f.TalkTime(), f.Outcome())
		}
	}
	assertStableFee(t, feeBatch(t, MaxFeeRecords))

	_, err = ParseFeePush(feeBatch(t, MaxFeeRecords+1))
	if !errors.Is(err, ErrMalformedPush) || !strings.Contains(err.Error(), "feeLst") {
		t.Fatalf("51-record batch: err = %v, want ErrMalformedPush naming feeLst", err)
	}
}

func TestParseFeePushErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, field string }{
		{"not JSON", `{`, "decode"},
		{"no eventType", `{"feeLst":[{"sessionId":"s"}]}`, "eventType"},
		{"status event", `{"eventType":"disconnect","feeLst":[{"sessionId":"s"}]}`, "eventType"},
		{"no feeLst", `{"eventType":"fee"}`, "feeLst"},
		{"empty feeLst", `{"eventType":"fee","feeLst":[]}`, "feeLst"},
		{"record without sessionId", `{"eventType":"fee","feeLst":[{"sessionId":"a"},{"direction":0}]}`, "feeLst[1].sessionId"},
		{"sessionId too long", `{"eventType":"fee","feeLst":[{"sessionId":"` + strings.Repeat("s", 257) + `"}]}`, "feeLst[0].sessionId"},
		{"bad time", `{"eventType":"fee","feeLst":[{"sessionId":"a"},{"sessionId":"b","callEndTime":"2019-01-24T03:04:52Z"}]}`, "feeLst[1].callEndTime"},
		{"number as string", `{"eventType":"fee","feeLst":[{"sessionId":"a","ulFailReason":"514"}]}`, "feeLst[0].ulFailReason"},
		{"record not an object", `{"eventType":"fee","feeLst":[1]}`, "feeLst[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseFeePush([]byte(tt.body))
			if !errors.Is(err, ErrMalformedPush) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("ParseFeePush = %+v, %v; want ErrMalformedPush naming %s", p, err, tt.field)
			}
		})
	}
}

func TestTalkTime(t *testing.T) {
	t.Parallel()
	at := func(s string) PushTime { return PushTime{utc(s)} }
	tests := []struct {
		name string
		f    FeeInfo
		want time.Duration
	}{
		{"notify answered", FeeInfo{ServiceType: "001", CallOutAnswerTime: at("2019-01-24 03:04:31"), CallEndTime: at("2019-01-24 03:04:52")}, 21 * time.Second},
		{"notify unanswered", FeeInfo{ServiceType: "001", CallEndTime: at("2019-01-24 03:04:52")}, 0},
		{"verify without serviceType", FeeInfo{CallOutAnswerTime: at("2019-01-24 03:04:31"), CallEndTime: at("2019-01-24 03:05:31")}, time.Minute},
		{"click2call from fwdAnswerTime", FeeInfo{ServiceType: "002", CallOutAnswerTime: at("2019-01-24 03:04:10"), FwdAnswerTime: at("2019-01-24 03:04:31"), CallEndTime: at("2019-01-24 03:04:52")}, 21 * time.Second},
		{"click2call detected by fwdAnswerTime", FeeInfo{CallOutAnswerTime: at("2019-01-24 03:04:10"), FwdAnswerTime: at("2019-01-24 03:04:31"), CallEndTime: at("2019-01-24 03:04:52")}, 21 * time.Second},
		{"click2call leg B unanswered", FeeInfo{ServiceType: "002", CallOutAnswerTime: at("2019-01-24 03:04:10"), CallEndTime: at("2019-01-24 03:04:52")}, 0},
		{"no end time", FeeInfo{ServiceType: "001", CallOutAnswerTime: at("2019-01-24 03:04:31")}, 0},
		{"end before answer", FeeInfo{ServiceType: "001", CallOutAnswerTime: at("2019-01-24 03:04:31"), CallEndTime: at("2019-01-24 03:04:30")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.f.TalkTime(); got != tt.want {
				t.Fatalf("TalkTime = %v, want %v", got, tt.want)
			}
		})
	}
}

// assertStableStatus: parse → marshal → parse → marshal gives the same bytes.
func assertStableStatus(t testing.TB, body []byte) {
	t.Helper()
	p1, err := ParseStatusPush(body)
	if err != nil {
		return
	}
	b1, err := json.Marshal(p1)
	if err != nil {
		t.Fatalf("marshal %+v: %v", p1, err)
	}
	p2, err := ParseStatusPush(b1)
	if err != nil {
		t.Fatalf("re-parse of %s: %v", b1, err)
	}
	b2, err := json.Marshal(p2)
	if err != nil {
		t.Fatal(err)
	}
	if string(b1) != string(b2) {
		t.Fatalf("unstable round trip:\n%s\n%s", b1, b2)
	}
}

func assertStableFee(t testing.TB, body []byte) {
	t.Helper()
	p1, err := ParseFeePush(body)
	if err != nil {
		return
	}
	b1, err := json.Marshal(p1)
	if err != nil {
		t.Fatalf("marshal %+v: %v", p1, err)
	}
	p2, err := ParseFeePush(b1)
	if err != nil {
		t.Fatalf("re-parse of %s: %v", b1, err)
	}
	b2, err := json.Marshal(p2)
	if err != nil {
		t.Fatal(err)
	}
	if string(b1) != string(b2) {
		t.Fatalf("unstable round trip:\n%s\n%s", b1, b2)
	}
}

func TestVerifyPush(t *testing.T) {
	t.Parallel()
	const pushURL = "https://gw.example.com/callbacks/status"
	now := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	signed := func(nonce, created string, newline bool, secret, url string) http.Header {
		h := http.Header{}
		h.Set(HeaderAuthorization, AuthorizationValue)
		h.Set(HeaderXAKSK, UsernameToken{testAppKey, PushDigest(secret, url, nonce, created, newline), nonce, created}.String())
		return h
	}
	own := http.Header{}
	if err := SignPush(own, pushURL, testAppKey, testAppSecret, now); err != nil {
		t.Fatal(err)
	}
	otherKey := signed("N1", "2024-05-01T08:00:00Z", true, testAppSecret, pushURL)
	otherKey.Set(HeaderXAKSK, strings.Replace(otherKey.Get(HeaderXAKSK), testAppKey, "someoneElse", 1))
	spaced := signed("N1", "2024-05-01T08:00:00Z", true, testAppSecret, pushURL)
	spaced.Set(HeaderXAKSK, strings.ReplaceAll(spaced.Get(HeaderXAKSK), ",", ", "))

	tests := []struct {
		name   string
		h      http.Header
		window time.Duration
		want   error
	}{
		{"SignPush output", own, 0, nil},
		{"newline variant", signed("N1", "2024-05-01T08:00:00Z", true, testAppSecret, pushURL), 0, nil},
		{"concatenated variant", signed("N1", "2024-05-01T08:00:00Z", false, testAppSecret, pushURL), 0, nil},
		{"spaces after commas", spaced, 0, nil},
		{"Created as UTC+8", signed("N1", "2024-05-01T16:00:00Z", true, testAppSecret, pushURL), 0, nil},
		{"Created 4 minutes old", signed("N1", "2024-05-01T07:56:00Z", true, testAppSecret, pushURL), 0, nil},
		{"unsigned", http.Header{}, 0, ErrPushUnsigned},
		{"Authorization only", http.Header{"Authorization": {AuthorizationValue}}, 0, ErrPushUnsigned},
		{"Created stale", signed("N1", "2024-05-01T07:50:00Z", true, testAppSecret, pushURL), 0, ErrPushSignature},
		{"Created stale with narrow window", signed("N1", "2024-05-01T07:59:00Z", true, testAppSecret, pushURL), 30 * time.Second, ErrPushSignature},
		{"Created not UTC layout", signed("N1", "2024-05-01 08:00:00", true, testAppSecret, pushURL), 0, ErrPushSignature},
		{"wrong secret", signed("N1", "2024-05-01T08:00:00Z", true, "other", pushURL), 0, ErrPushSignature},
		{"other URL", signed("N1", "2024-05-01T08:00:00Z", true, testAppSecret, pushURL+"x"), 0, ErrPushSignature},
		{"other app key", otherKey, 0, ErrPushSignature},
		{"malformed", http.Header{"X-Aksk": {"UsernameToken Username=x"}}, 0, ErrPushSignature},
		{"missing nonce", http.Header{"X-Aksk": {`UsernameToken Username="testAppKey",PasswordDigest="x",Created="2024-05-01T08:00:00Z"`}}, 0, ErrPushSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyPush(tt.h, pushURL, testAppKey, testAppSecret, now, tt.window)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("VerifyPush = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), testAppSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
	if own.Get(HeaderAuthorization) != AuthorizationValue {
		t.Fatalf("SignPush Authorization = %q", own.Get(HeaderAuthorization))
	}
}

func BenchmarkParseFeePush(b *testing.B) {
	body := feeBatch(b, MaxFeeRecords)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFeePush(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStatusPush(b *testing.B) {
	body := readTestdata(b, "push_status_disconnect.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseStatusPush(body); err != nil {
			b.Fatal(err)
		}
	}
}
