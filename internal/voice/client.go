package voice

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultConnectTimeout = 3 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// Body size limits: platform replies are a few hundred bytes.
const (
	maxReplyBody = 1 << 20 // read at most this much of a reply
	maxDrainBody = 4 << 20 // then discard at most this much more before closing
)

// Config configures a Client. The zero values of the optional fields select the defaults.
type Config struct {
	// BaseURL is the app's access address ("APP接入地址", ref §1.1), e.g.
	// https://rtccall.cn-north-1.myhuaweicloud.cn:443. http:// is allowed for the simulator and
	// tests; a path prefix is kept in front of the API paths.
	BaseURL   string
	AppKey    string
	AppSecret string // never logged, never in an error

	// HTTPClient replaces the client built from ConnectTimeout and CAFile (which must then be
	// empty). It is copied, and the copy never follows redirects.
	HTTPClient *http.Client
	// ConnectTimeout bounds the TCP connect and the TLS handshake (default 3 s).
	ConnectTimeout time.Duration
	// RequestTimeout bounds each call from start to the end of the reply body (default 10 s).
	RequestTimeout time.Duration
	// CAFile is a PEM bundle trusted in addition to the system roots, for private deployments.
	// TLS verification is always on.
	CAFile string

	// Now is the clock for `Created` (default time.Now).
	Now func() time.Time
	// Logger receives one debug record per call (default: discard). Numbers are masked; secrets,
	// codes and query strings are never logged.
	Logger *slog.Logger
}

// Validate checks the configuration without touching the network or the file system.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "":
		return errors.New("voice config: BaseURL is required")
	case err != nil:
		return fmt.Errorf("voice config: parse BaseURL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("voice config: BaseURL scheme %q, want http or https", u.Scheme)
	case u.Host == "":
		return errors.New("voice config: BaseURL has no host")
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return errors.New("voice config: BaseURL must not carry a query, fragment or user info")
	case c.AppKey == "":
		return errors.New("voice config: AppKey is required")
	case strings.ContainsAny(c.AppKey, "\"\r\n"):
		return errors.New("voice config: AppKey contains a quote or line break")
	case c.AppSecret == "":
		return errors.New("voice config: AppSecret is required")
	case c.ConnectTimeout < 0 || c.RequestTimeout < 0:
		return errors.New("voice config: timeouts must not be negative")
	case c.HTTPClient != nil && c.CAFile != "":
		return errors.New("voice config: CAFile cannot be combined with HTTPClient")
	}
	return nil
}

// Client calls the Voice Call REST API (ref §1–§5). It is safe for concurrent use.
type Client struct {
	base           *url.URL
	appKey         string
	appSecret      string
	http           *http.Client
	requestTimeout time.Duration
	now            func() time.Time
	log            *slog.Logger
}

// NewClient validates cfg, applies the defaults and builds the HTTP client.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, _ := url.Parse(cfg.BaseURL) // checked by Validate
	base.Path = strings.TrimRight(base.Path, "/")
	base.RawPath = ""

	c := &Client{
		base:           base,
		appKey:         cfg.AppKey,
		appSecret:      cfg.AppSecret,
		requestTimeout: orDefault(cfg.RequestTimeout, DefaultRequestTimeout),
		now:            cfg.Now,
		log:            cfg.Logger,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "voice")

	if cfg.HTTPClient != nil {
		hc := *cfg.HTTPClient
		hc.CheckRedirect = noRedirect
		c.http = &hc
		return c, nil
	}
	tr, err := newTransport(orDefault(cfg.ConnectTimeout, DefaultConnectTimeout), cfg.CAFile)
	if err != nil {
		return nil, err
	}
	c.http = &http.Client{Transport: tr, CheckRedirect: noRedirect}
	return c, nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// noRedirect makes the client return 3xx replies as they are: the recording-URL API answers 301
// and the URL is in Location (ref §5.2); nothing else should redirect.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// newTransport clones the default transport (proxy from the environment, HTTP/2, keep-alives)
// with the connect timeout and the extra CA bundle. Keep-alives stay on: turning them off would
// make Go send `Connection: close`, and the reference asks the client not to close first; the
// platform closes each connection itself after replying (ref §1.6).
func newTransport(connectTimeout time.Duration, caFile string) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = connectTimeout
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("voice config: read CAFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("voice config: CAFile %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return tr, nil
}

