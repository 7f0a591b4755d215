// Package voicesim is a faithful simulator of the Huawei Cloud Voice Call platform
// (../shared/voice-platform-api.md, cited as "ref §N"): the demo, every test and every benchmark
// of voicequeue run against it.
//
// It serves the five API paths with exact casing, checks the AKSK headers and the request bodies
// as the platform does, enforces a call rate and a port cap, and plays every accepted call out
// asynchronously: status pushes in order, never re-sent, then a CDR push, merged with others that
// end in the same second and re-sent on failure. What becomes of a call is chosen by the last four
// digits of the callee (see the Suffix constants) or, in RandomMode, by dice. Faults (latency,
// errors, outages, flow control, duplicated, reordered and delayed pushes) can be injected.
//
// Besides the API it serves, for tests and operators:
//
//	GET  /sim/calls              every accepted call with its pushes (JSON array of CallRecord)
//	GET  /sim/stats              counters (JSON Stats)
//	POST /sim/reset              forget records, counters, "0503" memory and the rate window
//	POST /sim/outage?mode=503|refuse&on=true|false[&for=30s]   switch an outage at run time
//	GET  /sim/recordings/{name}  the (silent) WAV a recording-URL Location points to
//	GET  /healthz, /readyz       liveness and readiness
//	GET  /metrics                Prometheus metrics, when the Registerer is also a Gatherer
//
// Time: each call runs on its own simulated timeline that starts when it is accepted
// (Config.Now) and advances Speed times faster than the wall clock. The times in its pushes are
// read on that timeline, so CDR durations are realistic at any speed (a 5 s talk shows as 5 s),
// while at Speed > 1 they run ahead of the wall clock. Config lists which durations are scaled.
//
// The JSON under /sim/ carries full phone numbers (this is a test double); logs never do.
package voicesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// Simulator is a simulated Voice Call platform. It is safe for concurrent use.
type Simulator struct {
	cfg       Config
	log       *slog.Logger
	client    *http.Client
	ownClient bool
	templates map[string][]templateVar
	metrics   *metrics
	gatherer  prometheus.Gatherer
	faults    *dice
	outcomes  *dice
	instance  uint32
	started   time.Time
	ctx       context.Context // ends at Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup // call and CDR goroutines
	closeOnce sync.Once

	mu            sync.Mutex
	closed        bool
	seq           uint64
	active        map[string]*call // calls not yet disconnected, by sessionId
	ports         int              // ports in use
	rate          *rateWindow
	seen503       map[string]bool
	recordings    map[string]string // recording file name → domain
	batches       map[cdrKey]*cdrBatch
	runtimeOutage map[string]bool
	offTimers     map[string]*time.Timer // /sim/outage "for" timers
	work          int                    // calls running and CDR batches pending
	idle          chan struct{}          // closed when work drops to 0
	stats         statsState
}

// New validates cfg, fills in its defaults and returns a simulator ready to serve.
func New(cfg Config) (*Simulator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("validate simulator config: %w", err)
	}
	m := newMetrics()
	if cfg.Registerer != nil {
		if err := m.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("register simulator metrics: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Simulator{
		cfg:           cfg,
		log:           cfg.Logger.With("component", "voicesim"),
		client:        cfg.HTTPClient,
		metrics:       m,
		faults:        newDice(cfg.Faults.Seed),
		instance:      rand.Uint32(),
		started:       cfg.Now(),
		ctx:           ctx,
		cancel:        cancel,
		active:        make(map[string]*call),
		rate:          newRateWindow(cfg.Rate),
		seen503:       make(map[string]bool),
		recordings:    make(map[string]string),
		batches:       make(map[cdrKey]*cdrBatch),
		runtimeOutage: make(map[string]bool),
		offTimers:     make(map[string]*time.Timer),
		idle:          closedChan(),
		stats:         newStatsState(cfg.MaxRecords),
	}
	if cfg.Random != nil {
		s.outcomes = newDice(cfg.Random.Seed)
	}
	if g, ok := cfg.Registerer.(prometheus.Gatherer); ok {
		s.gatherer = g
	}
	if cfg.Templates != nil {
		s.templates = make(map[string][]templateVar, len(cfg.Templates))
		for id, text := range cfg.Templates {
			s.templates[id], _ = parseTemplate(text) // validated above
		}
	}
	if s.client == nil {
		s.ownClient = true
		s.client = &http.Client{
			Transport: &http.Transport{
				DialContext:           (&net.Dialer{Timeout: cfg.PushTimeout}).DialContext,
				TLSHandshakeTimeout:   cfg.PushTimeout,
				ResponseHeaderTimeout: cfg.PushTimeout,
				MaxIdleConnsPerHost:   64,
				IdleConnTimeout:       30 * time.Second,
			},
			// A redirect is not a 200: the push failed (ref §8).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return s, nil
}

// Close stops every call and push in flight (calls end without disconnect or CDR), releases held
// replies and waits for all of the simulator's goroutines. It is idempotent.
func (s *Simulator) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, t := range s.offTimers {
			t.Stop()
		}
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
		if s.ownClient {
			s.client.CloseIdleConnections()
		}
	})
	return nil
}

