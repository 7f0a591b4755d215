// Package app wires voicequeue's components into the gateway and the worker, and into the
// embedded demo that runs both (with miniredis and the simulator) in one process. The binaries in
// cmd/ only parse configuration and call into it.
package app

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/voicequeue/voicequeue/internal/config"
	"github.com/voicequeue/voicequeue/internal/queue"
)

// Config holds every setting of the gateway and the worker. Bind registers them as flags with
// environment-variable defaults; the README lists them.
type Config struct {
	RedisURL      string
	ProviderURL   string
	ProviderCA    string
	AppKey        string
	AppSecret     string
	DisplayNumber string
	PushBaseURL   string
	PushSecret    string
	APITokens     string
	UserDataKey   string
	WebhookKey    string
	CodeKey       string

	HTTPAddr  string
	AdminAddr string

	DefaultRegion   string
	Concurrency     int
	MaxAttempts     int
	Retention       time.Duration
	ShutdownTimeout time.Duration
	ProviderTimeout time.Duration
	RateBackoff     time.Duration
	DialResolve     time.Duration
	VerifyPreTone   string
	VerifyPosTone   string
	VerifyTimes     int
	CodeLength      int
	CallbackAllow   string

	TaskCheckInterval        time.Duration
	VerifyTaskCheckInterval  time.Duration
	DelayedTaskCheckInterval time.Duration

	CallRate           float64
	CallBurst          int
	RateReserve        float64
	RateMargin         float64
	RateDecrease       float64
	MaxConcurrentCalls int
	LimitMaxWait       time.Duration
	SlotLease          time.Duration
	CalleeCaps         map[string]*string
	Windows            map[string]*string
	Redials            map[string]*int
	RedialDelays       map[string]*time.Duration

	LogLevel  string
	LogFormat string

	UI          bool
	UIReadWrite bool

	SpoolDir      string
	SpoolMaxBytes int

	BreakerThreshold   int
	BreakerCooldown    time.Duration
	BreakerMaxCooldown time.Duration
}