// CloseIdleConnections closes idle connections of the underlying transport.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Notify places a voice notification call (`callnotify`, ref §2). Accepted means the call was
// placed: the Response carries its sessionId and the outcome arrives by push. Every other result
// is an *APIError; a request that fails Validate is not sent.
func (c *Client) Notify(ctx context.Context, req *NotifyRequest) (*Response, error) {
	if err := req.Validate(); err != nil {
		return nil, c.invalid("notify", PathNotify, err)
	}
	return c.post(ctx, "notify", PathNotify, req, slog.String("callee", MaskNumber(req.CalleeNbr)))
}

// Verify places a voice verification-code call (`callVerify`, ref §3). The code is never logged.
func (c *Client) Verify(ctx context.Context, req *VerifyRequest) (*Response, error) {
	if err := req.Validate(); err != nil {
		return nil, c.invalid("verify", PathVerify, err)
	}
	return c.post(ctx, "verify", PathVerify, req, slog.String("callee", MaskNumber(req.CalleeNbr)))
}

// Click2Call places a click-to-call (`click2Call`, ref §4): leg A (CallerNbr) first, then leg B.
func (c *Client) Click2Call(ctx context.Context, req *Click2CallRequest) (*Response, error) {
	if err := req.Validate(); err != nil {
		return nil, c.invalid("click2call", PathClick2Call, err)
	}
	return c.post(ctx, "click2call", PathClick2Call, req,
		slog.String("caller", MaskNumber(req.CallerNbr)), slog.String("callee", MaskNumber(req.CalleeNbr)))
}

// CallStop releases both legs of an active click-to-call (`callStop`, ref §5.1). The disconnect
// and CDR pushes still follow.
func (c *Client) CallStop(ctx context.Context, sessionID string) error {
	req := &CallStopRequest{SessionID: sessionID, Signal: SignalCallStop}
	if err := req.Validate(); err != nil {
		return c.invalid("callstop", PathCallStop, err)
	}
	_, err := c.post(ctx, "callstop", PathCallStop, req)
	return err
}

// RecordURL returns the download URL of a click-to-call recording (ref §5.2): fileName is the
// CDR's recordObjectName, recordDomain its recordDomain. The platform answers 301 with the URL in
// Location; redirects are not followed. Other 3xx codes with a Location are accepted too. The
// returned URL may carry a signature: do not log it.
func (c *Client) RecordURL(ctx context.Context, fileName, recordDomain string) (string, error) {
	var chk checker
	chk.text("fileName", fileName, true, maxRecordParam)
	chk.text("recordDomain", recordDomain, true, maxRecordParam)
	if err := chk.result(); err != nil {
		return "", c.invalid("record", PathRecord, err)
	}
	q := url.Values{"fileName": {fileName}, "recordDomain": {recordDomain}}
	rep, err := c.roundTrip(ctx, "record", http.MethodGet, PathRecord, q, nil)
	if err != nil {
		return "", err
	}
	if rep.status >= 300 && rep.status < 400 {
		loc := rep.header.Get("Location")
		if loc == "" {
			return "", c.replyError(ctx, rep, "redirect without Location", ClassTransient)
		}
		u, err := rep.url.Parse(loc)
		if err != nil {
			return "", c.replyError(ctx, rep, "unparsable Location", ClassPermanent)
		}
		c.logDone(ctx, rep, "", ClassAccepted)
		return u.String(), nil
	}
	r, ok := decodeResponse(rep.body)
	if !ok {
		return "", c.nonPlatformError(ctx, rep, false)
	}
	if r.ResultCode == CodeSuccess {
		return "", c.replyError(ctx, rep, "success without a redirect", ClassPermanent)
	}
	return "", c.codeError(ctx, rep, r)
}

