package voicesim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// Example places a voice notification to a busy callee (a number ending in 0486) on a simulator
// running 1000 times faster than real time, and prints the reply, the status pushes the SP
// receives and what the simulator recorded.
func Example() {
	// The SP's push receiver.
	var mu sync.Mutex
	var events []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p voice.StatusPush
		if r.URL.Path == "/status" && json.NewDecoder(r.Body).Decode(&p) == nil {
			name := string(p.EventType)
			if code := p.StatusInfo.StateCode; code != nil {
				name += fmt.Sprintf("(%d)", *code)
			}
			mu.Lock()
			events = append(events, name)
			mu.Unlock()
		}
	}))
	defer receiver.Close()

	sim, err := voicesim.New(voicesim.Config{AppKey: "demoKey", AppSecret: "demoSecret", Speed: 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	platform := httptest.NewServer(sim.Handler())
	defer platform.Close()

	body, _ := json.Marshal(voice.NotifyRequest{
		DisplayNbr:   "+8675500000001",
		CalleeNbr:    "+8613800000486",
		PlayInfoList: []voice.PlayItem{{TemplateID: "tpl1", TemplateParas: []string{"42"}}},
		StatusURL:    voice.EncodedURL(receiver.URL + "/status"),
		UserData:     "order-42",
	})
	req, _ := http.NewRequest(http.MethodPost, platform.URL+voice.PathNotify, bytes.NewReader(body))
	req.Header.Set("Content-Type", voice.ContentType)
	nonce, created := "66C92B11FF8A425FB8D4CCFE0ED9ED1F", voice.FormatCreated(time.Now())
	req.Header.Set("Authorization", voice.AuthorizationValue)
	req.Header.Set("X-AKSK", fmt.Sprintf(`UsernameToken Username="%s",PasswordDigest="%s",Nonce="%s",Created="%s"`,
		"demoKey", voice.PasswordDigest("demoSecret", nonce, created), nonce, created))
	res, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	var reply voice.Response
	_ = json.NewDecoder(res.Body).Decode(&reply)
	res.Body.Close()
	fmt.Println("HTTP", res.StatusCode, "resultcode", reply.ResultCode, reply.ResultDesc)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sim.WaitIdle(ctx); err != nil {
		fmt.Println(err)
		return
	}
	mu.Lock()
	fmt.Println("pushes:", strings.Join(events, " "))
	mu.Unlock()
	call := sim.Calls()[0]
	fmt.Println("recorded:", call.Scenario, *call.CDR.CallOutUnaswRsn, *call.CDR.SIPStatusCode)
	// Output:
	// HTTP 200 resultcode 0 Success
	// pushes: callout disconnect(8102)
	// recorded: busy 17 486
}
