package voice

// CallCodes are the codes a call ended with, from a disconnect status push (StateCode) or a CDR
// (Q850 from callOutUnaswRsn / fwdUnaswRsn, ULFailReason, SIPStatusCode). Answered says whether
// the leg the sender cares about answered: the callee for notify and verify, leg B for
// click-to-call. A nil code is absent.
type CallCodes struct {
	Answered      bool
	StateCode     *int // §10.1 hang-up reason
	Q850          *int // §10.2 ITU-T Q.850 cause
	ULFailReason  *int // §10.3 disconnect point
	SIPStatusCode *int // SIP final response
}

// ClassifyOutcome maps a call's codes to its outcome (ref §10.4). Precedence:
//
//  1. stateCode, when present, decides, even against Answered (a click-to-call whose leg A
//     answered can still end with 8102, leg B busy). 0, 8008 (no digits collected after the
//     message played) and 8010 (maximum duration reached) are completed; 8017 (stopped by the SP)
//     is completed when answered, else no_answer. The catch-alls 8001 and 8002 and the platform
//     errors 8000, 8011, 8015, 8020 are network_failure unless the other codes say more precisely
//     what happened. An undocumented stateCode defers to the other codes.
//  2. ulFailReason: the §10.4 column, 7xxx/8xxx values read as stateCodes (§10.3 "same meanings
//     as §10.1"), 400–699 read as SIP codes; 0 and the "see Q.850" points (518–521, 551) defer.
//  3. Q.850 cause; 0, 16 and 31 (normal clearing) defer.
//  4. SIP status code; 0 and 200 defer.
//
// Without a stateCode, an answered call is completed unless a code says the playback failed; an
// unanswered call whose codes say nothing decisive is network_failure.
//
// Where §10.4 lists a code in two rows we pick one: ulFailReason 528 (number prefix not allowed)
// is barred, or invalid_number when the Q.850 cause is 1, 22 or 28; Q.850 21 is rejected (barred
// only "sometimes"); SIP 480 is no_answer (also listed under unreachable; a stateCode 8103/8104
// or Q.850 20/27 says unreachable). "Digit collection empty" and "SP-terminated / max duration"
// are not outcomes of their own: the call was answered, so they are completed.
func ClassifyOutcome(c CallCodes) Outcome {
	if c.StateCode != nil {
		if o, ok := stateOutcome(*c.StateCode, c.Answered); ok {
			return o
		}
		if o, ok := detailOutcome(c); ok && o != OutcomeCompleted {
			return o
		}
		if isCatchAll(*c.StateCode) || !c.Answered {
			return OutcomeNetworkFailure
		}
		return OutcomeCompleted
	}
	o, ok := detailOutcome(c)
	switch {
	case c.Answered && ok && o == OutcomePlaybackFailure:
		return o
	case c.Answered:
		return OutcomeCompleted
	case ok && o != OutcomeCompleted:
		return o
	}
	return OutcomeNetworkFailure
}

// DisconnectOutcome classifies the stateCode of a disconnect status push (ref §6.1, §10.1).
// answered: an `answer` event was seen for the callee (click-to-call: leg B).
func DisconnectOutcome(stateCode int, answered bool) Outcome {
	return ClassifyOutcome(CallCodes{Answered: answered, StateCode: &stateCode})
}

// Outcome classifies a CDR (ref §7.2, §10.4). Notify and verify: answered when callOutAnswerTime
// is set, Q.850 from callOutUnaswRsn. Click-to-call: answered when fwdAnswerTime (leg B) is set;
// Q.850 from fwdUnaswRsn, or from callOutUnaswRsn when leg A itself never answered.
func (f *FeeInfo) Outcome() Outcome {
	c := CallCodes{ULFailReason: f.ULFailReason, SIPStatusCode: f.SIPStatusCode}
	switch {
	case !f.IsClick2Call():
		c.Answered = !f.CallOutAnswerTime.IsZero()
		c.Q850 = f.CallOutUnaswRsn
	case f.CallOutAnswerTime.IsZero() && f.FwdAnswerTime.IsZero():
		c.Q850 = f.CallOutUnaswRsn
	default:
		c.Answered = !f.FwdAnswerTime.IsZero()
		c.Q850 = f.FwdUnaswRsn
	}
	return ClassifyOutcome(c)
}

// Retryable reports whether a call with this outcome may simply be placed again: only
// network_failure, a fault between the platform and the callee that says nothing about the
// callee. platform_policy is not retryable: it covers frequency controls that a quick retry hits
// again, blacklists that never clear, and Huawei asks senders not to repeat failing calls
// (ref §1.7). Busy, no_answer and unreachable are redial decisions for a sender's policy (later,
// a limited number of times), not retries.
func Retryable(o Outcome) bool { return o == OutcomeNetworkFailure }