// post sends a JSON body and interprets the reply (ref §1.5): decided on `resultcode`, not on the
// HTTP status, except when the reply is not a platform reply.
func (c *Client) post(ctx context.Context, op, path string, body any, attrs ...slog.Attr) (*Response, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, &APIError{Op: op, URL: c.redacted(path), Class: ClassPermanent, Err: fmt.Errorf("marshal request: %w", err)}
	}
	rep, err := c.roundTrip(ctx, op, http.MethodPost, path, nil, payload, attrs...)
	if err != nil {
		return nil, err
	}
	r, ok := decodeResponse(rep.body)
	if !ok {
		return nil, c.nonPlatformError(ctx, rep, true)
	}
	if r.ResultCode != CodeSuccess {
		return nil, c.codeError(ctx, rep, r)
	}
	if r.SessionID == "" && op != "callstop" {
		c.log.LogAttrs(ctx, slog.LevelWarn, "voice call accepted without sessionId", slog.String("op", op))
	}
	c.logDone(ctx, rep, r.ResultCode, ClassAccepted)
	return &r, nil
}

// reply is a complete HTTP reply, body read to EOF.
type reply struct {
	op      string
	url     *url.URL
	status  int
	header  http.Header
	body    []byte
	start   time.Time
	logAttr []slog.Attr
}

// roundTrip sends one authenticated request and reads the whole reply. Transport failures come
// back as *APIError classified by whether the request had been written (see transportError).
func (c *Client) roundTrip(ctx context.Context, op, method, path string, query url.Values, body []byte, attrs ...slog.Attr) (*reply, error) {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	start := time.Now()

	parent := ctx
	if err := parent.Err(); err != nil {
		return nil, &APIError{Op: op, URL: redactURL(&u), Class: ClassTransient, Err: err}
	}
	ctx, cancel := context.WithTimeout(parent, c.requestTimeout)
	defer cancel()

	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, u.String(), rd)
	if err != nil {
		return nil, &APIError{Op: op, URL: redactURL(&u), Class: ClassPermanent, Err: stripURLError(err)}
	}
	if err := c.sign(req.Header); err != nil {
		return nil, &APIError{Op: op, URL: redactURL(&u), Class: ClassTransient, Err: err}
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(parent, op, method, &u, wrote.Load(), err)
	}
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxReplyBody))
	if readErr == nil {
		_, readErr = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBody))
	}
	resp.Body.Close()
	if readErr != nil {
		// The reply had started: the request reached the platform.
		return nil, c.transportError(parent, op, method, &u, true, readErr)
	}
	return &reply{op: op, url: &u, status: resp.StatusCode, header: resp.Header, body: data, start: start, logAttr: attrs}, nil
}

// sign sets the three documented headers (ref §1.2) with a fresh nonce and `Created` in UTC.
// `Connection` is never set (ref §1.6).
func (c *Client) sign(h http.Header) error {
	tok, err := NewUsernameToken(c.appKey, c.appSecret, c.now())
	if err != nil {
		return err
	}
	h.Set("Content-Type", ContentType)
	h.Set(HeaderAuthorization, AuthorizationValue)
	h.Set(HeaderXAKSK, tok.String())
	return nil
}

// transportError classifies a failure without a complete reply. parent is the caller's context.
//   - The caller's context ended: its error wins over the transport error (so errors.Is(err,
//     context.Canceled) holds), ambiguous if the request had been written, transient if not.
//   - Nothing written (DNS, refused connection, TLS handshake, connect timeout): transient.
//   - Written but no complete reply (our RequestTimeout, reset, EOF): ambiguous for POST, because
//     the call may have been placed; transient for the GET of the recording URL, which is safe to
//     repeat.
func (c *Client) transportError(parent context.Context, op, method string, u *url.URL, wrote bool, err error) *APIError {
	class := ClassTransient
	if wrote && method == http.MethodPost {
		class = ClassAmbiguous
	}
	if ctxErr := parent.Err(); ctxErr != nil {
		err = ctxErr
	} else {
		err = stripURLError(err)
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no complete reply within %v: %w", c.requestTimeout, err)
		}
	}
	e := &APIError{Op: op, URL: redactURL(u), Class: class, Err: err}
	c.log.LogAttrs(parent, slog.LevelDebug, "voice request failed", slog.String("op", op),
		slog.String("url", e.URL), slog.String("class", string(class)), slog.Bool("written", wrote),
		slog.String("error", err.Error()))
	return e
}

