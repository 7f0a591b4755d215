package voice

import (
	"errors"
	"strings"
	"testing"
)

func intPtr(v int) *int { return &v }

// wantField runs Validate and checks the field named by the error ("" = valid).
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("Validate = %v, want nil", err)
		}
		return
	}
	var valErr *ValidationError
	if !errors.As(err, &valErr) {
		t.Fatalf("Validate = %v, want a *ValidationError on %s", err, field)
	}
	if valErr.Field != field {
		t.Fatalf("Validate failed on %s (%s), want %s", valErr.Field, valErr.Reason, field)
	}
	if !strings.Contains(err.Error(), field) {
		t.Fatalf("Error() %q does not name %s", err.Error(), field)
	}
	if ClassOf(err) != ClassPermanent {
		t.Fatalf("ClassOf = %s, want permanent", ClassOf(err))
	}
}

func TestNotifyValidate(t *testing.T) {
	t.Parallel()
	item := func(mod func(*PlayItem)) func(*NotifyRequest) {
		return func(r *NotifyRequest) {
			p := PlayItem{TemplateID: "abc123"}
			mod(&p)
			r.PlayInfoList = []PlayItem{{NotifyVoice: "a.wav"}, {NotifyVoice: "b.wav"}, p}
		}
	}
	tests := []struct {
		name  string
		mod   func(*NotifyRequest)
		field string
	}{
		{"valid", func(*NotifyRequest) {}, ""},
		{"valid 5 items mixed", func(r *NotifyRequest) {
			r.PlayInfoList = []PlayItem{{NotifyVoice: "a.wav"}, {TemplateID: "t"}, {NotifyVoice: "b.wav"}, {TemplateID: "t2", TemplateParas: []string{"1", "2024/05/01"}}, {NotifyVoice: "c.wav", CollectInd: 1, ReplayAfterCollection: true, CollectContentTriggerReplaying: "1"}}
		}, ""},
		{"valid push URLs and userData", func(r *NotifyRequest) {
			r.StatusURL = "https://gw.example.com:9330/callbacks/status"
			r.FeeURL = "http://10.0.0.1/fee?a&b#x"
			r.UserData = strings.Repeat("a", 256)
		}, ""},
		{"displayNbr missing", func(r *NotifyRequest) { r.DisplayNbr = "" }, "displayNbr"},
		{"displayNbr without plus", func(r *NotifyRequest) { r.DisplayNbr = "8675500000001" }, "displayNbr"},
		{"calleeNbr too short", func(r *NotifyRequest) { r.CalleeNbr = "+86" }, "calleeNbr"},
		{"calleeNbr shortest", func(r *NotifyRequest) { r.CalleeNbr = "+861" }, ""},
		{"calleeNbr longest", func(r *NotifyRequest) { r.CalleeNbr = "+" + strings.Repeat("8", 30) }, ""},
		{"calleeNbr too long", func(r *NotifyRequest) { r.CalleeNbr = "+" + strings.Repeat("8", 31) }, "calleeNbr"},
		{"calleeNbr masked", func(r *NotifyRequest) { r.CalleeNbr = "+86138****0002" }, "calleeNbr"},
		{"calleeNbr country code 0", func(r *NotifyRequest) { r.CalleeNbr = "+08613800000002" }, "calleeNbr"},
		{"no play items", func(r *NotifyRequest) { r.PlayInfoList = nil }, "playInfoList"},
		{"six play items", func(r *NotifyRequest) { r.PlayInfoList = make([]PlayItem, 6) }, "playInfoList"},
		{"item with neither", item(func(p *PlayItem) { p.TemplateID = "" }), "playInfoList[2].templateId"},
		{"item with both", item(func(p *PlayItem) { p.NotifyVoice = "a.wav" }), "playInfoList[2].notifyVoice"},
		{"templateId 32", item(func(p *PlayItem) { p.TemplateID = strings.Repeat("t", 32) }), ""},
		{"templateId 33", item(func(p *PlayItem) { p.TemplateID = strings.Repeat("t", 33) }), "playInfoList[2].templateId"},
		{"notifyVoice 128", item(func(p *PlayItem) { p.TemplateID = ""; p.NotifyVoice = strings.Repeat("v", 124) + ".wav" }), ""},
		{"notifyVoice 129", item(func(p *PlayItem) { p.TemplateID = ""; p.NotifyVoice = strings.Repeat("v", 125) + ".wav" }), "playInfoList[2].notifyVoice"},
		{"params with file", item(func(p *PlayItem) { p.TemplateID = ""; p.NotifyVoice = "a.wav"; p.TemplateParas = []string{"1"} }), "playInfoList[2].templateParas"},
		{"param 33 bytes", item(func(p *PlayItem) { p.TemplateParas = []string{"ok", strings.Repeat("x", 33)} }), "playInfoList[2].templateParas[1]"},
		{"collectInd 32", item(func(p *PlayItem) { p.CollectInd = 32 }), ""},
		{"collectInd 33", item(func(p *PlayItem) { p.CollectInd = 33 }), "playInfoList[2].collectInd"},
		{"collectInd negative", item(func(p *PlayItem) { p.CollectInd = -1 }), "playInfoList[2].collectInd"},
		{"replay without collection", item(func(p *PlayItem) { p.ReplayAfterCollection = true }), "playInfoList[2].replayAfterCollection"},
		{"trigger without replay", item(func(p *PlayItem) { p.CollectInd = 1; p.CollectContentTriggerReplaying = "1" }), "playInfoList[2].collectContentTriggerReplaying"},
		{"trigger 2 digits", item(func(p *PlayItem) {
			p.CollectInd = 2
			p.ReplayAfterCollection = true
			p.CollectContentTriggerReplaying = "11"
		}), ""},
		{"trigger longer than collectInd", item(func(p *PlayItem) {
			p.CollectInd = 1
			p.ReplayAfterCollection = true
			p.CollectContentTriggerReplaying = "11"
		}), "playInfoList[2].collectContentTriggerReplaying"},
		{"trigger 33", item(func(p *PlayItem) {
			p.CollectInd = 32
			p.ReplayAfterCollection = true
			p.CollectContentTriggerReplaying = strings.Repeat("1", 33)
		}), "playInfoList[2].collectContentTriggerReplaying"},
		{"trigger not DTMF", item(func(p *PlayItem) {
			p.CollectInd = 1
			p.ReplayAfterCollection = true
			p.CollectContentTriggerReplaying = "a"
		}), "playInfoList[2].collectContentTriggerReplaying"},
		{"userData 257", func(r *NotifyRequest) { r.UserData = strings.Repeat("a", 257) }, "userData"},
		{"userData brace", func(r *NotifyRequest) { r.UserData = "order-{42}" }, "userData"},
		{"userData Chinese", func(r *NotifyRequest) { r.UserData = "订单42" }, "userData"},
		{"userData newline", func(r *NotifyRequest) { r.UserData = "a\nb" }, "userData"},
		{"statusUrl ftp", func(r *NotifyRequest) { r.StatusURL = "ftp://gw.example.com/s" }, "statusUrl"},
		{"statusUrl relative", func(r *NotifyRequest) { r.StatusURL = "/callbacks/status" }, "statusUrl"},
		{"statusUrl percent", func(r *NotifyRequest) { r.StatusURL = "https://gw.example.com/a%20b" }, "statusUrl"},
		{"statusUrl equals", func(r *NotifyRequest) { r.StatusURL = "https://gw.example.com/s?token=x" }, "statusUrl"},
		{"statusUrl tilde", func(r *NotifyRequest) { r.StatusURL = "https://gw.example.com/~u" }, "statusUrl"},
		{"statusUrl space", func(r *NotifyRequest) { r.StatusURL = " https://gw.example.com/s" }, "statusUrl"},
		{"statusUrl 96 bytes", func(r *NotifyRequest) {
			r.StatusURL = EncodedURL("https://gw.example.com/" + strings.Repeat("s", 96-23))
		}, ""},
		{"statusUrl 97 bytes", func(r *NotifyRequest) {
			r.StatusURL = EncodedURL("https://gw.example.com/" + strings.Repeat("s", 97-23))
		}, "statusUrl"},
		{"feeUrl no host", func(r *NotifyRequest) { r.FeeURL = "https:///fee" }, "feeUrl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := validNotify()
			tt.mod(r)
			wantField(t, r.Validate(), tt.field)
		})
	}
	wantField(t, (*NotifyRequest)(nil).Validate(), "body")
}

func TestVerifyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mod   func(*VerifyRequest)
		field string
	}{
		{"valid", func(*VerifyRequest) {}, ""},
		{"valid all options", func(r *VerifyRequest) {
			r.PosTone = "bye.wav"
			r.Times = intPtr(0)
			r.StatusURL = "https://gw.example.com/s"
			r.FeeURL = "https://gw.example.com/f"
			r.ReturnIdlePort = true
			r.UserData = "job-1"
		}, ""},
		{"calleeNbr letters", func(r *VerifyRequest) { r.CalleeNbr = "+86138abc0002" }, "calleeNbr"},
		{"languageType unset", func(r *VerifyRequest) { r.LanguageType = 0 }, "languageType"},
		{"languageType 1", func(r *VerifyRequest) { r.LanguageType = 1 }, "languageType"},
		{"preTone missing", func(r *VerifyRequest) { r.PreTone = "" }, "preTone"},
		{"preTone 129", func(r *VerifyRequest) { r.PreTone = strings.Repeat("p", 129) }, "preTone"},
		{"posTone 129", func(r *VerifyRequest) { r.PosTone = strings.Repeat("p", 129) }, "posTone"},
		{"code 2 digits", func(r *VerifyRequest) { r.VerifyCode = "12" }, ""},
		{"code 8 digits", func(r *VerifyRequest) { r.VerifyCode = "12345678" }, ""},
		{"code 1 digit", func(r *VerifyRequest) { r.VerifyCode = "1" }, "verifyCode"},
		{"code 9 digits", func(r *VerifyRequest) { r.VerifyCode = "123456789" }, "verifyCode"},
		{"code letter", func(r *VerifyRequest) { r.VerifyCode = "12a4" }, "verifyCode"},
		{"code trailing newline", func(r *VerifyRequest) { r.VerifyCode = "1234\n" }, "verifyCode"},
		{"code full-width digits", func(r *VerifyRequest) { r.VerifyCode = "１２３４" }, "verifyCode"},
		{"times 9", func(r *VerifyRequest) { r.Times = intPtr(9) }, ""},
		{"times 10", func(r *VerifyRequest) { r.Times = intPtr(10) }, "times"},
		{"times negative", func(r *VerifyRequest) { r.Times = intPtr(-1) }, "times"},
		{"feeUrl bad", func(r *VerifyRequest) { r.FeeURL = "gw.example.com/f" }, "feeUrl"},
		{"userData brace", func(r *VerifyRequest) { r.UserData = "}" }, "userData"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := validVerify()
			tt.mod(r)
			wantField(t, r.Validate(), tt.field)
		})
	}
}

