package voice

import (
	"fmt"
	"testing"
)

// TestClassifyOutcomeTable walks every cell of the §10.4 table, each code alone, plus the
// documented tie-breaks and the precedence rules.
func TestClassifyOutcomeTable(t *testing.T) {
	t.Parallel()
	type row struct {
		outcome  Outcome
		answered bool
		state    []int
		q850     []int
		ulFail   []int
		sip      []int
	}
	rows := []row{
		{OutcomeCompleted, true, []int{0}, []int{16, 31}, []int{0}, []int{200}},
		{OutcomeBusy, false, []int{8102, 8108}, []int{17}, nil, []int{486, 600}},
		{OutcomeNoAnswer, false, []int{8101, 8107, 8003}, []int{18, 19}, []int{514, 513}, []int{408, 480}},
		{OutcomeRejected, false, []int{8105, 8111, 8004}, []int{21}, []int{515}, []int{603}},
		{OutcomeInvalidNumber, false, []int{8100, 8106}, []int{1, 22, 28}, nil, []int{404, 484}},
		{OutcomeUnreachable, false, []int{8104, 8110, 8103, 8109}, []int{20, 27}, nil, nil},
		{OutcomeNetworkFailure, false, []int{8001}, []int{34, 38, 41, 42, 44, 47}, []int{517}, []int{500, 503}},
		{OutcomeBarred, false, []int{8018}, []int{53, 55, 57, 63}, []int{528}, []int{403}},
		{OutcomePlatformPolicy, false, []int{7001, 7002, 7003, 7004, 7109}, nil, []int{7001, 7002, 7003, 7004, 7109, 522}, nil},
		{OutcomePlaybackFailure, false, []int{8005, 8006, 8007}, nil, []int{524, 2801, 2837}, nil},
		// "Digit collection empty" and "SP-terminated / max duration": answered calls → completed.
		{OutcomeCompleted, true, []int{8008, 8017, 8010}, []int{16}, []int{100, 1003}, nil},
	}
	for _, r := range rows {
		cases := []struct {
			col   string
			codes []int
			set   func(*CallCodes, int)
		}{
			{"stateCode", r.state, func(c *CallCodes, v int) { c.StateCode = &v }},
			{"q850", r.q850, func(c *CallCodes, v int) { c.Q850 = &v }},
			{"ulFailReason", r.ulFail, func(c *CallCodes, v int) { c.ULFailReason = &v }},
			{"sip", r.sip, func(c *CallCodes, v int) { c.SIPStatusCode = &v }},
		}
		for _, col := range cases {
			for _, code := range col.codes {
				t.Run(fmt.Sprintf("%s/%s=%d", r.outcome, col.col, code), func(t *testing.T) {
					t.Parallel()
					c := CallCodes{Answered: r.answered}
					col.set(&c, code)
					if got := ClassifyOutcome(c); got != r.outcome {
						t.Fatalf("ClassifyOutcome(%+v) = %s, want %s", c, got, r.outcome)
					}
				})
			}
		}
	}
}

// TestStateCodes walks every stateCode of §10.1 through DisconnectOutcome.
func TestStateCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code     int
		answered bool
		want     Outcome
	}{
		{0, true, OutcomeCompleted},
		{0, false, OutcomeCompleted}, // "normal hang-up after connection": the answer push may be lost
		{7001, false, OutcomePlatformPolicy},
		{7002, false, OutcomePlatformPolicy},
		{7003, false, OutcomePlatformPolicy},
		{7004, false, OutcomePlatformPolicy},
		{7005, false, OutcomePlatformPolicy},
		{7100, false, OutcomePlatformPolicy},
		{7105, false, OutcomePlatformPolicy},
		{7106, false, OutcomePlatformPolicy},
		{7107, false, OutcomePlaybackFailure},
		{7108, false, OutcomePlatformPolicy},
		{7109, false, OutcomePlatformPolicy},
		{8000, false, OutcomeNetworkFailure},
		{8001, false, OutcomeNetworkFailure},
		{8001, true, OutcomeNetworkFailure}, // "not connected" even if leg A answered
		{8002, false, OutcomeNetworkFailure},
		{8003, false, OutcomeNoAnswer},
		{8004, false, OutcomeRejected},
		{8005, true, OutcomePlaybackFailure},
		{8006, true, OutcomePlaybackFailure},
		{8007, true, OutcomePlaybackFailure},
		{8008, true, OutcomeCompleted},
		{8009, false, OutcomeNoAnswer},
		{8010, true, OutcomeCompleted},
		{8011, false, OutcomeNetworkFailure},
		{8012, false, OutcomePlatformPolicy},
		{8015, true, OutcomeNetworkFailure},
		{8017, true, OutcomeCompleted},
		{8017, false, OutcomeNoAnswer},
		{8018, false, OutcomeBarred},
		{8020, false, OutcomeNetworkFailure},
		{8100, false, OutcomeInvalidNumber},
		{8101, false, OutcomeNoAnswer},
		{8102, false, OutcomeBusy},
		{8102, true, OutcomeBusy}, // click-to-call: leg A answered, leg B busy
		{8103, false, OutcomeUnreachable},
		{8104, false, OutcomeUnreachable},
		{8105, false, OutcomeRejected},
		{8106, false, OutcomeInvalidNumber},
		{8107, false, OutcomeNoAnswer},
		{8108, false, OutcomeBusy},
		{8109, false, OutcomeUnreachable},
		{8110, false, OutcomeUnreachable},
		{8111, false, OutcomeRejected},
		{9999, true, OutcomeCompleted},       // undocumented code after answer
		{9999, false, OutcomeNetworkFailure}, // undocumented code, never answered
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/answered=%v", tt.code, tt.answered), func(t *testing.T) {
			t.Parallel()
			if got := DisconnectOutcome(tt.code, tt.answered); got != tt.want {
				t.Fatalf("DisconnectOutcome(%d, %v) = %s, want %s", tt.code, tt.answered, got, tt.want)
			}
		})
	}
}

