package voicesim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicequeue/voicequeue/internal/voice"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey     = "testAppKey"
	testSecret  = "testAppSecret123"
	testDisplay = "+8675500000001"
)

// testStart is the fake clock's start: a whole second, so simulated times truncate predictably.
var testStart = time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: testStart} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a simulator on an httptest server with its clock.
type env struct {
	sim   *Simulator
	srv   *httptest.Server
	clock *fakeClock
}

// newEnv starts a simulator with test credentials, a fake clock and Speed 1000 unless cfg says
// otherwise; it is closed when the test ends.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	clock := newFakeClock()
	if cfg.AppKey == "" {
		cfg.AppKey, cfg.AppSecret = testKey, testSecret
	}
	if cfg.Speed == 0 {
		cfg.Speed = 1000
	}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := sim.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &env{sim: sim, srv: srv, clock: clock}
}

// sign sets valid AKSK headers, built with voice.PasswordDigest.
func sign(h http.Header, key, secret string, now time.Time) {
	nonce, err := voice.NewNonce()
	if err != nil {
		panic(err)
	}
	created := voice.FormatCreated(now)
	h.Set("Authorization", voice.AuthorizationValue)
	h.Set("X-AKSK", fmt.Sprintf(`UsernameToken Username="%s",PasswordDigest="%s",Nonce="%s",Created="%s"`,
		key, voice.PasswordDigest(secret, nonce, created), nonce, created))
}

// reply is a decoded API reply.
type reply struct {
	status int
	header http.Header
	body   []byte
	resp   voice.Response
	closed bool // the server asked to close the connection (Go turns the header into Response.Close)
}

// do sends a signed API request with body (a string is sent as is, anything else as JSON).
func (e *env) do(t *testing.T, method, path string, body any) reply {
	t.Helper()
	return e.doWith(t, method, path, body, func(h http.Header) { sign(h, testKey, testSecret, e.clock.Now()) })
}

// doWith sends an API request whose headers are set by setHeaders.
func (e *env) doWith(t *testing.T, method, path string, body any, setHeaders func(http.Header)) reply {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatalf("encode body: %v", err)
		}
	}
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", voice.ContentType)
	setHeaders(req.Header)
	client := testClient()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out := reply{status: res.StatusCode, header: res.Header, closed: res.Close}
	if out.body, err = io.ReadAll(res.Body); err != nil {
		t.Fatalf("read reply: %v", err)
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(out.body, &out.resp); err != nil {
			t.Fatalf("decode reply %q: %v", out.body, err)
		}
	}
	return out
}

// accept places a call and fails the test unless it is accepted; it returns the sessionId.
func (e *env) accept(t *testing.T, path string, body any) string {
	t.Helper()
	r := e.do(t, http.MethodPost, path, body)
	if r.status != http.StatusOK || r.resp.ResultCode != "0" || r.resp.SessionID == "" {
		t.Fatalf("call not accepted: HTTP %d %s", r.status, r.body)
	}
	return r.resp.SessionID
}

// waitIdle waits for every call and push of the simulator.
func (e *env) waitIdle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.sim.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
}

