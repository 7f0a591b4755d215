package voice_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voicequeue/voicequeue/internal/voice"
	"github.com/voicequeue/voicequeue/internal/voice/voicesim"
)

// pushSink collects the pushes the simulator sends, per session.
type pushSink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events map[string][]voice.EventType
	cdrs   map[string]voice.FeeInfo
	order  map[string][]string // "status:<event>" and "fee", in arrival order
}

func newPushSink() *pushSink {
	s := &pushSink{events: map[string][]voice.EventType{}, cdrs: map[string]voice.FeeInfo{}, order: map[string][]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case "/status":
			p, err := voice.ParseStatusPush(body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			id := p.StatusInfo.SessionID
			s.events[id] = append(s.events[id], p.EventType)
			s.order[id] = append(s.order[id], "status:"+string(p.EventType))
		case "/fee":
			p, err := voice.ParseFeePush(body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			for _, f := range p.FeeLst {
				s.cdrs[f.SessionID] = f
				s.order[f.SessionID] = append(s.order[f.SessionID], "fee")
			}
		}
	}))
	return s
}

func (s *pushSink) cdr(session string) (voice.FeeInfo, []voice.EventType, []string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.cdrs[session]
	return f, slices.Clone(s.events[session]), slices.Clone(s.order[session]), ok
}

// simRig is a simulator on loopback with a client and a push sink.
type simRig struct {
	sim    *voicesim.Simulator
	srv    *httptest.Server
	sink   *pushSink
	client *voice.Client
}

func newSimRig(t *testing.T, timeout time.Duration) *simRig {
	t.Helper()
	sim, err := voicesim.New(voicesim.Config{AppKey: "key", AppSecret: "secret", Speed: 200})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	sink := newPushSink()
	client, err := voice.NewClient(voice.Config{BaseURL: srv.URL, AppKey: "key", AppSecret: "secret", RequestTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		_ = sim.Close()
		srv.Close()
		sink.srv.Close()
	})
	return &simRig{sim: sim, srv: srv, sink: sink, client: client}
}

// place sends one request of the given API to callee.
func (r *simRig) place(ctx context.Context, api, callee string) (*voice.Response, error) {
	status, fee := voice.EncodedURL(r.sink.srv.URL+"/status"), voice.EncodedURL(r.sink.srv.URL+"/fee")
	switch api {
	case "verify":
		return r.client.Verify(ctx, &voice.VerifyRequest{DisplayNbr: "+8675500000001", CalleeNbr: callee,
			LanguageType: voice.LanguageChinese, PreTone: "pre.wav", VerifyCode: "1234", StatusURL: status, FeeURL: fee, UserData: "t-" + api})
	case "click2call":
		return r.client.Click2Call(ctx, &voice.Click2CallRequest{DisplayNbr: "+8675500000001", CallerNbr: "+8613800000001",
			DisplayCalleeNbr: "+8675500000001", CalleeNbr: callee, StatusURL: status, FeeURL: fee, UserData: "t-" + api})
	default:
		return r.client.Notify(ctx, &voice.NotifyRequest{DisplayNbr: "+8675500000001", CalleeNbr: callee,
			PlayInfoList: []voice.PlayItem{{TemplateID: "tpl", TemplateParas: []string{"1"}, CollectInd: 1}},
			StatusURL:    status, FeeURL: fee, UserData: "t-" + api})
	}
}