// TestOutcomePrecedence: stateCode, then ulFailReason, then Q.850, then SIP; 8001 refined.
func TestOutcomePrecedence(t *testing.T) {
	t.Parallel()
	p := func(v int) *int { return &v }
	tests := []struct {
		name string
		c    CallCodes
		want Outcome
	}{
		{"stateCode over the rest", CallCodes{StateCode: p(8102), ULFailReason: p(514), Q850: p(21), SIPStatusCode: p(404)}, OutcomeBusy},
		{"8001 refined by ulFailReason", CallCodes{StateCode: p(8001), ULFailReason: p(514), Q850: p(17)}, OutcomeNoAnswer},
		{"8001 refined by Q.850", CallCodes{StateCode: p(8001), Q850: p(17), SIPStatusCode: p(404)}, OutcomeBusy},
		{"8001 refined by SIP", CallCodes{StateCode: p(8001), SIPStatusCode: p(486)}, OutcomeBusy},
		{"8001 with normal codes", CallCodes{StateCode: p(8001), ULFailReason: p(0), Q850: p(16), SIPStatusCode: p(0)}, OutcomeNetworkFailure},
		{"ulFailReason over Q.850", CallCodes{ULFailReason: p(515), Q850: p(17)}, OutcomeRejected},
		{"ulFailReason 518 defers to Q.850", CallCodes{ULFailReason: p(518), Q850: p(20)}, OutcomeUnreachable},
		{"ulFailReason as SIP code", CallCodes{ULFailReason: p(486)}, OutcomeBusy},
		{"ulFailReason as stateCode", CallCodes{ULFailReason: p(8102)}, OutcomeBusy},
		{"Q.850 over SIP", CallCodes{Q850: p(19), SIPStatusCode: p(486)}, OutcomeNoAnswer},
		{"528 with invalid-number cause", CallCodes{ULFailReason: p(528), Q850: p(1)}, OutcomeInvalidNumber},
		{"answered CDR with failure detail", CallCodes{Answered: true, ULFailReason: p(515)}, OutcomeCompleted},
		{"answered CDR with playback failure", CallCodes{Answered: true, ULFailReason: p(524)}, OutcomePlaybackFailure},
		{"unanswered, all zero", CallCodes{ULFailReason: p(0), Q850: p(0), SIPStatusCode: p(0)}, OutcomeNetworkFailure},
		{"unanswered, nothing", CallCodes{}, OutcomeNetworkFailure},
		{"answered, nothing", CallCodes{Answered: true}, OutcomeCompleted},
		{"unanswered, SP stopped", CallCodes{ULFailReason: p(1003)}, OutcomeNoAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ClassifyOutcome(tt.c); got != tt.want {
				t.Fatalf("ClassifyOutcome = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFeeInfoOutcome(t *testing.T) {
	t.Parallel()
	p := func(v int) *int { return &v }
	at := PushTime{utc("2019-01-24 03:04:31")}
	tests := []struct {
		name string
		f    FeeInfo
		want Outcome
	}{
		{"notify answered", FeeInfo{ServiceType: "001", CallOutAnswerTime: at, CallOutUnaswRsn: p(0)}, OutcomeCompleted},
		{"notify busy", FeeInfo{ServiceType: "001", CallOutUnaswRsn: p(17), SIPStatusCode: p(486)}, OutcomeBusy},
		{"notify no answer", FeeInfo{ServiceType: "001", ULFailReason: p(514), CallOutUnaswRsn: p(19)}, OutcomeNoAnswer},
		{"notify powered off", FeeInfo{ServiceType: "001", CallOutUnaswRsn: p(20), SIPStatusCode: p(480)}, OutcomeUnreachable},
		{"click2call answered", FeeInfo{ServiceType: "002", CallOutAnswerTime: at, FwdAnswerTime: at}, OutcomeCompleted},
		{"click2call leg B busy", FeeInfo{ServiceType: "002", CallOutAnswerTime: at, FwdUnaswRsn: p(17), CallOutUnaswRsn: p(0)}, OutcomeBusy},
		{"click2call leg A no answer", FeeInfo{ServiceType: "002", CallOutUnaswRsn: p(19), FwdUnaswRsn: p(0)}, OutcomeNoAnswer},
		{"click2call leg A answered, B cause ignored from A", FeeInfo{ServiceType: "002", CallOutAnswerTime: at, CallOutUnaswRsn: p(17), FwdUnaswRsn: p(21)}, OutcomeRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.f.Outcome(); got != tt.want {
				t.Fatalf("Outcome = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	for _, o := range []Outcome{OutcomeCompleted, OutcomeBusy, OutcomeNoAnswer, OutcomeRejected, OutcomeInvalidNumber,
		OutcomeUnreachable, OutcomeNetworkFailure, OutcomeBarred, OutcomePlatformPolicy, OutcomePlaybackFailure} {
		if got, want := Retryable(o), o == OutcomeNetworkFailure; got != want {
			t.Errorf("Retryable(%s) = %v, want %v", o, got, want)
		}
	}
}