// receiver is an SP push receiver that records every push.
type receiver struct {
	srv *httptest.Server

	mu        sync.Mutex
	status    []voice.StatusPush
	rawStatus [][]byte
	fees      []voice.FeePush
	rawFees   [][]byte
	headers   []http.Header
	cdrCalls  int
	cdrReply  func(n int) (int, string) // status and body of the n-th CDR push (from 0)
	arrived   chan voice.StatusPush
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{arrived: make(chan voice.StatusPush, 1024)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.headers = append(r.headers, req.Header.Clone())
	switch req.URL.Path {
	case "/status":
		var p voice.StatusPush
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.status = append(r.status, p)
		r.rawStatus = append(r.rawStatus, body)
		r.arrived <- p
	case "/fee":
		n := r.cdrCalls
		r.cdrCalls++
		var p voice.FeePush
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.fees = append(r.fees, p)
		r.rawFees = append(r.rawFees, body)
		if r.cdrReply != nil {
			code, text := r.cdrReply(n)
			w.WriteHeader(code)
			_, _ = io.WriteString(w, text)
		}
	default:
		http.NotFound(w, req)
	}
}

func (r *receiver) statusURL() voice.EncodedURL { return voice.EncodedURL(r.srv.URL + "/status") }
func (r *receiver) feeURL() voice.EncodedURL    { return voice.EncodedURL(r.srv.URL + "/fee") }

// events returns the status pushes of one session, in arrival order.
func (r *receiver) events(session string) []voice.StatusPush {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []voice.StatusPush
	for _, p := range r.status {
		if p.StatusInfo.SessionID == session {
			out = append(out, p)
		}
	}
	return out
}

// feePushes returns every CDR push received.
func (r *receiver) feePushes() []voice.FeePush {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]voice.FeePush(nil), r.fees...)
}

// cdrs returns the CDRs of one session, one per push that carried it.
func (r *receiver) cdrs(session string) []voice.FeeInfo {
	var out []voice.FeeInfo
	for _, p := range r.feePushes() {
		for _, f := range p.FeeLst {
			if f.SessionID == session {
				out = append(out, f)
			}
		}
	}
	return out
}

// eventNames lists event types, with the stateCode of disconnects and the digits of collectInfo,
// e.g. "callout alerting answer collectInfo(1) disconnect(0)".
func eventNames(ps []voice.StatusPush) string {
	var parts []string
	for _, p := range ps {
		name := string(p.EventType)
		switch {
		case p.StatusInfo.StateCode != nil:
			name += fmt.Sprintf("(%d)", *p.StatusInfo.StateCode)
		case p.StatusInfo.DigitInfo != nil:
			name += fmt.Sprintf("(%s)", *p.StatusInfo.DigitInfo)
		}
		parts = append(parts, name)
	}
	return strings.Join(parts, " ")
}

// Request builders.

func notifyReq(callee string, rcv *receiver) voice.NotifyRequest {
	req := voice.NotifyRequest{
		DisplayNbr:   testDisplay,
		CalleeNbr:    callee,
		PlayInfoList: []voice.PlayItem{{TemplateID: "tpl1", TemplateParas: []string{"42"}}},
		UserData:     "job-" + callee,
	}
	if rcv != nil {
		req.StatusURL, req.FeeURL = rcv.statusURL(), rcv.feeURL()
	}
	return req
}

func verifyReq(callee string, rcv *receiver) voice.VerifyRequest {
	req := voice.VerifyRequest{
		DisplayNbr: testDisplay, CalleeNbr: callee, LanguageType: voice.LanguageChinese,
		PreTone: "welcome.wav", VerifyCode: "123456", UserData: "job-" + callee,
	}
	if rcv != nil {
		req.StatusURL, req.FeeURL = rcv.statusURL(), rcv.feeURL()
	}
	return req
}

func click2CallReq(callee string, rcv *receiver) voice.Click2CallRequest {
	req := voice.Click2CallRequest{
		DisplayNbr: testDisplay, CallerNbr: "+8613700000001", DisplayCalleeNbr: testDisplay,
		CalleeNbr: callee, UserData: "job-" + callee,
	}
	if rcv != nil {
		req.StatusURL, req.FeeURL = rcv.statusURL(), rcv.feeURL()
	}
	return req
}

// toMap turns a typed request into a JSON object that a test can break field by field.
func toMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// mustJSON encodes v.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return string(b)
}

// testClient is an HTTP client without keep-alive, so that no connection outlives a test.
func testClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// httpGet and httpPost are http.Get and http.Post on a testClient.
func httpGet(url string) (*http.Response, error) { return testClient().Get(url) }

func httpPost(url string) (*http.Response, error) { return testClient().Post(url, "", nil) }