// TestClientAgainstSimulator places each API's call to each deterministic number of the
// simulator and checks the reply's class, the order of the pushes and the outcome the
// classifier reads from the CDR.
func TestClientAgainstSimulator(t *testing.T) {
	rig := newSimRig(t, 500*time.Millisecond)
	answered := []voice.EventType{voice.EventCallout, voice.EventAlerting, voice.EventAnswer}
	tests := []struct {
		suffix  string
		class   voice.Class
		outcome voice.Outcome
		// events for notify/verify; click2call rings leg A first (callout, alerting, answer).
		events []voice.EventType
	}{
		{"0001", voice.ClassAccepted, voice.OutcomeCompleted, append(slices.Clone(answered), voice.EventDisconnect)},
		{"0111", voice.ClassAccepted, voice.OutcomeCompleted, nil},
		{"0486", voice.ClassAccepted, voice.OutcomeBusy, nil},
		{"0480", voice.ClassAccepted, voice.OutcomeNoAnswer, nil},
		{"0603", voice.ClassAccepted, voice.OutcomeRejected, nil},
		{"0410", voice.ClassAccepted, voice.OutcomeUnreachable, nil},
		{"0500", voice.ClassAccepted, voice.OutcomeNetworkFailure, nil},
		{"0404", voice.ClassPermanent, "", nil},
		{"0503", voice.ClassTransient, "", nil},
		{"0408", voice.ClassAmbiguous, voice.OutcomeCompleted, nil},
	}
	for _, api := range []string{"notify", "verify", "click2call"} {
		for i, tt := range tests {
			t.Run(api+"/"+tt.suffix, func(t *testing.T) {
				callee := fmt.Sprintf("+86138%02d%02d%s", slices.Index([]string{"notify", "verify", "click2call"}, api), i, tt.suffix)
				resp, err := rig.place(t.Context(), api, callee)
				if got := voice.ClassOf(err); got != tt.class {
					t.Fatalf("class %s (%v), want %s", got, err, tt.class)
				}
				var apiErr *voice.APIError
				if err != nil && !errors.As(err, &apiErr) {
					t.Fatalf("error %T is not an *APIError", err)
				}
				if tt.class == voice.ClassTransient {
					// The simulator fails the first request only: the next one is accepted.
					if resp, err = rig.place(t.Context(), api, callee); err != nil {
						t.Fatalf("second request: %v", err)
					}
					tt.outcome = voice.OutcomeCompleted
				}
				if tt.outcome == "" {
					return
				}
				session := ""
				if resp != nil {
					session = resp.SessionID
				} else {
					// Ambiguous: the call was placed all the same; find it in the simulator.
					for _, c := range rig.sim.Calls() {
						if c.CalleeNbr == callee {
							session = c.SessionID
						}
					}
				}
				if session == "" {
					t.Fatal("no session for the call")
				}
				var (
					cdr    voice.FeeInfo
					events []voice.EventType
					order  []string
					ok     bool
				)
				deadline := time.Now().Add(10 * time.Second)
				for !ok && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
					cdr, events, order, ok = rig.sink.cdr(session)
				}
				if !ok {
					t.Fatal("no CDR pushed")
				}
				if got := cdr.Outcome(); got != tt.outcome {
					t.Errorf("CDR outcome %s, want %s", got, tt.outcome)
				}
				if order[len(order)-1] != "fee" || events[0] != voice.EventCallout || events[len(events)-1] != voice.EventDisconnect {
					t.Errorf("push order %v: want callout first, disconnect last, CDR after the status events", order)
				}
				if tt.events != nil && api == "verify" && !slices.Equal(events, tt.events) {
					t.Errorf("events %v, want %v", events, tt.events)
				}
				if tt.suffix == "0111" && api == "notify" && !slices.Contains(events, voice.EventCollectInfo) {
					t.Errorf("events %v: no collectInfo for a callee who presses 1", events)
				}
				talks := cdr.TalkTime() > 0
				if talks != (tt.outcome == voice.OutcomeCompleted) {
					t.Errorf("talk time %s for outcome %s", cdr.TalkTime(), tt.outcome)
				}
			})
		}
	}
}

// Example places a verification call against the simulator and prints the reply and the
// outcome the CDR reports.
func Example() {
	sim, _ := voicesim.New(voicesim.Config{AppKey: "app-key", AppSecret: "app-secret", Speed: 500})
	platform := httptest.NewServer(sim.Handler())
	defer platform.Close()
	defer sim.Close()

	cdrs := make(chan voice.FeeInfo, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if push, err := voice.ParseFeePush(body); err == nil {
			cdrs <- push.FeeLst[0]
		}
	}))
	defer receiver.Close()

	client, err := voice.NewClient(voice.Config{BaseURL: platform.URL, AppKey: "app-key", AppSecret: "app-secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CloseIdleConnections()
	times := 2
	resp, err := client.Verify(context.Background(), &voice.VerifyRequest{
		DisplayNbr: "+8675500000001", CalleeNbr: "+8613800000001", LanguageType: voice.LanguageChinese,
		PreTone: "welcome.wav", VerifyCode: "4711", Times: &times,
		FeeURL: voice.EncodedURL(receiver.URL + "/fee"), UserData: "order-42",
	})
	fmt.Println("class:", voice.ClassOf(err), "session:", resp != nil && resp.SessionID != "")
	cdr := <-cdrs
	fmt.Println("outcome:", cdr.Outcome(), "answered:", cdr.TalkTime() > 0)
	// Output:
	// class: accepted session: true
	// outcome: completed answered: true
}