// Bind registers the settings on set. role is "gateway" or "worker" and only changes defaults.
func Bind(set *config.Set, role string) *Config {
	c := &Config{}
	set.String(&c.RedisURL, "redis-url", "REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL (redis://, rediss://; see README for Sentinel and Cluster)")
	set.String(&c.ProviderURL, "provider-url", "VOICEQUEUE_PROVIDER_URL", "", "provider base URL (APP access address), e.g. https://rtccall.cn-north-1.myhuaweicloud.cn:443")
	set.String(&c.ProviderCA, "provider-ca-file", "VOICEQUEUE_PROVIDER_CA_FILE", "", "extra CA bundle (PEM) for a private provider deployment; TLS verification stays on")
	set.String(&c.AppKey, "app-key", "VOICEQUEUE_APP_KEY", "", "provider APP_Key")
	set.Secret(&c.AppSecret, "VOICEQUEUE_APP_SECRET", "provider APP_Secret")
	set.String(&c.DisplayNumber, "display-number", "VOICEQUEUE_DISPLAY_NUMBER", "", "the app's fixed-line number shown to callees, exactly as in the console (+86755…)")
	set.String(&c.PushBaseURL, "push-base-url", "VOICEQUEUE_PUSH_BASE_URL", "", "public base URL of the gateway that the provider pushes to; statusUrl/feeUrl are built from it")
	set.Secret(&c.PushSecret, "VOICEQUEUE_PUSH_SECRET", "secret path element of the push URLs (letters and digits); also derives the other keys when they are not set")
	set.Secret(&c.APITokens, "VOICEQUEUE_API_TOKEN", "producer bearer tokens, comma-separated (several during a rotation)")
	set.Secret(&c.UserDataKey, "VOICEQUEUE_USERDATA_KEY", "key of the HMAC tag on the job reference in userData (default: derived from the push secret)")
	set.Secret(&c.WebhookKey, "VOICEQUEUE_WEBHOOK_SECRET", "key that signs producer webhooks (default: derived from the push secret, see docs/webhooks.md)")
	set.Secret(&c.CodeKey, "VOICEQUEUE_CODE_KEY", "key that seals verification codes in task payloads (default: derived from the push secret)")
	set.String(&c.HTTPAddr, "http-addr", "VOICEQUEUE_HTTP_ADDR", ":8080", "gateway listen address (API and pushes)")
	admin := ":9090"
	if role == "worker" {
		admin = ":9091"
	}
	set.String(&c.AdminAddr, "admin-addr", "VOICEQUEUE_ADMIN_ADDR", admin, "admin listen address: /healthz, /readyz, /metrics")
	set.String(&c.DefaultRegion, "default-region", "VOICEQUEUE_DEFAULT_REGION", "CN", "region for numbers written without a country code")
	set.Int(&c.Concurrency, "concurrency", "VOICEQUEUE_CONCURRENCY", 50, "worker: tasks processed at once")
	set.Int(&c.MaxAttempts, "max-attempts", "VOICEQUEUE_MAX_ATTEMPTS", 5, "provider requests per job for transient failures")
	set.Duration(&c.Retention, "retention", "VOICEQUEUE_RETENTION", 7*24*time.Hour, "how long job records are kept")
	set.Duration(&c.ShutdownTimeout, "shutdown-timeout", "VOICEQUEUE_SHUTDOWN_TIMEOUT", 20*time.Second, "grace period for in-flight work on SIGTERM")
	set.Duration(&c.ProviderTimeout, "provider-timeout", "VOICEQUEUE_PROVIDER_TIMEOUT", 10*time.Second, "total timeout of one provider request")
	set.Duration(&c.RateBackoff, "rate-backoff", "VOICEQUEUE_RATE_BACKOFF", time.Minute, "delay after a rate-class provider reply (quota, flow control, ports)")
	set.Duration(&c.DialResolve, "dial-resolve-timeout", "VOICEQUEUE_DIAL_RESOLVE_TIMEOUT", 2*time.Minute, "how long a redelivered task whose dial was recorded waits for pushes before the job ends unknown")
	set.String(&c.VerifyPreTone, "verify-pre-tone", "VOICEQUEUE_VERIFY_PRE_TONE", "verify_pre.wav", "approved voice file played before a verification code")
	set.String(&c.VerifyPosTone, "verify-pos-tone", "VOICEQUEUE_VERIFY_POS_TONE", "", "approved voice file played after a verification code (optional)")
	set.Int(&c.VerifyTimes, "verify-times", "VOICEQUEUE_VERIFY_TIMES", 3, "how many times a verification code is read out (1-9)")
	set.Int(&c.CodeLength, "code-length", "VOICEQUEUE_CODE_LENGTH", 6, "length of generated verification codes (2-8)")
	set.String(&c.CallbackAllow, "callback-allow-cidrs", "VOICEQUEUE_CALLBACK_ALLOW_CIDRS", "", "comma-separated CIDRs that callback_url may reach although private (default: none)")
	set.Duration(&c.TaskCheckInterval, "task-check-interval", "VOICEQUEUE_TASK_CHECK_INTERVAL", 50*time.Millisecond, "asynq: how often an idle worker polls for tasks")
	set.Duration(&c.VerifyTaskCheckInterval, "verify-task-check-interval", "VOICEQUEUE_VERIFY_TASK_CHECK_INTERVAL", 10*time.Millisecond, "asynq: how often the idle verify server polls for tasks (a person waits for the call)")
	set.Duration(&c.DelayedTaskCheckInterval, "delayed-task-check-interval", "VOICEQUEUE_DELAYED_TASK_CHECK_INTERVAL", 200*time.Millisecond, "asynq: how often scheduled and retry tasks are moved to their queue")
	set.Float(&c.CallRate, "call-rate", "VOICEQUEUE_CALL_RATE", 10, "calls per second for the account, shared by all workers (0 = no limit)")
	set.Int(&c.CallBurst, "call-burst", "VOICEQUEUE_CALL_BURST", 1, "calls that may start back to back above the rate; 1 = strict spacing")
	set.Float(&c.RateReserve, "rate-reserve", "VOICEQUEUE_RATE_RESERVE", 0.5, "share of the burst that bulk jobs leave free for verify jobs, in [0, 1)")
	set.Float(&c.RateMargin, "rate-margin", "VOICEQUEUE_RATE_MARGIN", 0.03, "run the limiter this share under VOICEQUEUE_CALL_RATE, so that network jitter never puts one call too many in the provider's one-second window")
	set.Float(&c.RateDecrease, "rate-decrease", "VOICEQUEUE_RATE_DECREASE", 0.95, "factor the effective rate is multiplied by after a provider rate reply (recovers after 10 s)")
	set.Int(&c.MaxConcurrentCalls, "max-concurrent-calls", "VOICEQUEUE_MAX_CONCURRENT_CALLS", 10, "calls in progress at once for the account (provider call ports; 0 = no limit)")
	set.Duration(&c.LimitMaxWait, "limit-max-wait", "VOICEQUEUE_LIMIT_MAX_WAIT", 500*time.Millisecond, "longest a worker waits for a rate token before rescheduling the job (at most 1s)")
	set.Duration(&c.SlotLease, "call-slot-lease", "VOICEQUEUE_CALL_SLOT_LEASE", 30*time.Minute, "a call slot whose end is never reported is freed after this long")
	c.CalleeCaps = map[string]*string{}
	c.Windows = map[string]*string{}
	for _, g := range []struct{ name, caps, window string }{
		{"verify", "1/60s,5/1h", ""},
		{"notify", "3/24h,10/720h", DefaultCallingWindow},
		{"bulk", "3/24h,10/720h", DefaultCallingWindow},
		{"click2call", "", ""},
	} {
		upper := strings.ToUpper(g.name)
		caps, window := new(string), new(string)
		set.String(caps, "callee-caps-"+g.name, "VOICEQUEUE_CALLEE_CAPS_"+upper, g.caps, "per-callee caps for "+g.name+" jobs, e.g. 3/24h,10/720h (\"off\" = none)")
		set.String(window, "calling-window-"+g.name, "VOICEQUEUE_CALLING_WINDOW_"+upper, g.window, "local-time window in which "+g.name+" jobs dial, e.g. 08:00-21:00 (\"off\" = any time)")
		c.CalleeCaps[g.name], c.Windows[g.name] = caps, window
	}
	c.Redials, c.RedialDelays = map[string]*int{}, map[string]*time.Duration{}
	for _, g := range []string{"notify", "bulk"} {
		upper := strings.ToUpper(g)
		n, d := new(int), new(time.Duration)
		set.Int(n, "redials-"+g, "VOICEQUEUE_REDIALS_"+upper, 0, "how many times a busy or unanswered "+g+" job is called again (0 = never)")
		set.Duration(d, "redial-delay-"+g, "VOICEQUEUE_REDIAL_DELAY_"+upper, 10*time.Minute, "delay before each redial of a "+g+" job")
		c.Redials[g], c.RedialDelays[g] = n, d
	}
	set.Bool(&c.UI, "ui", "VOICEQUEUE_UI", true, "gateway: serve the asynq queue UI at /ui/ (behind the producer token)")
	set.Bool(&c.UIReadWrite, "ui-read-write", "VOICEQUEUE_UI_READ_WRITE", false, "gateway: let the queue UI pause queues and run, archive or delete tasks")
	set.String(&c.SpoolDir, "spool-dir", "VOICEQUEUE_SPOOL_DIR", "", "gateway: directory of the durable push spool used while Redis is unreachable, one per gateway process (default: voicequeue-spool-<port> in the temp dir; \"off\" disables it)")
	set.Int(&c.SpoolMaxBytes, "spool-max-bytes", "VOICEQUEUE_SPOOL_MAX_BYTES", 64<<20, "gateway: size bound of the push spool; when full, pushes are answered 503")
	set.Int(&c.BreakerThreshold, "breaker-threshold", "VOICEQUEUE_BREAKER_THRESHOLD", 10, "worker: consecutive transient provider failures that pause dialling")
	set.Duration(&c.BreakerCooldown, "breaker-cooldown", "VOICEQUEUE_BREAKER_COOLDOWN", 10*time.Second, "worker: first pause after the breaker trips (doubles while the provider stays down)")
	set.Duration(&c.BreakerMaxCooldown, "breaker-max-cooldown", "VOICEQUEUE_BREAKER_MAX_COOLDOWN", 2*time.Minute, "worker: longest pause of the breaker")
	set.String(&c.LogLevel, "log-level", "VOICEQUEUE_LOG_LEVEL", "info", "debug, info, warn or error")
	set.String(&c.LogFormat, "log-format", "VOICEQUEUE_LOG_FORMAT", "json", "json or text")
	return c
}

