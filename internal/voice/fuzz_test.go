package voice

import (
	"strings"
	"testing"
)

// Fuzz targets for every parser of outside input. Run one with
// `go test -run '^$' -fuzz '^FuzzParseFeePush$' -fuzztime 30s ./internal/voice`, or all of them
// with ./scripts/fuzz.sh 30s.

func FuzzParseStatusPush(f *testing.F) {
	f.Add(readTestdata(f, "push_status_disconnect.json"))
	for _, s := range []string{
		`{"eventType":"callout","statusInfo":{"sessionId":"s","timestamp":"2019-01-24 03:04:24","caller":"+8675500000001","called":"+8613800000002"}}`,
		`{"eventType":"answer","statusInfo":{"sessionId":"s","timestamp":1548299064}}`,
		`{"eventType":"answer","statusInfo":{"sessionId":"s","timestamp":"1548299064123"}}`,
		`{"eventType":"collectInfo","statusInfo":{"sessionId":"s","digitInfo":""}}`,
		`{"eventType":"disconnect","statusInfo":{"sessionId":"s","stateCode":8102,"partyType":{"a":1}}}`,
		`{"eventType":"alerting","statusInfo":{"sessionId":"s","timestamp":null}}`,
		`{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseStatusPush(body)
		if err != nil {
			return
		}
		if p.StatusInfo.SessionID == "" {
			t.Fatal("accepted a push without sessionId")
		}
		assertStableStatus(t, body)
		if p.EventType == EventDisconnect && p.StatusInfo.StateCode != nil {
			DisconnectOutcome(*p.StatusInfo.StateCode, false)
		}
	})
}

func FuzzParseFeePush(f *testing.F) {
	f.Add(readTestdata(f, "push_fee_notify.json"))
	f.Add(feeBatch(f, 2))
	for _, s := range []string{
		`{"eventType":"fee","feeLst":[{"sessionId":"s","callEndTime":"2019-01-24  03:04:52","fwdAnswerTime":"2019-01-24 03:04:31","serviceType":"002"}]}`,
		`{"eventType":"fee","feeLst":[{"sessionId":"s","callOutAnswerTime":"","callEndTime":"0001-01-01 00:00:00"}]}`,
		`{"eventType":"fee","feeLst":[{"sessionId":"s","ulFailReason":528,"callOutUnaswRsn":1}]}`,
		`{"eventType":"fee","feeLst":[]}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseFeePush(body)
		if err != nil {
			return
		}
		if n := len(p.FeeLst); n == 0 || n > MaxFeeRecords {
			t.Fatalf("accepted %d records", n)
		}
		for i := range p.FeeLst {
			if p.FeeLst[i].TalkTime() < 0 {
				t.Fatalf("negative talk time in record %d", i)
			}
			p.FeeLst[i].Outcome()
		}
		assertStableFee(t, body)
	})
}

func FuzzParseUsernameToken(f *testing.F) {
	tok := UsernameToken{"testAppKey", "s5kvOOC2o3sG6c34PY4lyGNj3c5F8dwXJhro7VWmojg=", "66C92B11FF8A425FB8D4CCFE0ED9ED1F", "2018-02-12T15:30:20Z"}
	f.Add(tok.String())
	f.Add(strings.ReplaceAll(tok.String(), ",", ", "))
	f.Add(`UsernameToken Username="a" , Nonce = "b"`)
	f.Add(`UsernameToken`)
	f.Add(`UsernameToken Username="a",`)
	f.Add(`AKSK realm="SDP",profile="UsernameToken",type="Appkey"`)
	f.Fuzz(func(t *testing.T, h string) {
		got, err := ParseUsernameToken(h)
		if err != nil {
			return
		}
		again, err := ParseUsernameToken(got.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", got.String(), err)
		}
		if again != got {
			t.Fatalf("unstable round trip: %+v then %+v", got, again)
		}
	})
}
