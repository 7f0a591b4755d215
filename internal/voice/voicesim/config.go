package voicesim

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/voicequeue/voicequeue/internal/voice"
)

// Defaults of the Config fields that are left zero.
const (
	DefaultSpeed            = 1.0
	DefaultSkewWindow       = 5 * time.Minute  // ref §1.3: not published; our suggestion
	DefaultReplyTimeoutHold = 30 * time.Second // how long a "0408" reply is held
	DefaultPushTimeout      = 5 * time.Second  // ref §8: not published
	DefaultCDRRetryInterval = time.Hour        // ref §7.4, simulated time (scaled by Speed)
	DefaultMaxCDRRetries    = 6                // ref §7.4
	DefaultCDRMergeWindow   = time.Second      // simulated time (scaled by Speed)
	DefaultMaxRecords       = 100_000
	DefaultSpID             = "sp_voicesim"
)

// Config configures a Simulator. Zero values take the defaults above; New validates the result.
//
// Time comes in two kinds. Platform-internal durations (call timings, CDRRetryInterval,
// CDRMergeWindow) are simulated time: the simulator waits d/Speed of wall time for them. HTTP-level
// durations (Faults.Latency, Faults.DelayPushes, PushTimeout, ReplyTimeoutHold, outage windows)
// and the Rate window are wall time and are never scaled.
type Config struct {
	// AppKey and AppSecret are the one application the simulated platform knows (ref §1.2).
	AppKey, AppSecret string
	// SpID is the `spId` of CDRs (default "sp_voicesim").
	SpID string
	// DisplayNumbers are the app's fixed-line numbers, the only valid `displayNbr` and
	// `displayCalleeNbr` (1010023). Empty accepts any well-formed number (+ and 3–30 digits).
	DisplayNumbers []string
	// Rate caps accepted calls per second for the account (1013001 beyond it); 0 = unlimited.
	// The window is strict and sliding: at most ceil(Rate) calls are accepted in any window of
	// ceil(Rate)/Rate seconds, which for a whole Rate is "never more than Rate in any second".
	Rate float64
	// Ports caps concurrent calls (1020165 beyond it); 0 = unlimited. A call holds one port from
	// the moment it is accepted until its disconnect (a click-to-call session holds one port).
	Ports int
	// Speed scales simulated time: 1 = real time, 10 = ten times faster (default 1).
	Speed float64
	// SkewWindow is the largest allowed difference between `Created` and the simulator's clock
	// (default 5 min); beyond it a request gets 1010013.
	SkewWindow time.Duration
	// RecordingEnabled says the app was created with recording; otherwise a click-to-call with
	// recordFlag "true" gets 1012012.
	RecordingEnabled bool
	// ReplyTimeoutHold is how long the reply to a "0408" callee is held before the connection is
	// closed without any reply (default 30 s); it ends early when the client goes away.
	ReplyTimeoutHold time.Duration
	// SignPushes adds Authorization and X-AKSK headers to pushes (ref §8, newer doc versions),
	// with PushDigest over pushURL+"\n"+nonce+"\n"+created when PushNewlineDigest is set and over
	// the plain concatenation (the earlier variant) otherwise. Default: pushes carry no auth.
	SignPushes        bool
	PushNewlineDigest bool
	// PushTimeout bounds each push request (default 5 s).
	PushTimeout time.Duration
	// CDRRetryInterval is the simulated time between CDR re-pushes (default 1 h, as the platform;
	// the wall wait is CDRRetryInterval/Speed). MaxCDRRetries is the number of re-pushes after a
	// failed first push (0 = default 6; negative = none).
	CDRRetryInterval time.Duration
	MaxCDRRetries    int
	// CDRMergeWindow is how long (simulated) a CDR waits for others with the same push URL and the
	// same `callEndTime` second before it is pushed; a batch is sent at once when it holds 50.
	CDRMergeWindow time.Duration
	// UnixTimestamps sends the status-push `timestamp` as UNIX seconds (demo-code reading) instead
	// of "yyyy-MM-dd HH:mm:ss" in UTC (the official examples).
	UnixTimestamps bool
	// ClickToCallDisconnectPerLeg sends one disconnect per dialled leg (B first, then A) instead of
	// one per session (ref §6.2 ❓).
	ClickToCallDisconnectPerLeg bool
	// StopUnknownSessionCode answers callStop on an unknown or ended session (default "1010002").
	StopUnknownSessionCode string
	// Templates maps approved TTS template IDs to their text, e.g. "验证码${NUM_6}". When set,
	// unknown IDs get 1012003, a wrong parameter count 1012004 and a parameter that does not fit
	// its variable 1012005. Nil accepts any template ID with parameters of at most 32 bytes.
	Templates map[string]string
	// AllowAnyURLChars turns off the check that decoded push URLs use only the documented
	// characters (letters, digits and - : . / _ # ? &, ref §8 ◐).
	AllowAnyURLChars bool
	// MaxRecords bounds the call records kept for Calls and /sim/calls (default 100 000); the
	// oldest are dropped first. Stats counters are never dropped.
	MaxRecords int
	// Random, when set, draws the outcome of every callee without a scripted suffix.
	Random *RandomMode
	// Faults injects latency, errors, outages and push trouble.
	Faults Faults

	// Now is the clock for `Created` checks, the Rate window, outage windows, session IDs and the
	// times in pushes (default time.Now).
	Now func() time.Time
	// Logger receives the simulator's logs (nil = discard). Phone numbers are masked.
	Logger *slog.Logger
	// Registerer, when set, gets the voicequeue_sim_* metrics; if it is also a
	// prometheus.Gatherer (a *prometheus.Registry is) the Handler serves it at /metrics.
	Registerer prometheus.Registerer
	// HTTPClient sends pushes (default: a client of its own, closed by Close).
	HTTPClient *http.Client
}

