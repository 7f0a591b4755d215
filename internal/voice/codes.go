package voice

import "net/http"

// CodeInfo is one row of the result-code table (ref §9): the code, the HTTP status the platform
// answers it with, its `resultdesc`, and the class that decides what a sender does next.
type CodeInfo struct {
	Code       string
	HTTPStatus int
	Desc       string
	Class      Class
}

// Result codes that the client, the simulator or the tests name directly.
const (
	CodeAuthFailed        = "1023006"
	CodeInternal          = "1010001"
	CodeInvalidRequest    = "1010002"
	CodeInvalidAppKey     = "1010003"
	CodeInvalidRestAPI    = "1010006"
	CodeAccountInactive   = "1010007"
	CodeAppUnavailable    = "1010008"
	CodeAPIQuota          = "1010009"
	CodeFlowControl       = "1010010"
	CodeTimeOutLimit      = "1010013"
	CodeInvalidVerifyCode = "1010022"
	CodeInvalidDisplayNbr = "1010023"
	CodeInvalidCallerNbr  = "1010024"
	CodeRecordingOff      = "1012012"
	CodeSPCallLimit       = "1013001"
	CodeRecordNotFound    = "1016001"
	CodeInternalError     = "1020002"
	CodePortsExhausted    = "1020165"
)