// RedialPolicies returns the redial policy per group.
func (c *Config) RedialPolicies() queue.RedialPolicies {
	p := queue.RedialPolicies{}
	for g, n := range c.Redials {
		if n != nil && *n > 0 {
			d := 10 * time.Minute
			if c.RedialDelays[g] != nil {
				d = *c.RedialDelays[g]
			}
			p[g] = queue.RedialPolicy{Max: *n, Delay: d}
		}
	}
	return p
}

// SpoolPath returns the push spool directory ("" when disabled): VOICEQUEUE_SPOOL_DIR, or a
// directory named after the gateway's listen address in the temp dir, so that two gateways on
// one host never share one.
func (c *Config) SpoolPath() string {
	switch c.SpoolDir {
	case "off":
		return ""
	case "":
		return filepath.Join(os.TempDir(), "voicequeue-spool-"+unsafePath.ReplaceAllString(c.HTTPAddr, "_"))
	default:
		return c.SpoolDir
	}
}

var unsafePath = regexp.MustCompile(`[^A-Za-z0-9.-]`)

// Keys derived from the configuration.
type Keys struct {
	Callee   []byte
	UserData []byte
	Webhook  []byte
	Code     []byte
}

// Keys returns the configured keys, deriving each missing one from the push secret.
func (c *Config) Keys() Keys {
	pick := func(explicit, purpose string) []byte {
		if explicit != "" {
			return queue.DeriveKey(explicit, purpose)
		}
		return queue.DeriveKey(c.PushSecret, purpose)
	}
	// Producers verify webhooks with the key themselves, so an explicit webhook secret is used as
	// given; only the fallback is derived (see docs/webhooks.md for how to compute it).
	webhookKey := []byte(c.WebhookKey)
	if c.WebhookKey == "" {
		webhookKey = queue.DeriveKey(c.PushSecret, "webhook")
	}
	return Keys{Callee: pick(c.UserDataKey, "callee"), UserData: pick(c.UserDataKey, "userdata"), Webhook: webhookKey, Code: pick(c.CodeKey, "code")}
}