// RandomMode gives the probability of each unsuccessful outcome for callees without a scripted
// suffix; the rest are answered. The probabilities must add up to at most 1. Seed 0 means 1, so a
// run is reproducible unless a seed is chosen.
type RandomMode struct {
	Busy, NoAnswer, Rejected, PoweredOff, NetworkFailure float64
	Seed                                                 int64
}

// Faults are failures injected on purpose for chaos and load tests. Probabilities are in [0, 1].
type Faults struct {
	// Latency is added before every API reply (wall time).
	Latency time.Duration
	// ErrorRate is the probability that an authenticated request gets 1010001 (HTTP 500).
	ErrorRate float64
	// Outages are windows, as offsets from New, during which API paths are down.
	Outages []Outage
	// FlowControlRate is the probability that a valid call request gets 1010010.
	FlowControlRate float64
	// DuplicatePushes is the probability that a push is sent twice.
	DuplicatePushes float64
	// ReorderPushes is the probability that a status push is held back and sent after the next
	// push of the same call (after the CDR, for the last disconnect).
	ReorderPushes float64
	// DelayPushes delays each push by a random wall duration in [0, DelayPushes].
	DelayPushes time.Duration
	// Seed seeds the fault dice (0 means 1).
	Seed int64
}

// Outage modes.
const (
	// Outage503 answers every API request with a plain HTTP 503 (no JSON), like a load balancer
	// in front of a platform that is down.
	Outage503 = "503"
	// OutageRefuse drops every API connection without a reply. In-process this can only reset
	// the connection after the request was read; real refused connections (nothing sent) need
	// the listener closed, which cmd/voicesim does for the duration of the outage.
	OutageRefuse = "refuse"
)

// Outage is an outage window [Start, End) measured from New, in wall time.
type Outage struct {
	Start, End time.Duration
	Mode       string // Outage503 or OutageRefuse
}

// withDefaults returns the config with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.SpID == "" {
		c.SpID = DefaultSpID
	}
	if c.Speed == 0 {
		c.Speed = DefaultSpeed
	}
	if c.SkewWindow == 0 {
		c.SkewWindow = DefaultSkewWindow
	}
	if c.ReplyTimeoutHold == 0 {
		c.ReplyTimeoutHold = DefaultReplyTimeoutHold
	}
	if c.PushTimeout == 0 {
		c.PushTimeout = DefaultPushTimeout
	}
	if c.CDRRetryInterval == 0 {
		c.CDRRetryInterval = DefaultCDRRetryInterval
	}
	switch {
	case c.MaxCDRRetries == 0:
		c.MaxCDRRetries = DefaultMaxCDRRetries
	case c.MaxCDRRetries < 0:
		c.MaxCDRRetries = 0
	}
	if c.CDRMergeWindow == 0 {
		c.CDRMergeWindow = DefaultCDRMergeWindow
	}
	if c.StopUnknownSessionCode == "" {
		c.StopUnknownSessionCode = voice.CodeInvalidRequest
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports every problem of a defaulted config at once.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.AppKey == "" {
		bad("app key is empty")
	}
	if c.AppSecret == "" {
		bad("app secret is empty")
	}
	for _, n := range c.DisplayNumbers {
		if !wellFormedNumber(n) {
			bad("display number %q is not + and 3-30 digits", n)
		}
	}
	if c.Rate < 0 {
		bad("rate %v is negative", c.Rate)
	}
	if c.Ports < 0 {
		bad("ports %d is negative", c.Ports)
	}
	if c.Speed <= 0 {
		bad("speed %v must be positive", c.Speed)
	}
	for name, d := range map[string]time.Duration{
		"skew window": c.SkewWindow, "reply timeout hold": c.ReplyTimeoutHold,
		"push timeout": c.PushTimeout, "CDR retry interval": c.CDRRetryInterval,
		"CDR merge window": c.CDRMergeWindow, "latency": c.Faults.Latency,
		"delay pushes": c.Faults.DelayPushes,
	} {
		if d < 0 {
			bad("%s %v is negative", name, d)
		}
	}
	if c.MaxRecords < 0 {
		bad("max records %d is negative", c.MaxRecords)
	}
	for name, p := range map[string]float64{
		"error rate": c.Faults.ErrorRate, "flow control rate": c.Faults.FlowControlRate,
		"duplicate pushes": c.Faults.DuplicatePushes, "reorder pushes": c.Faults.ReorderPushes,
	} {
		if p < 0 || p > 1 {
			bad("%s %v is not a probability", name, p)
		}
	}
	for i, o := range c.Faults.Outages {
		if o.Mode != Outage503 && o.Mode != OutageRefuse {
			bad("outage %d: mode %q is not %q or %q", i, o.Mode, Outage503, OutageRefuse)
		}
		if o.Start < 0 || o.End <= o.Start {
			bad("outage %d: window %v-%v is empty or negative", i, o.Start, o.End)
		}
	}
	if r := c.Random; r != nil {
		sum := 0.0
		for _, p := range []float64{r.Busy, r.NoAnswer, r.Rejected, r.PoweredOff, r.NetworkFailure} {
			if p < 0 || p > 1 {
				bad("random probability %v is not a probability", p)
			}
			sum += p
		}
		if sum > 1+1e-9 {
			bad("random probabilities add up to %v, more than 1", sum)
		}
	}
	for id, text := range c.Templates {
		if _, err := parseTemplate(text); err != nil {
			bad("template %q: %w", id, err)
		}
	}
	return errors.Join(errs...)
}