// stateOutcome maps a §10.1 stateCode. ok is false for the catch-alls and unknown codes, which
// the other codes may refine.
func stateOutcome(code int, answered bool) (Outcome, bool) {
	switch code {
	case 0, 8008, 8010:
		return OutcomeCompleted, true
	case 8017:
		if answered {
			return OutcomeCompleted, true
		}
		return OutcomeNoAnswer, true
	case 8102, 8108:
		return OutcomeBusy, true
	case 8101, 8107, 8003, 8009:
		return OutcomeNoAnswer, true
	case 8105, 8111, 8004:
		return OutcomeRejected, true
	case 8100, 8106:
		return OutcomeInvalidNumber, true
	case 8103, 8104, 8109, 8110:
		return OutcomeUnreachable, true
	case 8018:
		return OutcomeBarred, true
	case 7001, 7002, 7003, 7004, 7005, 7100, 7105, 7106, 7108, 7109, 8012:
		return OutcomePlatformPolicy, true
	case 8005, 8006, 8007, 7107:
		return OutcomePlaybackFailure, true
	}
	return "", false
}

// isCatchAll reports the stateCodes that mean "not connected, reason unspecified" or a platform
// fault: network_failure unless refined.
func isCatchAll(code int) bool {
	switch code {
	case 8000, 8001, 8002, 8011, 8015, 8020:
		return true
	}
	return false
}

// detailOutcome applies ulFailReason, then Q.850, then SIP; ok is false when none is decisive.
func detailOutcome(c CallCodes) (Outcome, bool) {
	if c.ULFailReason != nil {
		if o, ok := ulFailOutcome(*c.ULFailReason, c); ok {
			return o, true
		}
	}
	if c.Q850 != nil {
		if o, ok := q850Outcome(*c.Q850); ok {
			return o, true
		}
	}
	if c.SIPStatusCode != nil {
		if o, ok := sipOutcome(*c.SIPStatusCode); ok {
			return o, true
		}
	}
	return "", false
}

// ulFailOutcome maps a §10.3 disconnect point.
func ulFailOutcome(code int, c CallCodes) (Outcome, bool) {
	switch {
	case code == 100:
		return OutcomeCompleted, true
	case code == 513 || code == 514:
		return OutcomeNoAnswer, true
	case code == 515:
		return OutcomeRejected, true
	case code == 517:
		return OutcomeNetworkFailure, true
	case code == 522 || code == 2831 || code == 2868:
		return OutcomePlatformPolicy, true
	case code == 524 || code == 2801 || code == 2812 || code == 2837:
		return OutcomePlaybackFailure, true
	case code == 528:
		if c.Q850 != nil && isInvalidNumberCause(*c.Q850) {
			return OutcomeInvalidNumber, true
		}
		return OutcomeBarred, true
	case code == 1003:
		if c.Answered {
			return OutcomeCompleted, true
		}
		return OutcomeNoAnswer, true
	case code >= 400 && code <= 699:
		return sipOutcome(code)
	case code >= 7000 && code <= 8999:
		if o, ok := stateOutcome(code, c.Answered); ok {
			return o, true
		}
		if isCatchAll(code) {
			return OutcomeNetworkFailure, true
		}
	}
	return "", false
}

func isInvalidNumberCause(q int) bool { return q == 1 || q == 22 || q == 28 }

// q850Outcome maps a §10.2 cause per the Q.850 column of §10.4.
func q850Outcome(q int) (Outcome, bool) {
	switch q {
	case 17:
		return OutcomeBusy, true
	case 18, 19:
		return OutcomeNoAnswer, true
	case 21:
		return OutcomeRejected, true
	case 1, 22, 28:
		return OutcomeInvalidNumber, true
	case 20, 27:
		return OutcomeUnreachable, true
	case 34, 38, 41, 42, 44, 47:
		return OutcomeNetworkFailure, true
	case 53, 55, 57, 63:
		return OutcomeBarred, true
	}
	return "", false
}

// sipOutcome maps a SIP final response per the SIP column of §10.4 (RFC 3261 practice).
func sipOutcome(s int) (Outcome, bool) {
	switch s {
	case 486, 600:
		return OutcomeBusy, true
	case 408, 480:
		return OutcomeNoAnswer, true
	case 603:
		return OutcomeRejected, true
	case 404, 484:
		return OutcomeInvalidNumber, true
	case 500, 503:
		return OutcomeNetworkFailure, true
	case 403:
		return OutcomeBarred, true
	}
	return "", false
}
