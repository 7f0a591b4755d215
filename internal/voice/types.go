// Package voice is the Huawei Cloud Voice Call API as voicequeue uses it: typed requests and
// responses, AKSK authentication, the client, the result-code table and its classes, push (status
// and CDR) types and parsers, and the classification of a call's outcome.
//
// The field names, types, lengths and codes follow ../shared/voice-platform-api.md (cited below as
// "ref §N"). The package imports no queue or storage code.
package voice

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// API paths relative to the base URL (ref §1.1). The casing is exact: the platform answers 404 to
// any other spelling.
const (
	PathNotify     = "/rest/httpsessions/callnotify/v2.0"
	PathVerify     = "/rest/httpsessions/callVerify/v1.0"
	PathClick2Call = "/rest/httpsessions/click2Call/v2.0"
	PathCallStop   = "/rest/httpsessions/callStop/v2.0"
	PathRecord     = "/rest/provision/voice/record/v1.0"
)

// ContentType is the request and response content type of every API (ref §1.1).
const ContentType = "application/json;charset=UTF-8"

// Flag is a boolean that the platform encodes as the JSON strings "true" and "false" (ref §4.1).
// With `omitempty` a false Flag is left out, which the platform reads as its documented default
// "false". Decoding accepts only the two strings: a JSON boolean is an invalid request.
type Flag bool

// MarshalJSON encodes the flag as "true" or "false".
func (f Flag) MarshalJSON() ([]byte, error) {
	if f {
		return []byte(`"true"`), nil
	}
	return []byte(`"false"`), nil
}