// WaitIdle waits until every call has finished and every CDR push has been delivered or given up.
func (s *Simulator) WaitIdle(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.work == 0 {
			s.mu.Unlock()
			return nil
		}
		idle := s.idle
		s.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("wait for idle simulator: %w", ctx.Err())
		}
	}
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// addWorkLocked counts a call or CDR batch that WaitIdle waits for.
func (s *Simulator) addWorkLocked() {
	if s.work == 0 {
		s.idle = make(chan struct{})
	}
	s.work++
}

// doneWork ends what addWorkLocked counted.
func (s *Simulator) doneWork() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.work--
	if s.work == 0 {
		close(s.idle)
	}
}

// Handler serves the platform API, the /sim/ endpoints, /healthz, /readyz and /metrics.
func (s *Simulator) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Simulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/healthz" || p == "/readyz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	case p == "/metrics" && s.gatherer != nil:
		promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	case strings.HasPrefix(p, "/sim/"):
		s.serveSim(w, r)
	default:
		s.serveAPI(w, r)
	}
}

// route is one API path.
type route struct {
	method string
	api    string
	serve  func(s *Simulator, w http.ResponseWriter, r *http.Request)
}

// routes are the API paths, matched exactly (ref §1.1).
var routes = map[string]route{
	voice.PathNotify:     {http.MethodPost, APINotify, (*Simulator).serveNotify},
	voice.PathVerify:     {http.MethodPost, APIVerify, (*Simulator).serveVerify},
	voice.PathClick2Call: {http.MethodPost, APIClick2Call, (*Simulator).serveClick2Call},
	voice.PathCallStop:   {http.MethodPost, APICallStop, (*Simulator).serveCallStop},
	voice.PathRecord:     {http.MethodGet, APIRecord, (*Simulator).serveRecord},
}

// serveAPI runs the checks every API request goes through, in order: outage, exact path, latency,
// method (1010006), authentication, injected internal error (1010001); then the API itself.
func (s *Simulator) serveAPI(w http.ResponseWriter, r *http.Request) {
	rt, known := routes[r.URL.Path]
	api := rt.api
	if !known {
		api = "unknown"
	}
	// Short connections: the platform closes the connection after each reply (ref §1.6).
	w.Header().Set("Connection", "close")
	switch s.OutageMode() {
	case OutageRefuse:
		s.countRefusal("outage_refuse")
		s.metrics.requests.WithLabelValues(api, "outage_refuse").Inc()
		dropConnection(w, true)
		return
	case Outage503:
		s.countRefusal("outage_503")
		s.metrics.requests.WithLabelValues(api, "outage_503").Inc()
		http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if !known {
		http.NotFound(w, r) // plain text, no JSON: a wrong base URL or URI (ref §1.5)
		return
	}
	if !s.waitRequest(r, s.cfg.Faults.Latency) {
		return
	}
	if r.Method != rt.method {
		s.replyError(w, rt.api, reject(voice.CodeInvalidRestAPI))
		return
	}
	if rej := s.authenticate(r.Header); rej != nil {
		s.replyError(w, rt.api, rej)
		return
	}
	if s.faults.chance(s.cfg.Faults.ErrorRate) {
		s.replyError(w, rt.api, reject(voice.CodeInternal))
		return
	}
	rt.serve(s, w, r)
}

// waitRequest waits d for a request; false when the client left or the simulator closed.
func (s *Simulator) waitRequest(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.ctx.Done():
	}
	return false
}