func TestClick2CallValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		mod   func(*Click2CallRequest)
		field string
	}{
		{"valid", func(*Click2CallRequest) {}, ""},
		{"valid every option", func(r *Click2CallRequest) { *r = *fullClick2Call() }, ""},
		{"displayNbr missing", func(r *Click2CallRequest) { r.DisplayNbr = "" }, "displayNbr"},
		{"callerNbr bad", func(r *Click2CallRequest) { r.CallerNbr = "13700000001" }, "callerNbr"},
		{"displayCalleeNbr missing", func(r *Click2CallRequest) { r.DisplayCalleeNbr = "" }, "displayCalleeNbr"},
		{"calleeNbr missing", func(r *Click2CallRequest) { r.CalleeNbr = "" }, "calleeNbr"},
		{"maxDuration 1440", func(r *Click2CallRequest) { r.MaxDuration = 1440 }, ""},
		{"maxDuration 1441", func(r *Click2CallRequest) { r.MaxDuration = 1441 }, "maxDuration"},
		{"maxDuration negative", func(r *Click2CallRequest) { r.MaxDuration = -1 }, "maxDuration"},
		{"lastMinVoice without maxDuration", func(r *Click2CallRequest) { r.LastMinVoice = "min.wav" }, "lastMinVoice"},
		{"lastMinToUE without maxDuration", func(r *Click2CallRequest) { r.LastMinToUE = LastMinToA }, "lastMinToUE"},
		{"lastMinToUE bad", func(r *Click2CallRequest) { r.MaxDuration = 5; r.LastMinToUE = "toc" }, "lastMinToUE"},
		{"lastMinToUE tob", func(r *Click2CallRequest) { r.MaxDuration = 5; r.LastMinToUE = LastMinToB }, ""},
		{"preVoice without playPreVoice", func(r *Click2CallRequest) { r.PreVoice = "pre.wav" }, "preVoice"},
		{"playPreVoice default prompt", func(r *Click2CallRequest) { r.PlayPreVoice = true }, ""},
		{"waitVoice 129", func(r *Click2CallRequest) { r.WaitVoice = strings.Repeat("w", 129) }, "waitVoice"},
		{"calleeMedia none", func(r *Click2CallRequest) { r.CalleeMedia = CalleeMediaNone }, ""},
		{"calleeMedia bad", func(r *Click2CallRequest) { r.CalleeMedia = "some" }, "calleeMedia"},
		{"recordHintTone without recordFlag", func(r *Click2CallRequest) { r.RecordHintTone = "rec.wav" }, "recordHintTone"},
		{"statusUrl bad", func(r *Click2CallRequest) { r.StatusURL = "https://gw.example.com/s=1" }, "statusUrl"},
		{"userData 257", func(r *Click2CallRequest) { r.UserData = strings.Repeat("u", 257) }, "userData"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := validClick2Call()
			tt.mod(r)
			wantField(t, r.Validate(), tt.field)
		})
	}
}

func TestCallStopValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		req   *CallStopRequest
		field string
	}{
		{"valid", &CallStopRequest{SessionID: "s", Signal: SignalCallStop}, ""},
		{"sessionid 256", &CallStopRequest{SessionID: strings.Repeat("s", 256), Signal: SignalCallStop}, ""},
		{"sessionid 257", &CallStopRequest{SessionID: strings.Repeat("s", 257), Signal: SignalCallStop}, "sessionid"},
		{"sessionid missing", &CallStopRequest{Signal: SignalCallStop}, "sessionid"},
		{"signal wrong", &CallStopRequest{SessionID: "s", Signal: "stop"}, "signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantField(t, tt.req.Validate(), tt.field)
		})
	}
}