// UnmarshalJSON accepts only the strings "true" and "false".
func (f *Flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"true"`:
		*f = true
	case `"false"`:
		*f = false
	default:
		return fmt.Errorf("flag must be the string \"true\" or \"false\", got %s", b)
	}
	return nil
}

// EncodedURL holds a plain push URL in Go and travels Base64-encoded (standard alphabet, padded)
// on the wire, as `statusUrl` and `feeUrl` require (ref §8).
type EncodedURL string

// MarshalJSON encodes the URL in Base64.
func (u EncodedURL) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.StdEncoding.EncodeToString([]byte(u)))
}

// UnmarshalJSON decodes a Base64 string; anything else is an error.
func (u *EncodedURL) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("encoded URL must be a string: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("encoded URL is not Base64: %w", err)
	}
	*u = EncodedURL(raw)
	return nil
}

// Encoded returns the wire form (Base64) of the URL.
func (u EncodedURL) Encoded() string { return base64.StdEncoding.EncodeToString([]byte(u)) }

// PlayItem is one element of a notification's `playInfoList` (ref §2.2): exactly one of
// NotifyVoice (an approved wav file) or TemplateID (an approved TTS template with its parameters).
type PlayItem struct {
	NotifyVoice                    string   `json:"notifyVoice,omitempty"`
	TemplateID                     string   `json:"templateId,omitempty"`
	TemplateParas                  []string `json:"templateParas,omitempty"`
	CollectInd                     int      `json:"collectInd,omitempty"`
	ReplayAfterCollection          Flag     `json:"replayAfterCollection,omitempty"`
	CollectContentTriggerReplaying string   `json:"collectContentTriggerReplaying,omitempty"`
}

// NotifyRequest is the body of the voice notification API, `callnotify` (ref §2.1).
type NotifyRequest struct {
	DisplayNbr     string     `json:"displayNbr"`
	CalleeNbr      string     `json:"calleeNbr"`
	PlayInfoList   []PlayItem `json:"playInfoList"`
	StatusURL      EncodedURL `json:"statusUrl,omitempty"`
	FeeURL         EncodedURL `json:"feeUrl,omitempty"`
	ReturnIdlePort Flag       `json:"returnIdlePort,omitempty"`
	UserData       string     `json:"userData,omitempty"`
}

// LanguageChinese is the only `languageType` the verification API supports (ref §3.1).
const LanguageChinese = 2

// VerifyRequest is the body of the voice verification code API, `callVerify` (ref §3.1).
// Times is a pointer because 0 is meaningful (loop until hang-up) and nil means the default, 3.
type VerifyRequest struct {
	DisplayNbr     string     `json:"displayNbr"`
	CalleeNbr      string     `json:"calleeNbr"`
	LanguageType   int        `json:"languageType"`
	PreTone        string     `json:"preTone"`
	VerifyCode     string     `json:"verifyCode"`
	PosTone        string     `json:"posTone,omitempty"`
	Times          *int       `json:"times,omitempty"`
	StatusURL      EncodedURL `json:"statusUrl,omitempty"`
	FeeURL         EncodedURL `json:"feeUrl,omitempty"`
	ReturnIdlePort Flag       `json:"returnIdlePort,omitempty"`
	UserData       string     `json:"userData,omitempty"`
}

// Values of Click2CallRequest.LastMinToUE and CalleeMedia (ref §4.1).
const (
	LastMinToA    = "toa"
	LastMinToB    = "tob"
	LastMinToBoth = "both"

	CalleeMediaAll  = "all"
	CalleeMediaNone = "none"
	CalleeMediaFail = "fail"
)

// Click2CallRequest is the body of the click-to-call API, `click2Call` (ref §4.1): the platform
// rings CallerNbr (leg A) and, once A answers, CalleeNbr (leg B), then bridges them.
type Click2CallRequest struct {
	DisplayNbr                    string     `json:"displayNbr"`
	CallerNbr                     string     `json:"callerNbr"`
	DisplayCalleeNbr              string     `json:"displayCalleeNbr"`
	CalleeNbr                     string     `json:"calleeNbr"`
	MaxDuration                   int        `json:"maxDuration,omitempty"`
	LastMinVoice                  string     `json:"lastMinVoice,omitempty"`
	LastMinToUE                   string     `json:"lastMinToUE,omitempty"`
	PlayPreVoice                  Flag       `json:"playPreVoice,omitempty"`
	PreVoice                      string     `json:"preVoice,omitempty"`
	WaitVoice                     string     `json:"waitVoice,omitempty"`
	CalleeMedia                   string     `json:"calleeMedia,omitempty"`
	StatusURL                     EncodedURL `json:"statusUrl,omitempty"`
	FeeURL                        EncodedURL `json:"feeUrl,omitempty"`
	RecordFlag                    Flag       `json:"recordFlag,omitempty"`
	RecordHintTone                string     `json:"recordHintTone,omitempty"`
	PartyTypeRequiredInDisconnect Flag       `json:"partyTypeRequiredInDisconnect,omitempty"`
	ReturnIdlePort                Flag       `json:"returnIdlePort,omitempty"`
	UserData                      string     `json:"userData,omitempty"`
}

// SignalCallStop is the only `signal` value of callStop (ref §5.1).
const SignalCallStop = "call_stop"

// CallStopRequest is the body of `callStop` (ref §5.1). Note the lower-case `sessionid`.
type CallStopRequest struct {
	SessionID string `json:"sessionid"`
	Signal    string `json:"signal"`
}

// Response is the synchronous reply of every POST API (ref §1.5). ResultCode "0" means accepted.
type Response struct {
	ResultCode string `json:"resultcode"`
	ResultDesc string `json:"resultdesc"`
	SessionID  string `json:"sessionId,omitempty"`
	IdlePort   *int   `json:"idlePort,omitempty"`
}

// CodeSuccess is the result code of an accepted request.
const CodeSuccess = "0"

// EventType is the `eventType` of a status push (ref §6.1), or "fee" for a CDR push (ref §7.1).
type EventType string

// The five status events and the CDR event.
const (
	EventCallout     EventType = "callout"
	EventAlerting    EventType = "alerting"
	EventAnswer      EventType = "answer"
	EventCollectInfo EventType = "collectInfo"
	EventDisconnect  EventType = "disconnect"
	EventFee         EventType = "fee"
)

// StatusPush is the body of a call-status push (ref §6.1).
type StatusPush struct {
	EventType  EventType      `json:"eventType"`
	StatusInfo CallStatusInfo `json:"statusInfo"`
}

// CallStatusInfo is the `statusInfo` of a status push (ref §6.1). Timestamp accepts both documented
// forms (see Timestamp). PartyType's values are undocumented, so it is kept raw.
type CallStatusInfo struct {
	SessionID string          `json:"sessionId"`
	Timestamp Timestamp       `json:"timestamp,omitzero"`
	Caller    string          `json:"caller,omitempty"`
	Called    string          `json:"called,omitempty"`
	StateCode *int            `json:"stateCode,omitempty"`
	StateDesc string          `json:"stateDesc,omitempty"`
	DigitInfo *string         `json:"digitInfo,omitempty"`
	PartyType json.RawMessage `json:"partyType,omitempty"`
	UserData  string          `json:"userData,omitempty"`
}

// FeePush is the body of a CDR push (ref §7.1): 1–50 records.
type FeePush struct {
	EventType EventType `json:"eventType"`
	FeeLst    []FeeInfo `json:"feeLst"`
}

// MaxFeeRecords is the most CDRs one push may carry (ref §7.1).
const MaxFeeRecords = 50

// Service types of a CDR (ref §7.2).
const (
	ServiceTypePlayback = "001" // voice notification and verification code
	ServiceTypeCallback = "002" // click-to-call
)

// FeeInfo is one call detail record (ref §7.2). Times are UTC strings "yyyy-MM-dd HH:mm:ss",
// parsed leniently (see PushTime); an absent time is the zero PushTime.
type FeeInfo struct {
	Direction             int      `json:"direction"`
	SpID                  string   `json:"spId"`
	AppKey                string   `json:"appKey"`
	ICID                  string   `json:"icid,omitempty"`
	BindNum               string   `json:"bindNum"`
	SessionID             string   `json:"sessionId"`
	CallerNum             string   `json:"callerNum"`
	CalleeNum             string   `json:"calleeNum"`
	FwdDisplayNum         string   `json:"fwdDisplayNum,omitempty"`
	FwdDstNum             string   `json:"fwdDstNum,omitempty"`
	CallInTime            PushTime `json:"callInTime,omitzero"`
	FwdStartTime          PushTime `json:"fwdStartTime,omitzero"`
	FwdAlertingTime       PushTime `json:"fwdAlertingTime,omitzero"`
	FwdAnswerTime         PushTime `json:"fwdAnswerTime,omitzero"`
	CallEndTime           PushTime `json:"callEndTime,omitzero"`
	FwdUnaswRsn           *int     `json:"fwdUnaswRsn,omitempty"`
	FailTime              PushTime `json:"failTime,omitzero"`
	ULFailReason          *int     `json:"ulFailReason,omitempty"`
	SIPStatusCode         *int     `json:"sipStatusCode,omitempty"`
	CallOutStartTime      PushTime `json:"callOutStartTime,omitzero"`
	CallOutAlertingTime   PushTime `json:"callOutAlertingTime,omitzero"`
	CallOutAnswerTime     PushTime `json:"callOutAnswerTime,omitzero"`
	CallOutUnaswRsn       *int     `json:"callOutUnaswRsn,omitempty"`
	DynIVRStartTime       PushTime `json:"dynIVRStartTime,omitzero"`
	DynIVRPath            string   `json:"dynIVRPath,omitempty"`
	RecordFlag            *int     `json:"recordFlag,omitempty"`
	RecordStartTime       PushTime `json:"recordStartTime,omitzero"`
	RecordObjectName      string   `json:"recordObjectName,omitempty"`
	RecordBucketName      string   `json:"recordBucketName,omitempty"`
	RecordDomain          string   `json:"recordDomain,omitempty"`
	RecordFileDownloadURL string   `json:"recordFileDownloadUrl,omitempty"`
	TTSPlayTimes          *int     `json:"ttsPlayTimes,omitempty"`
	TTSTransDuration      *int     `json:"ttsTransDuration,omitempty"`
	ServiceType           string   `json:"serviceType,omitempty"`
	HostName              string   `json:"hostName,omitempty"`
	UserData              string   `json:"userData,omitempty"`
}

// Outcome is what became of a call, derived from the codes of its pushes (ref §10.4).
type Outcome string

// The outcomes of a call.
const (
	OutcomeCompleted       Outcome = "completed"
	OutcomeBusy            Outcome = "busy"
	OutcomeNoAnswer        Outcome = "no_answer"
	OutcomeRejected        Outcome = "rejected"
	OutcomeInvalidNumber   Outcome = "invalid_number"
	OutcomeUnreachable     Outcome = "unreachable"
	OutcomeNetworkFailure  Outcome = "network_failure"
	OutcomeBarred          Outcome = "barred"
	OutcomePlatformPolicy  Outcome = "platform_policy"
	OutcomePlaybackFailure Outcome = "playback_failure"
)

// Class is what a sender should do with the reply to a request (ref §9).
type Class string

// The classes of a reply.
const (
	ClassAccepted  Class = "accepted"  // resultcode "0": the call was placed; the outcome comes by push
	ClassRate      Class = "rate"      // quota, flow control, ports: back off and reduce the rate
	ClassTransient Class = "transient" // platform trouble: retry later with backoff
	ClassPermanent Class = "permanent" // the request is wrong: never retry it as is
	ClassAccount   Class = "account"   // arrears, frozen, app or number suspended: stop and alert
	ClassAmbiguous Class = "ambiguous" // sent, but no reply: the call may have been placed
)