// readBody reads a JSON request body of at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *rejection) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, invalidParam("Content-Type")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return nil, &rejection{code: voice.CodeInvalidRequest, desc: "Invalid request."}
	}
	return body, nil
}

func (s *Simulator) serveNotify(w http.ResponseWriter, r *http.Request) {
	body, rej := readBody(w, r)
	if rej == nil {
		var req voice.NotifyRequest
		if req, rej = s.parseNotify(body); rej == nil {
			c := &call{api: APINotify, display: req.DisplayNbr, callee: req.CalleeNbr,
				legs: [2]party{{caller: req.DisplayNbr, called: req.CalleeNbr}}, userData: req.UserData,
				statusURL: string(req.StatusURL), feeURL: string(req.FeeURL)}
			s.place(w, r, c, bool(req.ReturnIdlePort), func(c *call) { planCall(c, &req, nil, nil) })
			return
		}
	}
	s.replyError(w, APINotify, rej)
}

func (s *Simulator) serveVerify(w http.ResponseWriter, r *http.Request) {
	body, rej := readBody(w, r)
	if rej == nil {
		var req voice.VerifyRequest
		if req, rej = s.parseVerify(body); rej == nil {
			c := &call{api: APIVerify, display: req.DisplayNbr, callee: req.CalleeNbr,
				legs: [2]party{{caller: req.DisplayNbr, called: req.CalleeNbr}}, userData: req.UserData,
				statusURL: string(req.StatusURL), feeURL: string(req.FeeURL)}
			s.place(w, r, c, bool(req.ReturnIdlePort), func(c *call) { planCall(c, nil, &req, nil) })
			return
		}
	}
	s.replyError(w, APIVerify, rej)
}

func (s *Simulator) serveClick2Call(w http.ResponseWriter, r *http.Request) {
	body, rej := readBody(w, r)
	if rej == nil {
		var req voice.Click2CallRequest
		if req, rej = s.parseClick2Call(body); rej == nil {
			c := &call{api: APIClick2Call, display: req.DisplayNbr, displayB: req.DisplayCalleeNbr,
				callee: req.CalleeNbr, userData: req.UserData,
				legs: [2]party{
					{caller: req.DisplayNbr, called: req.CallerNbr},
					{caller: req.DisplayCalleeNbr, called: req.CalleeNbr},
				},
				statusURL: string(req.StatusURL), feeURL: string(req.FeeURL),
				partyType: bool(req.PartyTypeRequiredInDisconnect), record: bool(req.RecordFlag)}
			s.place(w, r, c, bool(req.ReturnIdlePort), func(c *call) { planCall(c, nil, nil, &req) })
			return
		}
	}
	s.replyError(w, APIClick2Call, rej)
}

// place applies the request-time scripts and the caps to a valid call request, accepts the call
// and starts it. The order: "0404" invalid number, "0503" first-request error, injected flow
// control (1010010), the rate (1013001), the ports (1020165).
func (s *Simulator) place(w http.ResponseWriter, r *http.Request, c *call, wantIdlePort bool, plan func(*call)) {
	sfx := suffix(c.callee)
	switch sfx {
	case SuffixInvalid:
		s.replyError(w, c.api, invalidParam("calleeNbr"))
		return
	case SuffixTransient:
		s.mu.Lock()
		first := !s.seen503[c.callee]
		s.seen503[c.callee] = true
		s.mu.Unlock()
		if first {
			s.replyError(w, c.api, reject(voice.CodeInternal))
			return
		}
	}
	if s.faults.chance(s.cfg.Faults.FlowControlRate) {
		s.replyError(w, c.api, reject(voice.CodeFlowControl))
		return
	}
	c.scenario = s.scenarioFor(sfx)
	plan(c)
	c.stop = make(chan struct{})
	c.icid = fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
	held := sfx == SuffixHoldReply

	now := s.cfg.Now()
	s.mu.Lock()
	var rej *rejection
	switch {
	case s.closed:
		rej = reject(voice.CodeInternal)
	case !s.rate.allowed(now):
		rej = reject(voice.CodeSPCallLimit)
	case s.cfg.Ports > 0 && s.ports >= s.cfg.Ports:
		rej = reject(voice.CodePortsExhausted)
	}
	if rej != nil {
		s.mu.Unlock()
		s.replyError(w, c.api, rej)
		return
	}
	s.rate.add(now)
	s.seq++
	c.seq = s.seq
	c.accepted = now
	c.id = s.newSessionID(c.api, c.seq, now)
	s.active[c.id] = c
	s.ports++
	c.portHeld = true
	idlePorts := s.idlePortsLocked()
	s.stats.acceptLocked(c, now, held)
	s.wg.Add(1)
	s.addWorkLocked()
	s.mu.Unlock()

	s.metrics.accepted.WithLabelValues(c.api).Inc()
	s.metrics.active.Inc()
	s.log.Info("call accepted", "session_id", c.id, "api", c.api,
		"callee", voice.MaskNumber(c.callee), "scenario", string(c.scenario), "reply_held", held)
	go s.runCall(c)

	if held {
		s.holdReply(w, r, c.api)
		return
	}
	resp := voice.Response{ResultCode: voice.CodeSuccess, ResultDesc: "Success", SessionID: c.id}
	if wantIdlePort {
		resp.IdlePort = &idlePorts
	}
	s.metrics.requests.WithLabelValues(c.api, voice.CodeSuccess).Inc()
	writeJSON(w, http.StatusOK, resp)
}