// Tokens returns the producer tokens.
func (c *Config) Tokens() []string { return config.List(c.APITokens) }

// AllowCIDRs parses the callback allow-list.
func (c *Config) AllowCIDRs() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range config.List(c.CallbackAllow) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("VOICEQUEUE_CALLBACK_ALLOW_CIDRS: %q: %w", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// PushURLs returns the status and CDR push URLs.
func (c *Config) PushURLs() (status, fee string) {
	base := strings.TrimRight(c.PushBaseURL, "/")
	return base + "/callbacks/" + c.PushSecret + "/status", base + "/callbacks/" + c.PushSecret + "/fee"
}

// maxEncodedURL is the longest Base64 statusUrl/feeUrl the provider accepts (ref §2.1).
const maxEncodedURL = 128

// DefaultCallingWindow is when notify and bulk jobs dial unless configured otherwise: local time
// of the callee's zone.
const DefaultCallingWindow = "08:00-21:00"

// ValidateGateway checks what the gateway needs.
func (c *Config) ValidateGateway(dev bool) error {
	var errs []error
	if c.RedisURL == "" {
		errs = append(errs, errors.New("REDIS_URL is required"))
	}
	if err := validSecret(c.PushSecret); err != nil {
		errs = append(errs, err)
	}
	if len(c.Tokens()) == 0 && !dev {
		errs = append(errs, errors.New("VOICEQUEUE_API_TOKEN is required (producer bearer token, at least 16 characters)"))
	}
	if _, err := c.AllowCIDRs(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValidateWorker checks what the worker needs.
func (c *Config) ValidateWorker() error {
	var errs []error
	if c.RedisURL == "" {
		errs = append(errs, errors.New("REDIS_URL is required"))
	}
	if u, err := url.Parse(c.ProviderURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("VOICEQUEUE_PROVIDER_URL must be the provider's base URL, e.g. https://rtccall.cn-north-1.myhuaweicloud.cn:443"))
	}
	if c.AppKey == "" || c.AppSecret == "" {
		errs = append(errs, errors.New("VOICEQUEUE_APP_KEY and VOICEQUEUE_APP_SECRET are required"))
	}
	if !strings.HasPrefix(c.DisplayNumber, "+") || len(c.DisplayNumber) < 4 || len(c.DisplayNumber) > 31 {
		errs = append(errs, errors.New("VOICEQUEUE_DISPLAY_NUMBER must be the app's fixed-line number in +cc… form"))
	}
	if err := validSecret(c.PushSecret); err != nil {
		errs = append(errs, err)
	}
	if u, err := url.Parse(c.PushBaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, errors.New("VOICEQUEUE_PUSH_BASE_URL must be the public http(s) base URL of the gateway"))
	} else {
		status, fee := c.PushURLs()
		for _, p := range []string{status, fee} {
			if n := base64.StdEncoding.EncodedLen(len(p)); n > maxEncodedURL {
				errs = append(errs, fmt.Errorf("push URL %s… is %d characters once Base64-encoded; the provider accepts at most %d: shorten VOICEQUEUE_PUSH_BASE_URL or the push secret",
					c.PushBaseURL, n, maxEncodedURL))
				break
			}
		}
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("VOICEQUEUE_CONCURRENCY must be at least 1"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, errors.New("VOICEQUEUE_MAX_ATTEMPTS must be at least 1"))
	}
	if c.VerifyTimes < 1 || c.VerifyTimes > 9 {
		errs = append(errs, errors.New("VOICEQUEUE_VERIFY_TIMES must be 1 to 9"))
	}
	return errors.Join(errs...)
}

// validSecret checks the push secret: it is a URL path element, and the provider allows only
// letters, digits and a few symbols in push URLs (ref §8).
func validSecret(s string) error {
	if len(s) < 16 {
		return errors.New("VOICEQUEUE_PUSH_SECRET is required: at least 16 letters and digits")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return errors.New("VOICEQUEUE_PUSH_SECRET may hold only letters and digits (it is part of the push URL)")
		}
	}
	return nil
}