// codeError turns a platform reply with a non-zero resultcode into an *APIError (ref §9).
func (c *Client) codeError(ctx context.Context, rep *reply, r Response) *APIError {
	class := classifyReply(r.ResultCode, r.ResultDesc, rep.status)
	c.logDone(ctx, rep, r.ResultCode, class)
	return &APIError{Op: rep.op, URL: redactURL(rep.url), HTTPStatus: rep.status, Code: r.ResultCode, Desc: r.ResultDesc, Class: class}
}

// nonPlatformError classifies a reply without a platform JSON body by its HTTP status: 404 is a
// wrong base URL or URI (ref §1.5) and permanent, 429 rate, 5xx transient, a 2xx to a POST
// ambiguous (it may have been accepted), anything else permanent.
func (c *Client) nonPlatformError(ctx context.Context, rep *reply, post bool) *APIError {
	switch s := rep.status; {
	case s == http.StatusNotFound:
		return c.replyError(ctx, rep, "not found: wrong base URL or API path", ClassPermanent)
	case s == http.StatusTooManyRequests:
		return c.replyError(ctx, rep, "too many requests", ClassRate)
	case s >= 500:
		return c.replyError(ctx, rep, "server error without a platform reply", ClassTransient)
	case s >= 200 && s < 300 && post:
		return c.replyError(ctx, rep, "success status without a platform reply", ClassAmbiguous)
	case s >= 200 && s < 300:
		return c.replyError(ctx, rep, "success status without a platform reply", ClassTransient)
	default:
		return c.replyError(ctx, rep, "reply without a platform result code", ClassPermanent)
	}
}

func (c *Client) replyError(ctx context.Context, rep *reply, desc string, class Class) *APIError {
	c.logDone(ctx, rep, "", class)
	return &APIError{Op: rep.op, URL: redactURL(rep.url), HTTPStatus: rep.status, Desc: desc, Class: class}
}

// invalid wraps a validation failure; nothing was sent.
func (c *Client) invalid(op, path string, err error) *APIError {
	return &APIError{Op: op, URL: c.redacted(path), Class: ClassPermanent, Err: err}
}

func (c *Client) redacted(path string) string {
	u := *c.base
	u.Path = c.base.Path + path
	return redactURL(&u)
}

func (c *Client) logDone(ctx context.Context, rep *reply, code string, class Class) {
	attrs := append([]slog.Attr{
		slog.String("op", rep.op),
		slog.String("url", redactURL(rep.url)),
		slog.Int("http_status", rep.status),
		slog.String("resultcode", code),
		slog.String("class", string(class)),
		slog.Duration("duration", time.Since(rep.start)),
	}, rep.logAttr...)
	c.log.LogAttrs(ctx, slog.LevelDebug, "voice request", attrs...)
}

// decodeResponse reads a platform reply. `resultcode` is documented as a string; a number is
// accepted too. ok is false when the body is not a JSON object with a resultcode.
func decodeResponse(body []byte) (Response, bool) {
	var wire struct {
		ResultCode json.RawMessage `json:"resultcode"`
		ResultDesc string          `json:"resultdesc"`
		SessionID  string          `json:"sessionId"`
		IdlePort   *int            `json:"idlePort"`
	}
	if err := json.Unmarshal(body, &wire); err != nil || len(wire.ResultCode) == 0 {
		return Response{}, false
	}
	var code string
	if wire.ResultCode[0] == '"' {
		if err := json.Unmarshal(wire.ResultCode, &code); err != nil {
			return Response{}, false
		}
	} else if _, err := strconv.ParseInt(string(wire.ResultCode), 10, 64); err == nil {
		code = string(wire.ResultCode)
	}
	if code == "" {
		return Response{}, false
	}
	return Response{ResultCode: code, ResultDesc: wire.ResultDesc, SessionID: wire.SessionID, IdlePort: wire.IdlePort}, true
}

// classifyReply is Classify plus the one refinement the reference makes on the text: 1013112–1013116
// (texts not captured) are rate when resultdesc mentions "frequency", else permanent (ref §9.4).
func classifyReply(code, desc string, httpStatus int) Class {
	if code >= "1013112" && code <= "1013116" && len(code) == 7 &&
		strings.Contains(strings.ToLower(desc), "frequency") {
		return ClassRate
	}
	return Classify(code, httpStatus)
}
