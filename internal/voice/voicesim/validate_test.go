package voicesim

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// b64 is the wire form of a push URL.
func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{
		DisplayNumbers: []string{testDisplay},
		Templates: map[string]string{
			"tpl1": "您的验证码${NUM_4}",
			"tpl4": "您的订单${NUM_4}已于${DATE} ${TIME}发货,${TXT_5}",
		},
	})
	good := map[string]any{
		voice.PathNotify:     notifyReq("+8613800000001", nil),
		voice.PathVerify:     verifyReq("+8613800000001", nil),
		voice.PathClick2Call: click2CallReq("+8613800000001", nil),
	}
	notifyTemplate := func(m map[string]any) {
		m["playInfoList"] = []any{map[string]any{"templateId": "tpl4", "templateParas": []string{"1234", "2024/05/01", "08:30", "abc"}}}
	}
	long := strings.Repeat("x", 257)
	tests := []struct {
		name     string
		path     string
		mutate   func(m map[string]any)
		raw      string // body sent as is instead of a mutated good body
		wantCode string
		wantDesc string // "" = the code table's text
	}{
		{name: "notify valid", path: voice.PathNotify, mutate: func(map[string]any) {}, wantCode: "0"},
		{name: "notify valid template", path: voice.PathNotify, mutate: notifyTemplate, wantCode: "0"},
		{name: "notify valid wav with collection", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"notifyVoice": "a.wav", "collectInd": 32, "replayAfterCollection": "true", "collectContentTriggerReplaying": "1"}}
		}, wantCode: "0"},
		{name: "not JSON", path: voice.PathNotify, raw: "{", wantCode: "1010002", wantDesc: "Invalid request."},
		{name: "JSON array", path: voice.PathNotify, raw: "[]", wantCode: "1010002", wantDesc: "Invalid request."},
		{name: "displayNbr missing", path: voice.PathNotify, mutate: func(m map[string]any) { delete(m, "displayNbr") }, wantCode: "1010002", wantDesc: "Invalid request. displayNbr"},
		{name: "displayNbr not an app number", path: voice.PathNotify, mutate: func(m map[string]any) { m["displayNbr"] = "+8675500000009" }, wantCode: "1010023"},
		{name: "displayNbr malformed", path: voice.PathNotify, mutate: func(m map[string]any) { m["displayNbr"] = "075500000001" }, wantCode: "1010023"},
		{name: "displayNbr wrong type", path: voice.PathNotify, mutate: func(m map[string]any) { m["displayNbr"] = 8675500000001 }, wantCode: "1010002", wantDesc: "Invalid request. displayNbr"},
		{name: "calleeNbr missing", path: voice.PathNotify, mutate: func(m map[string]any) { delete(m, "calleeNbr") }, wantCode: "1010002", wantDesc: "Invalid request. calleeNbr"},
		{name: "calleeNbr without plus", path: voice.PathNotify, mutate: func(m map[string]any) { m["calleeNbr"] = "8613800000001" }, wantCode: "1010002", wantDesc: "Invalid request. calleeNbr"},
		{name: "calleeNbr too long", path: voice.PathNotify, mutate: func(m map[string]any) { m["calleeNbr"] = "+" + strings.Repeat("1", 31) }, wantCode: "1010002", wantDesc: "Invalid request. calleeNbr"},
		{name: "field names are case-sensitive", path: voice.PathNotify, mutate: func(m map[string]any) { m["CalleeNbr"] = m["calleeNbr"]; delete(m, "calleeNbr") }, wantCode: "1010002", wantDesc: "Invalid request. calleeNbr"},
		{name: "playInfoList missing", path: voice.PathNotify, mutate: func(m map[string]any) { delete(m, "playInfoList") }, wantCode: "1010002", wantDesc: "Invalid request. playInfoList"},
		{name: "playInfoList empty", path: voice.PathNotify, mutate: func(m map[string]any) { m["playInfoList"] = []any{} }, wantCode: "1010002", wantDesc: "Invalid request. playInfoList"},
		{name: "playInfoList of six", path: voice.PathNotify, mutate: func(m map[string]any) {
			item := map[string]any{"notifyVoice": "a.wav"}
			m["playInfoList"] = []any{item, item, item, item, item, item}
		}, wantCode: "1010002", wantDesc: "Invalid request. playInfoList"},
		{name: "play item with both file and template", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"notifyVoice": "a.wav", "templateId": "tpl4"}}
		}, wantCode: "1010002", wantDesc: "Invalid request. playInfoList[0]"},
		{name: "play item with neither", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"notifyVoice": "a.wav"}, map[string]any{"collectInd": 1}}
		}, wantCode: "1010002", wantDesc: "Invalid request. playInfoList[1]"},
		{name: "collectInd 33", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"notifyVoice": "a.wav", "collectInd": 33}}
		}, wantCode: "1010002", wantDesc: "Invalid request. playInfoList[0].collectInd"},
		{name: "replay flag as JSON boolean", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"notifyVoice": "a.wav", "replayAfterCollection": true}}
		}, wantCode: "1010002", wantDesc: "Invalid request. playInfoList[0].replayAfterCollection"},
		{name: "unknown template", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"templateId": "nope"}}
		}, wantCode: "1012003"},
		{name: "template parameter count", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"templateId": "tpl4", "templateParas": []string{"1234"}}}
		}, wantCode: "1012004"},
		{name: "template NUM parameter with letters", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"templateId": "tpl4", "templateParas": []string{"12a4", "2024/05/01", "08:30", "abc"}}}
		}, wantCode: "1012005", wantDesc: "${NUM_4} of templateParas does not meet template"},
		{name: "template DATE parameter", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"templateId": "tpl4", "templateParas": []string{"1234", "2024-05-01", "08:30", "abc"}}}
		}, wantCode: "1012005", wantDesc: "${DATE} of templateParas does not meet template"},
		{name: "template TXT parameter too long", path: voice.PathNotify, mutate: func(m map[string]any) {
			m["playInfoList"] = []any{map[string]any{"templateId": "tpl4", "templateParas": []string{"1234", "2024/05/01", "08:30", "abcdef"}}}
		}, wantCode: "1012005", wantDesc: "${TXT_5} of templateParas does not meet template"},
		{name: "statusUrl not Base64", path: voice.PathNotify, mutate: func(m map[string]any) { m["statusUrl"] = "http://example.com/status" }, wantCode: "1010002", wantDesc: "Invalid request. statusUrl"},
		{name: "statusUrl not http", path: voice.PathNotify, mutate: func(m map[string]any) { m["statusUrl"] = b64("ftp://example.com/status") }, wantCode: "1010002", wantDesc: "Invalid request. statusUrl"},
		{name: "feeUrl with a character outside the allowed set", path: voice.PathNotify, mutate: func(m map[string]any) { m["feeUrl"] = b64("https://example.com/fee?token=abc") }, wantCode: "1010002", wantDesc: "Invalid request. feeUrl"},
		{name: "feeUrl too long when encoded", path: voice.PathNotify, mutate: func(m map[string]any) { m["feeUrl"] = b64("https://example.com/" + strings.Repeat("f", 90)) }, wantCode: "1010002", wantDesc: "Invalid request. feeUrl"},
		{name: "returnIdlePort not a flag", path: voice.PathNotify, mutate: func(m map[string]any) { m["returnIdlePort"] = "yes" }, wantCode: "1010002", wantDesc: "Invalid request. returnIdlePort"},
		{name: "userData with braces", path: voice.PathNotify, mutate: func(m map[string]any) { m["userData"] = "{job}" }, wantCode: "1010002", wantDesc: "Invalid request. userData"},
		{name: "userData too long", path: voice.PathNotify, mutate: func(m map[string]any) { m["userData"] = long }, wantCode: "1010002", wantDesc: "Invalid request. userData"},
		{name: "userData empty", path: voice.PathNotify, mutate: func(m map[string]any) { m["userData"] = "" }, wantCode: "1010002", wantDesc: "Invalid request. userData"},
		{name: "unknown fields ignored", path: voice.PathNotify, mutate: func(m map[string]any) { m["bindNbr"] = "+8675500000001" }, wantCode: "0"},

		{name: "verify valid", path: voice.PathVerify, mutate: func(map[string]any) {}, wantCode: "0"},
		{name: "verify languageType 1", path: voice.PathVerify, mutate: func(m map[string]any) { m["languageType"] = 1 }, wantCode: "1010002", wantDesc: "Invalid request. languageType"},
		{name: "verify languageType as string", path: voice.PathVerify, mutate: func(m map[string]any) { m["languageType"] = "2" }, wantCode: "1010002", wantDesc: "Invalid request. languageType"},
		{name: "verify preTone missing", path: voice.PathVerify, mutate: func(m map[string]any) { delete(m, "preTone") }, wantCode: "1010002", wantDesc: "Invalid request. preTone"},
		{name: "verify code with a letter", path: voice.PathVerify, mutate: func(m map[string]any) { m["verifyCode"] = "12a4" }, wantCode: "1010022"},
		{name: "verify code of one digit", path: voice.PathVerify, mutate: func(m map[string]any) { m["verifyCode"] = "1" }, wantCode: "1010022"},
		{name: "verify code of nine digits", path: voice.PathVerify, mutate: func(m map[string]any) { m["verifyCode"] = "123456789" }, wantCode: "1010022"},
		{name: "verify code missing", path: voice.PathVerify, mutate: func(m map[string]any) { delete(m, "verifyCode") }, wantCode: "1010002", wantDesc: "Invalid request. verifyCode"},
		{name: "verify times 10", path: voice.PathVerify, mutate: func(m map[string]any) { m["times"] = 10 }, wantCode: "1010002", wantDesc: "Invalid request. times"},
		{name: "verify times 0", path: voice.PathVerify, mutate: func(m map[string]any) { m["times"] = 0 }, wantCode: "0"},
		{name: "verify times fractional", path: voice.PathVerify, mutate: func(m map[string]any) { m["times"] = 1.5 }, wantCode: "1010002", wantDesc: "Invalid request. times"},

		{name: "click2call valid", path: voice.PathClick2Call, mutate: func(map[string]any) {}, wantCode: "0"},
		{name: "click2call callerNbr malformed", path: voice.PathClick2Call, mutate: func(m map[string]any) { m["callerNbr"] = "13700000001" }, wantCode: "1010024"},
		{name: "click2call callerNbr missing", path: voice.PathClick2Call, mutate: func(m map[string]any) { delete(m, "callerNbr") }, wantCode: "1010002", wantDesc: "Invalid request. callerNbr"},
		{name: "click2call displayCalleeNbr missing", path: voice.PathClick2Call, mutate: func(m map[string]any) { delete(m, "displayCalleeNbr") }, wantCode: "1010002", wantDesc: "Invalid request. displayCalleeNbr"},
		{name: "click2call displayCalleeNbr not an app number", path: voice.PathClick2Call, mutate: func(m map[string]any) { m["displayCalleeNbr"] = "+8613800000002" }, wantCode: "1010023"},
		{name: "click2call maxDuration 1441", path: voice.PathClick2Call, mutate: func(m map[string]any) { m["maxDuration"] = 1441 }, wantCode: "1010002", wantDesc: "Invalid request. maxDuration"},
		{name: "click2call lastMinToUE", path: voice.PathClick2Call, mutate: func(m map[string]any) { m["lastMinToUE"] = "toc" }, wantCode: "1010002", wantDesc: "Invalid request. lastMinToUE"},
		{name: "click2call calleeMedia", path: voice.PathClick2Call, mutate: func(m map[string]any) { m["calleeMedia"] = "some" }, wantCode: "1010002", wantDesc: "Invalid request. calleeMedia"},
		{name: "click2call recording not enabled", path: voice.PathClick2Call, mutate: func(m map[string]any) { m["recordFlag"] = "true" }, wantCode: "1012012"},
		{name: "click2call recordFlag false", path: voice.PathClick2Call, mutate: func(m map[string]any) { m["recordFlag"] = "false" }, wantCode: "0"},

		{name: "callStop signal wrong", path: voice.PathCallStop, raw: `{"sessionid":"x","signal":"stop"}`, wantCode: "1010002", wantDesc: "Invalid request. signal"},
		{name: "callStop camel-case sessionId", path: voice.PathCallStop, raw: `{"sessionId":"x","signal":"call_stop"}`, wantCode: "1010002", wantDesc: "Invalid request. sessionid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body any = tt.raw
			if tt.raw == "" {
				m := toMap(t, good[tt.path])
				tt.mutate(m)
				body = m
			}
			r := e.do(t, http.MethodPost, tt.path, body)
			if r.resp.ResultCode != tt.wantCode {
				t.Fatalf("resultcode %q (%q), want %q", r.resp.ResultCode, r.resp.ResultDesc, tt.wantCode)
			}
			info, _ := voice.LookupCode(tt.wantCode)
			if r.status != info.HTTPStatus {
				t.Errorf("HTTP %d, want %d", r.status, info.HTTPStatus)
			}
			want := tt.wantDesc
			if want == "" {
				want = info.Desc
			}
			if r.resp.ResultDesc != want {
				t.Errorf("resultdesc %q, want %q", r.resp.ResultDesc, want)
			}
		})
	}
}

func TestValidationContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	r := e.doWith(t, http.MethodPost, voice.PathNotify, notifyReq("+8613800000001", nil), func(h http.Header) {
		sign(h, testKey, testSecret, e.clock.Now())
		h.Set("Content-Type", "text/plain")
	})
	if r.resp.ResultCode != "1010002" || r.resp.ResultDesc != "Invalid request. Content-Type" {
		t.Fatalf("got %+v, want 1010002 naming Content-Type", r.resp)
	}
}

func TestParseTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text    string
		want    []string
		wantErr bool
	}{
		{text: "您好${TXT_10},验证码${NUM_6},${DATE},${TIME}", want: []string{"${TXT_10}", "${NUM_6}", "${DATE}", "${TIME}"}},
		{text: "无变量", want: nil},
		{text: "${TXT_33}", wantErr: true},
		{text: "${FOO}", wantErr: true},
		{text: "${NUM_x}", wantErr: true},
		{text: strings.Repeat("a", 901), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.text[:min(len(tt.text), 20)], func(t *testing.T) {
			t.Parallel()
			vars, err := parseTemplate(tt.text)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var got []string
			for _, v := range vars {
				got = append(got, v.placeholder)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("vars %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzParseBodies feeds arbitrary bodies to every body parser: none may panic, and whatever they
// accept must carry well-formed numbers.
func FuzzParseBodies(f *testing.F) {
	f.Add([]byte(`{"displayNbr":"+8675500000001","calleeNbr":"+8613800000001","playInfoList":[{"templateId":"t","templateParas":["1"]}]}`))
	f.Add([]byte(`{"displayNbr":"+8675500000001","calleeNbr":"+8613800000001","languageType":2,"preTone":"a.wav","verifyCode":"1234","times":0}`))
	f.Add([]byte(`{"displayNbr":"+8675500000001","callerNbr":"+8613700000001","displayCalleeNbr":"+8675500000001","calleeNbr":"+8613800000001","statusUrl":"aHR0cDovL2EvYg=="}`))
	f.Add([]byte(`{"sessionid":"x","signal":"call_stop"}`))
	sim, err := New(Config{AppKey: testKey, AppSecret: testSecret, RecordingEnabled: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = sim.Close() })
	f.Fuzz(func(t *testing.T, body []byte) {
		if req, rej := sim.parseNotify(body); rej == nil && (!wellFormedNumber(req.CalleeNbr) || len(req.PlayInfoList) == 0) {
			t.Fatalf("accepted a bad notify: %+v", req)
		}
		if req, rej := sim.parseVerify(body); rej == nil && !verifyCodeRE.MatchString(req.VerifyCode) {
			t.Fatalf("accepted a bad verify: %+v", req)
		}
		if req, rej := sim.parseClick2Call(body); rej == nil && !wellFormedNumber(req.CallerNbr) {
			t.Fatalf("accepted a bad click2call: %+v", req)
		}
		if req, rej := parseCallStop(body); rej == nil && req.Signal != voice.SignalCallStop {
			t.Fatalf("accepted a bad callStop: %+v", req)
		}
	})
}