// scenarioFor picks the scenario of an accepted call: its suffix script, else the dice of
// RandomMode, else answered.
func (s *Simulator) scenarioFor(sfx string) Scenario {
	if sc, ok := scriptedScenario[sfx]; ok {
		return sc
	}
	if s.outcomes == nil {
		return ScenarioAnswered
	}
	rm := s.cfg.Random
	x := s.outcomes.float()
	for _, o := range []struct {
		p  float64
		sc Scenario
	}{
		{rm.Busy, ScenarioBusy}, {rm.NoAnswer, ScenarioNoAnswer}, {rm.Rejected, ScenarioRejected},
		{rm.PoweredOff, ScenarioPoweredOff}, {rm.NetworkFailure, ScenarioNetworkFailure},
	} {
		if x < o.p {
			return o.sc
		}
		x -= o.p
	}
	return ScenarioAnswered
}

// idlePortsLocked is the `idlePort` of a reply: free ports, or 65535 when ports are unlimited.
func (s *Simulator) idlePortsLocked() int {
	if s.cfg.Ports == 0 {
		return 65535
	}
	return max(s.cfg.Ports-s.ports, 0)
}

// releasePortLocked frees a call's port once.
func (s *Simulator) releasePortLocked(c *call) {
	delete(s.active, c.id)
	if c.portHeld {
		c.portHeld = false
		s.ports--
		s.metrics.active.Dec()
	}
}

// holdReply keeps the reply of a "0408" call back until ReplyTimeoutHold passes, the client goes
// away or the simulator closes, then drops the connection without any reply: the client cannot
// tell whether the call was placed (it was).
func (s *Simulator) holdReply(w http.ResponseWriter, r *http.Request, api string) {
	t := time.NewTimer(s.cfg.ReplyTimeoutHold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	case <-s.ctx.Done():
	}
	s.metrics.requests.WithLabelValues(api, "held").Inc()
	dropConnection(w, false)
}