// codeTable is the one place where a result code gets its class (ref §9.1–§9.5). HTTP statuses
// marked ◐ in the reference use its best reading; the client decides on the code, never on the
// status, except for codes that are not in this table (see Classify).
var codeTable = []CodeInfo{
	{CodeSuccess, http.StatusOK, "Success", ClassAccepted},

	// §9.1 authentication header errors.
	{CodeAuthFailed, http.StatusBadRequest, "Authorization not contained in the HTTP header.", ClassPermanent},
	{"1023007", http.StatusBadRequest, "realm not contained in Authorization.", ClassPermanent},
	{"1023008", http.StatusBadRequest, "profile not contained in Authorization.", ClassPermanent},
	{"1023009", http.StatusBadRequest, "The value of realm in Authorization must be SDP.", ClassPermanent},
	{"1023010", http.StatusBadRequest, "The value of profile in Authorization must be UsernameToken.", ClassPermanent},
	{"1023011", http.StatusBadRequest, "The value of type in Authorization must be app_key.", ClassPermanent},
	{"1023012", http.StatusBadRequest, "type not contained in Authorization.", ClassPermanent},
	{"1023033", http.StatusBadRequest, "HTTP header not found X-AKSK field.", ClassPermanent},
	{"1023034", http.StatusBadRequest, "UserName not contained in X-AKSK.", ClassPermanent},
	{"1023035", http.StatusBadRequest, "Nonce not contained in X-AKSK.", ClassPermanent},
	{"1023036", http.StatusBadRequest, "Created not contained in X-AKSK.", ClassPermanent},

	// §9.2 platform, account and request errors.
	{CodeInternal, http.StatusInternalServerError, "Internal system error.", ClassTransient},
	{CodeInvalidRequest, http.StatusBadRequest, "Invalid request.", ClassPermanent},
	{CodeInvalidAppKey, http.StatusBadRequest, "Invalid app_key.", ClassPermanent},
	{CodeInvalidRestAPI, http.StatusBadRequest, "Invalid Rest API.", ClassPermanent},
	{CodeAccountInactive, http.StatusForbidden, "The user status is not ACTIVATING.", ClassAccount},
	{CodeAppUnavailable, http.StatusForbidden, "The app_key is unavailable.", ClassAccount},
	{CodeAPIQuota, http.StatusForbidden, "No more APIs can be invoked.", ClassRate},
	{CodeFlowControl, http.StatusForbidden, "The flow control upper limit is reached.", ClassRate},
	{"1010011", http.StatusForbidden, "The app is not allowed to access the commercial address.", ClassPermanent},
	{CodeTimeOutLimit, http.StatusBadRequest, "Time out limit.", ClassPermanent},
	{"1010021", http.StatusBadRequest, "Application unavailable.", ClassAccount},
	{CodeInvalidVerifyCode, http.StatusBadRequest, "Invalid verification code.", ClassPermanent},
	{CodeInvalidDisplayNbr, http.StatusBadRequest, "Display number invalid.", ClassPermanent},
	{CodeInvalidCallerNbr, http.StatusBadRequest, "Invalid caller number.", ClassPermanent},
	{"1010029", http.StatusForbidden, "subscriber status is frozen.", ClassAccount},
	{"1011006", http.StatusForbidden, "Under traffic control.", ClassRate},

	// §9.3 number, template and recording errors.
	{"1012001", http.StatusBadRequest, "The resource of number is not applied.", ClassPermanent},
	{"1012002", http.StatusBadRequest, "The templateId is not approved.", ClassPermanent},
	{"1012003", http.StatusBadRequest, "The templateId does not exist.", ClassPermanent},
	{"1012004", http.StatusBadRequest, "The number of templateParas does not match the template.", ClassPermanent},
	{"1012005", http.StatusBadRequest, "templateParas does not meet template", ClassPermanent},
	{"1012006", http.StatusBadRequest, "The service number is not applied.", ClassPermanent},
	{CodeRecordingOff, http.StatusBadRequest, "Application does not open recording function.", ClassPermanent},

	// §9.4 call-limit and list errors.
	{CodeSPCallLimit, http.StatusForbidden, "Calls exceed the SP limit.", ClassRate},
	{"1013002", http.StatusForbidden, "Calls exceed the APP limit.", ClassRate},
	{"1013003", http.StatusForbidden, "Calls exceed the display number limit.", ClassRate},
	{"1013004", http.StatusForbidden, "The callee is in the blacklist.", ClassPermanent},
	{"1013011", http.StatusForbidden, "The callee is not in the whitelist.", ClassPermanent},
	// 1013112–1013116 were added on 2020-07-28; their texts were not captured (ref §9.4 ❓), so the
	// descriptions here are placeholders. Permanent per the reference, which the client refines to
	// rate when the platform's resultdesc mentions "frequency" (see classifyReply).
	{"1013112", http.StatusForbidden, "Call restricted.", ClassPermanent},
	{"1013113", http.StatusForbidden, "Call restricted.", ClassPermanent},
	{"1013114", http.StatusForbidden, "Call restricted.", ClassPermanent},
	{"1013115", http.StatusForbidden, "Call restricted.", ClassPermanent},
	{"1013116", http.StatusForbidden, "Call restricted.", ClassPermanent},
	{"1013117", http.StatusForbidden, "Callee call frequency restricted.", ClassRate},
	{"1013118", http.StatusForbidden, "Service number call frequency restricted.", ClassRate},
	{"1013119", http.StatusForbidden, "Service number suspend.", ClassAccount},
	{"1013120", http.StatusBadRequest, "Ip address is null.", ClassPermanent},

	// §9.5 other codes.
	{CodeRecordNotFound, http.StatusNotFound, "The record does not exist.", ClassPermanent},
	{"1020001", http.StatusBadRequest, "Parameter error.", ClassPermanent},
	{CodeInternalError, http.StatusInternalServerError, "Internal error.", ClassTransient},
	{"1020003", http.StatusBadRequest, "Parameter error.", ClassPermanent},
	{"1020150", http.StatusBadRequest, "The app_key is invalid.", ClassPermanent},
	{"1020151", http.StatusBadRequest, "The bindNum is invalid.", ClassPermanent},
	{CodePortsExhausted, http.StatusForbidden, "The appkey call port of using exceeds the limited.", ClassRate},
	{"1020166", http.StatusForbidden, "The client IP is not in the whitelist.", ClassPermanent},
	{"1020175", http.StatusForbidden, "The client IP is in a restricted region.", ClassPermanent}, // ref §9.5 ❓
	{"1020176", http.StatusForbidden, "Authentication failed, try again later.", ClassRate},
}

// codeIndex maps a code to its row; built once from codeTable.
var codeIndex = func() map[string]CodeInfo {
	m := make(map[string]CodeInfo, len(codeTable))
	for _, row := range codeTable {
		m[row.Code] = row
	}
	return m
}()

// LookupCode returns the table row of a result code.
func LookupCode(code string) (CodeInfo, bool) {
	row, ok := codeIndex[code]
	return row, ok
}

// Codes returns a copy of the whole result-code table, in the reference's order.
func Codes() []CodeInfo { return append([]CodeInfo(nil), codeTable...) }

// Classify returns the class of a reply: the table's class for a known code; for an unknown code
// transient when the HTTP status is 5xx and permanent otherwise (ref §9 "Client rules").
func Classify(code string, httpStatus int) Class {
	if row, ok := codeIndex[code]; ok {
		return row.Class
	}
	if httpStatus >= 500 {
		return ClassTransient
	}
	return ClassPermanent
}