// dropConnection closes the client's connection without a reply; reset sends a TCP RST instead
// of a FIN. Without a hijackable connection it aborts the handler, which also sends nothing.
func dropConnection(w http.ResponseWriter, reset bool) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok && reset {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// serveCallStop ends an active click-to-call session (ref §5.1): the call's goroutine then pushes
// the disconnect (8017) and the CDR (ulFailReason 1003).
func (s *Simulator) serveCallStop(w http.ResponseWriter, r *http.Request) {
	body, rej := readBody(w, r)
	var req voice.CallStopRequest
	if rej == nil {
		req, rej = parseCallStop(body)
	}
	if rej != nil {
		s.replyError(w, APICallStop, rej)
		return
	}
	s.mu.Lock()
	c := s.active[req.SessionID]
	if c == nil || c.api != APIClick2Call || c.ended || c.stopRequested {
		s.mu.Unlock()
		rej = reject(s.cfg.StopUnknownSessionCode)
		if s.cfg.StopUnknownSessionCode == voice.CodeInvalidRequest {
			rej = invalidParam("sessionid")
		}
		s.replyError(w, APICallStop, rej)
		return
	}
	c.stopRequested = true
	close(c.stop)
	s.stats.stops++
	s.mu.Unlock()
	s.log.Info("call stop requested", "session_id", c.id)
	s.metrics.requests.WithLabelValues(APICallStop, voice.CodeSuccess).Inc()
	writeJSON(w, http.StatusOK, voice.Response{ResultCode: voice.CodeSuccess, ResultDesc: "Success"})
}

// serveRecord answers the recording-URL API (ref §5.2): 301 + Location for a known recording,
// JSON 1016001 otherwise.
func (s *Simulator) serveRecord(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, name := range []string{"fileName", "recordDomain"} {
		if n := len([]rune(q.Get(name))); n < 1 || n > 128 {
			s.replyError(w, APIRecord, invalidParam(name))
			return
		}
	}
	file, domain := q.Get("fileName"), q.Get("recordDomain")
	s.mu.Lock()
	known, ok := s.recordings[file]
	s.mu.Unlock()
	if !ok || known != domain {
		s.replyError(w, APIRecord, reject(voice.CodeRecordNotFound))
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	s.metrics.requests.WithLabelValues(APIRecord, voice.CodeSuccess).Inc()
	w.Header().Set("Location", scheme+"://"+r.Host+"/sim/recordings/"+url.PathEscape(file))
	w.WriteHeader(http.StatusMovedPermanently)
}

// replyError answers a refused request with its code, the HTTP status of the code table and the
// JSON envelope (ref §1.5), and counts it.
func (s *Simulator) replyError(w http.ResponseWriter, api string, rej *rejection) {
	status := http.StatusBadRequest
	if info, ok := voice.LookupCode(rej.code); ok {
		status = info.HTTPStatus
	}
	s.countRefusal(rej.code)
	s.metrics.requests.WithLabelValues(api, rej.code).Inc()
	writeJSON(w, status, voice.Response{ResultCode: rej.code, ResultDesc: rej.desc})
}

// writeJSON writes v as the platform's JSON content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode reply", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", voice.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// serveSim serves the simulator's own endpoints.
func (s *Simulator) serveSim(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	method := http.MethodGet
	switch {
	case path == "/sim/reset", path == "/sim/outage":
		method = http.MethodPost
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch {
	case path == "/sim/calls":
		writeJSON(w, http.StatusOK, s.Calls())
	case path == "/sim/stats":
		writeJSON(w, http.StatusOK, s.Stats())
	case path == "/sim/reset":
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case path == "/sim/outage":
		if err := s.outageFromQuery(r.URL.Query()); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(path, "/sim/recordings/"):
		s.serveRecording(w, strings.TrimPrefix(path, "/sim/recordings/"))
	default:
		http.NotFound(w, r)
	}
}

// outageFromQuery applies POST /sim/outage?mode=…&on=…[&for=…].
func (s *Simulator) outageFromQuery(q url.Values) error {
	mode := q.Get("mode")
	on, err := strconv.ParseBool(q.Get("on"))
	if err != nil {
		return errors.New("on must be true or false")
	}
	var d time.Duration
	if f := q.Get("for"); f != "" {
		if d, err = time.ParseDuration(f); err != nil || d <= 0 {
			return errors.New("for must be a positive duration")
		}
	}
	if err := s.setOutage(mode, on); err != nil {
		return err
	}
	if on && d > 0 {
		s.mu.Lock()
		if t := s.offTimers[mode]; t != nil {
			t.Stop()
		}
		if !s.closed {
			s.offTimers[mode] = time.AfterFunc(d, func() { _ = s.setOutage(mode, false) })
		}
		s.mu.Unlock()
	}
	return nil
}

// Reset forgets the call records, the counters, the "0503" memory, the recordings and the rate
// window. Calls in flight go on; Prometheus counters are never reset.
func (s *Simulator) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStatsState(s.cfg.MaxRecords)
	s.seen503 = make(map[string]bool)
	s.recordings = make(map[string]string)
	s.rate = newRateWindow(s.cfg.Rate)
}
