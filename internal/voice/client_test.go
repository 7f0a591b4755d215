package voice

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testAppKey    = "testAppKey"
	testAppSecret = "testAppSecret123"
)

// testNow is a non-UTC clock: Created must still come out in UTC.
var testNow = time.Date(2024, 5, 1, 16, 0, 0, 0, time.FixedZone("CST", 8*3600))

func newTestClient(t *testing.T, baseURL string, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BaseURL:        baseURL,
		AppKey:         testAppKey,
		AppSecret:      testAppSecret,
		RequestTimeout: 2 * time.Second,
		Now:            func() time.Time { return testNow },
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// replyJSON answers every request with status and the given platform reply.
func replyJSON(status int, code, desc, sessionID string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", ContentType)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"resultcode":%q,"resultdesc":%q,"sessionId":%q}`, code, desc, sessionID)
	}
}

func validNotify() *NotifyRequest {
	return &NotifyRequest{
		DisplayNbr:   "+8675500000001",
		CalleeNbr:    "+8613800000002",
		PlayInfoList: []PlayItem{{TemplateID: "abc123", TemplateParas: []string{"3"}}},
	}
}

func validVerify() *VerifyRequest {
	return &VerifyRequest{
		DisplayNbr:   "+8675500000001",
		CalleeNbr:    "+8613800000002",
		LanguageType: LanguageChinese,
		PreTone:      "welcome.wav",
		VerifyCode:   "123456",
	}
}

func validClick2Call() *Click2CallRequest {
	return &Click2CallRequest{
		DisplayNbr:       "+8675500000001",
		CallerNbr:        "+8613700000001",
		DisplayCalleeNbr: "+8675500000001",
		CalleeNbr:        "+8613700000002",
	}
}

func asAPIError(t *testing.T, err error) *APIError {
	t.Helper()
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	return apiErr
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{BaseURL: "https://rtccall.cn-north-1.myhuaweicloud.cn:443", AppKey: "k", AppSecret: "Secret-Do-Not-Leak"}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"valid https", func(*Config) {}, ""},
		{"valid http with path prefix", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080/prefix" }, ""},
		{"empty base", func(c *Config) { c.BaseURL = "" }, "BaseURL is required"},
		{"ftp scheme", func(c *Config) { c.BaseURL = "ftp://host" }, "scheme"},
		{"no scheme", func(c *Config) { c.BaseURL = "rtccall.example.com" }, "scheme"},
		{"no host", func(c *Config) { c.BaseURL = "https://" }, "no host"},
		{"query", func(c *Config) { c.BaseURL = "https://host/?a=b" }, "query"},
		{"no key", func(c *Config) { c.AppKey = "" }, "AppKey is required"},
		{"quote in key", func(c *Config) { c.AppKey = `a"b` }, "quote"},
		{"no secret", func(c *Config) { c.AppSecret = "" }, "AppSecret is required"},
		{"negative timeout", func(c *Config) { c.RequestTimeout = -1 }, "negative"},
		{"CA with client", func(c *Config) { c.CAFile = "x.pem"; c.HTTPClient = &http.Client{} }, "CAFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tt.mod(&cfg)
			_, err := NewClient(cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("NewClient: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("NewClient error = %v, want it to mention %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), cfg.AppSecret) && cfg.AppSecret != "" {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestRequestHeaders checks the wire form of every API: method, exact path, the three headers of
// ref §1.2 with a digest that verifies, Created in UTC, a fresh nonce per request, and no
// `Connection: close` (ref §1.6).
func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, query string
		header              http.Header
		close               bool
	}
	var (
		mu   sync.Mutex
		reqs []seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		reqs = append(reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), r.Close})
		mu.Unlock()
		if r.Method == http.MethodGet {
			w.Header().Set("Location", "https://obs.example.com/rec.wav")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		fmt.Fprint(w, `{"resultcode":"0","resultdesc":"Success","sessionId":"s-1"}`)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL+"/prefix/")
	ctx := context.Background()

	if _, err := c.Notify(ctx, validNotify()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if _, err := c.Verify(ctx, validVerify()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := c.Click2Call(ctx, validClick2Call()); err != nil {
		t.Fatalf("Click2Call: %v", err)
	}
	if err := c.CallStop(ctx, "s-1"); err != nil {
		t.Fatalf("CallStop: %v", err)
	}
	if _, err := c.RecordURL(ctx, "rec.wav", "obs.example.com"); err != nil {
		t.Fatalf("RecordURL: %v", err)
	}

	wantPaths := []string{PathNotify, PathVerify, PathClick2Call, PathCallStop, PathRecord}
	if len(reqs) != len(wantPaths) {
		t.Fatalf("server saw %d requests, want %d", len(reqs), len(wantPaths))
	}
	nonces := map[string]bool{}
	for i, r := range reqs {
		t.Run(wantPaths[i], func(t *testing.T) {
			wantMethod := http.MethodPost
			if wantPaths[i] == PathRecord {
				wantMethod = http.MethodGet
			}
			if r.method != wantMethod || r.path != "/prefix"+wantPaths[i] {
				t.Errorf("request %s %s, want %s /prefix%s", r.method, r.path, wantMethod, wantPaths[i])
			}
			if got := r.header.Get("Content-Type"); got != ContentType {
				t.Errorf("Content-Type = %q, want %q", got, ContentType)
			}
			if got := r.header.Get("Authorization"); got != AuthorizationValue {
				t.Errorf("Authorization = %q, want %q", got, AuthorizationValue)
			}
			if got := r.header.Get("Connection"); got != "" || r.close {
				t.Errorf("Connection header %q / close=%v: the client must not ask to close (ref §1.6)", got, r.close)
			}
			tok, err := ParseUsernameToken(r.header.Get("X-AKSK"))
			if err != nil {
				t.Fatalf("ParseUsernameToken: %v", err)
			}
			if tok.Username != testAppKey {
				t.Errorf("Username = %q", tok.Username)
			}
			if want := "2024-05-01T08:00:00Z"; tok.Created != want {
				t.Errorf("Created = %q, want %q (UTC)", tok.Created, want)
			}
			if want := PasswordDigest(testAppSecret, tok.Nonce, tok.Created); tok.PasswordDigest != want {
				t.Errorf("PasswordDigest = %q, want %q", tok.PasswordDigest, want)
			}
			if nonces[tok.Nonce] {
				t.Errorf("nonce %q reused", tok.Nonce)
			}
			nonces[tok.Nonce] = true
		})
	}
	if q := reqs[4].query; q != "fileName=rec.wav&recordDomain=obs.example.com" {
		t.Errorf("record query = %q", q)
	}
}

// TestClassificationTable walks the result-code table row by row (ref §9): the class of each
// row, Classify, and what the client returns when a server answers the code with its status.
func TestClassificationTable(t *testing.T) {
	t.Parallel()
	rows := Codes()
	if len(rows) == 0 {
		t.Fatal("empty code table")
	}
	seen := map[string]bool{}
	for _, row := range rows {
		if seen[row.Code] {
			t.Fatalf("code %s appears twice", row.Code)
		}
		seen[row.Code] = true
	}
	for _, row := range rows {
		t.Run(row.Code, func(t *testing.T) {
			t.Parallel()
			switch row.Class {
			case ClassAccepted, ClassRate, ClassTransient, ClassPermanent, ClassAccount:
			default:
				t.Fatalf("class %q is not a reply class", row.Class)
			}
			if (row.Code == CodeSuccess) != (row.Class == ClassAccepted) {
				t.Fatalf("only code 0 is accepted; row %+v", row)
			}
			if got := Classify(row.Code, row.HTTPStatus); got != row.Class {
				t.Fatalf("Classify(%s, %d) = %s, want %s", row.Code, row.HTTPStatus, got, row.Class)
			}
			if got, ok := LookupCode(row.Code); !ok || got != row {
				t.Fatalf("LookupCode(%s) = %+v, %v", row.Code, got, ok)
			}

			srv := httptest.NewServer(replyJSON(row.HTTPStatus, row.Code, row.Desc, "1200_366_0_20161228102743@callenabler.home1.com"))
			defer srv.Close()
			c := newTestClient(t, srv.URL)
			resp, err := c.Notify(context.Background(), validNotify())
			if got := ClassOf(err); got != row.Class {
				t.Fatalf("ClassOf(Notify error %v) = %s, want %s", err, got, row.Class)
			}
			if row.Class == ClassAccepted {
				if err != nil || resp.SessionID == "" || resp.ResultCode != CodeSuccess {
					t.Fatalf("Notify = %+v, %v; want accepted with sessionId", resp, err)
				}
				return
			}
			apiErr := asAPIError(t, err)
			if apiErr.Code != row.Code || apiErr.Desc != row.Desc || apiErr.HTTPStatus != row.HTTPStatus || apiErr.Op != "notify" {
				t.Fatalf("APIError = %+v, want code %s desc %q status %d", apiErr, row.Code, row.Desc, row.HTTPStatus)
			}
			if want := srv.URL + PathNotify; apiErr.URL != want {
				t.Fatalf("APIError.URL = %q, want %q", apiErr.URL, want)
			}
		})
	}
}

// TestReplyClassification covers replies outside the table: unknown codes (permanent, transient
// on 5xx), replies that are not platform replies, and the one text-based refinement.
func TestReplyClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		want   Class
		code   string
	}{
		{"unknown code 400", 400, `{"resultcode":"1099999","resultdesc":"new"}`, ClassPermanent, "1099999"},
		{"unknown code 403", 403, `{"resultcode":"1099999","resultdesc":"new"}`, ClassPermanent, "1099999"},
		{"unknown code 500", 500, `{"resultcode":"1099999","resultdesc":"new"}`, ClassTransient, "1099999"},
		{"unknown code 503", 503, `{"resultcode":"1099999","resultdesc":"new"}`, ClassTransient, "1099999"},
		{"unknown code 1013121 on 200", 200, `{"resultcode":"1013121","resultdesc":"?"}`, ClassPermanent, "1013121"},
		{"known code decides over 500", 500, `{"resultcode":"1010010","resultdesc":"flow"}`, ClassRate, "1010010"},
		{"numeric resultcode", 403, `{"resultcode":1010010,"resultdesc":"flow"}`, ClassRate, "1010010"},
		{"1013113 frequency text", 403, `{"resultcode":"1013113","resultdesc":"Callee call Frequency limited."}`, ClassRate, "1013113"},
		{"1013113 other text", 403, `{"resultcode":"1013113","resultdesc":"Restricted."}`, ClassPermanent, "1013113"},
		{"404 without JSON", 404, `404 page not found`, ClassPermanent, ""},
		{"405 without JSON", 405, ``, ClassPermanent, ""},
		{"429 without JSON", 429, `slow down`, ClassRate, ""},
		{"502 HTML", 502, `<html>bad gateway</html>`, ClassTransient, ""},
		{"200 not JSON", 200, `OK`, ClassAmbiguous, ""},
		{"200 JSON without resultcode", 200, `{"sessionId":"x"}`, ClassAmbiguous, ""},
		{"200 empty resultcode", 200, `{"resultcode":""}`, ClassAmbiguous, ""},
		{"301 on POST", 301, ``, ClassPermanent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL)
			_, err := c.Notify(context.Background(), validNotify())
			apiErr := asAPIError(t, err)
			if apiErr.Class != tt.want || apiErr.Code != tt.code || apiErr.HTTPStatus != tt.status {
				t.Fatalf("APIError = %+v, want class %s code %q status %d", apiErr, tt.want, tt.code, tt.status)
			}
		})
	}
}

// TestTransportClassification: before the request is written → transient; written but no reply
// → ambiguous; the caller's own context wins.
func TestTransportClassification(t *testing.T) {
	t.Parallel()

	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c := newTestClient(t, "http://"+addr)
		_, err = c.Notify(context.Background(), validNotify())
		if apiErr := asAPIError(t, err); apiErr.Class != ClassTransient || apiErr.HTTPStatus != 0 {
			t.Fatalf("APIError = %+v, want transient", apiErr)
		}
	})

	t.Run("dial error (DNS)", func(t *testing.T) {
		t.Parallel()
		tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, &net.DNSError{Err: "no such host", Name: "rtccall.invalid", IsNotFound: true}
		}}
		c := newTestClient(t, "https://rtccall.invalid", func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
		_, err := c.Notify(context.Background(), validNotify())
		apiErr := asAPIError(t, err)
		var dnsErr *net.DNSError
		if apiErr.Class != ClassTransient || !errors.As(err, &dnsErr) {
			t.Fatalf("APIError = %+v, want transient wrapping *net.DNSError", apiErr)
		}
	})

	t.Run("TLS handshake: unknown authority", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int32
		srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
		srv.Config.ErrorLog = discardLog()
		defer srv.Close()
		c := newTestClient(t, srv.URL)
		_, err := c.Notify(context.Background(), validNotify())
		if apiErr := asAPIError(t, err); apiErr.Class != ClassTransient {
			t.Fatalf("APIError = %+v, want transient", apiErr)
		}
		if hits.Load() != 0 {
			t.Fatal("request reached the handler despite an untrusted certificate")
		}
	})

	t.Run("server reads the request then hangs", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}))
		defer srv.Close()
		c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.RequestTimeout = 100 * time.Millisecond })
		_, err := c.Notify(context.Background(), validNotify())
		apiErr := asAPIError(t, err)
		if apiErr.Class != ClassAmbiguous || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("APIError = %+v (%v), want ambiguous deadline exceeded", apiErr, err)
		}
	})

	t.Run("server closes the connection after reading", func(t *testing.T) {
		t.Parallel()
		addr := closingServer(t)
		c := newTestClient(t, "http://"+addr)
		_, err := c.Notify(context.Background(), validNotify())
		if apiErr := asAPIError(t, err); apiErr.Class != ClassAmbiguous {
			t.Fatalf("APIError = %+v, want ambiguous", apiErr)
		}
	})

	t.Run("recording GET after write is transient", func(t *testing.T) {
		t.Parallel()
		addr := closingServer(t)
		c := newTestClient(t, "http://"+addr)
		_, err := c.RecordURL(context.Background(), "rec.wav", "obs.example.com")
		if apiErr := asAPIError(t, err); apiErr.Class != ClassTransient {
			t.Fatalf("APIError = %+v, want transient (GET is safe to repeat)", apiErr)
		}
	})

	t.Run("caller context cancelled before sending", func(t *testing.T) {
		t.Parallel()
		var hits atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
		defer srv.Close()
		c := newTestClient(t, srv.URL)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Notify(ctx, validNotify())
		apiErr := asAPIError(t, err)
		if !errors.Is(err, context.Canceled) || apiErr.Class != ClassTransient || hits.Load() != 0 {
			t.Fatalf("err = %v (class %s, hits %d), want context.Canceled, transient, nothing sent", err, apiErr.Class, hits.Load())
		}
	})

	t.Run("caller context cancelled after the request was written", func(t *testing.T) {
		t.Parallel()
		received := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			close(received)
			<-r.Context().Done()
		}))
		defer srv.Close()
		c := newTestClient(t, srv.URL)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-received; cancel() }()
		_, err := c.Notify(ctx, validNotify())
		apiErr := asAPIError(t, err)
		if !errors.Is(err, context.Canceled) || apiErr.Class != ClassAmbiguous {
			t.Fatalf("err = %v (class %s), want context.Canceled and ambiguous", err, apiErr.Class)
		}
	})
}

// closingServer accepts connections, reads one whole request and closes without replying.
func closingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(conn)); err == nil {
				io.Copy(io.Discard, req.Body)
			}
			conn.Close()
		}
	}()
	return ln.Addr().String()
}

func TestCAFile(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(replyJSON(200, "0", "Success", "s-1"))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.CAFile = path })
	resp, err := c.Notify(context.Background(), validNotify())
	if err != nil || resp.SessionID != "s-1" {
		t.Fatalf("Notify over TLS with CAFile = %+v, %v", resp, err)
	}

	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(Config{BaseURL: srv.URL, AppKey: "k", AppSecret: "s", CAFile: empty}); err == nil {
		t.Fatal("NewClient accepted a CAFile without certificates")
	}
}

// trackingBody records whether the client read the reply to EOF and closed it.
type trackingBody struct {
	r      io.Reader
	eof    atomic.Bool
	closed atomic.Bool
}

func (b *trackingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

func (b *trackingBody) Close() error { b.closed.Store(true); return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestBodyReadToEOF: every reply body is read to the end and closed (ref §1.6), also when the
// JSON object is followed by more bytes and when the reply is an error.
func TestBodyReadToEOF(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{
		{"accepted with trailing bytes", 200, `{"resultcode":"0","resultdesc":"Success","sessionId":"s"}` + strings.Repeat(" ", 10000)},
		{"error code", 403, `{"resultcode":"1010010","resultdesc":"flow control"}`},
		{"not JSON", 502, strings.Repeat("x", 5000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := &trackingBody{r: strings.NewReader(tt.body)}
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.Body != nil {
					io.Copy(io.Discard, r.Body)
					r.Body.Close()
				}
				return &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: body, Request: r}, nil
			})
			c := newTestClient(t, "https://rtccall.example.com", func(cfg *Config) { cfg.HTTPClient = &http.Client{Transport: rt} })
			c.Notify(context.Background(), validNotify())
			if !body.eof.Load() || !body.closed.Load() {
				t.Fatalf("body read to EOF = %v, closed = %v; want both", body.eof.Load(), body.closed.Load())
			}
		})
	}
}

func TestRecordURL(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("fileName") {
		case "abs.wav":
			w.Header().Set("Location", "https://obs.example.com/rec/abs.wav?sig=abc")
			w.WriteHeader(http.StatusMovedPermanently)
		case "rel.wav":
			w.Header().Set("Location", "/download/rel.wav")
			w.WriteHeader(http.StatusMovedPermanently)
		case "noloc.wav":
			w.WriteHeader(http.StatusMovedPermanently)
		case "":
			followed.Add(1) // a followed redirect would arrive here
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"resultcode":"1016001","resultdesc":"The record does not exist."}`)
		}
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := context.Background()

	tests := []struct {
		name, file, domain string
		want               string
		class              Class
	}{
		{"absolute Location", "abs.wav", "d", "https://obs.example.com/rec/abs.wav?sig=abc", ClassAccepted},
		{"relative Location", "rel.wav", "d", srv.URL + "/download/rel.wav", ClassAccepted},
		{"no Location", "noloc.wav", "d", "", ClassTransient},
		{"record not found", "gone.wav", "d", "", ClassPermanent},
		{"empty fileName", "", "d", "", ClassPermanent},
		{"empty recordDomain", "x.wav", "", "", ClassPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.RecordURL(ctx, tt.file, tt.domain)
			if got != tt.want || ClassOf(err) != tt.class {
				t.Fatalf("RecordURL = %q, %v (class %s); want %q, class %s", got, err, ClassOf(err), tt.want, tt.class)
			}
		})
	}
	var apiErr *APIError
	if _, err := c.RecordURL(ctx, "gone.wav", "d"); !errors.As(err, &apiErr) || apiErr.Code != CodeRecordNotFound {
		t.Fatalf("err = %v, want resultcode %s", err, CodeRecordNotFound)
	}
	if followed.Load() != 0 {
		t.Fatal("the client followed a redirect")
	}
}

// TestValidationBeforeSending: an invalid request is refused with a permanent *APIError wrapping
// the *ValidationError, and nothing reaches the server.
func TestValidationBeforeSending(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx := context.Background()

	badNotify := validNotify()
	badNotify.PlayInfoList = append(badNotify.PlayInfoList, PlayItem{}, PlayItem{TemplateID: strings.Repeat("t", 33)})
	badVerify := validVerify()
	badVerify.VerifyCode = "12a"
	badClick := validClick2Call()
	badClick.MaxDuration = 1441

	calls := []struct {
		name  string
		call  func() error
		field string
	}{
		{"notify", func() error { _, err := c.Notify(ctx, badNotify); return err }, "playInfoList[1].templateId"},
		{"verify", func() error { _, err := c.Verify(ctx, badVerify); return err }, "verifyCode"},
		{"click2call", func() error { _, err := c.Click2Call(ctx, badClick); return err }, "maxDuration"},
		{"nil request", func() error { _, err := c.Notify(ctx, nil); return err }, "body"},
		{"callstop", func() error { return c.CallStop(ctx, "") }, "sessionid"},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var valErr *ValidationError
			if !errors.As(err, &valErr) || valErr.Field != tt.field {
				t.Fatalf("err = %v, want a ValidationError on %s", err, tt.field)
			}
			if ClassOf(err) != ClassPermanent || asAPIError(t, err).Class != ClassPermanent {
				t.Fatalf("class = %s, want permanent", ClassOf(err))
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("%d invalid requests reached the server", hits.Load())
	}
}

// TestNoSecretsInErrorsOrLogs: the app secret, full numbers, the verification code and query
// strings appear in neither errors nor debug logs.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(replyJSON(403, "1010010", "flow control", ""))
	defer srv.Close()
	c := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Logger = logger })
	ctx := context.Background()
	var errs []error
	_, err := c.Verify(ctx, validVerify())
	errs = append(errs, err)
	_, err = c.Notify(ctx, validNotify())
	errs = append(errs, err)
	_, err = c.RecordURL(ctx, "secretfile.wav", "domain.example.com")
	errs = append(errs, err)

	refused := newTestClient(t, "http://"+closedAddr(t), func(cfg *Config) { cfg.Logger = logger })
	_, err = refused.RecordURL(ctx, "secretfile.wav", "domain.example.com")
	errs = append(errs, err)

	var all strings.Builder
	for _, err := range errs {
		if err == nil {
			t.Fatal("want errors from every call")
		}
		all.WriteString(err.Error() + "\n")
	}
	mu.Lock()
	all.Write(logs.Bytes())
	mu.Unlock()
	for _, secret := range []string{testAppSecret, "8613800000002", "123456", "secretfile", "fileName="} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("%q leaked into errors or logs:\n%s", secret, all.String())
		}
	}
	if !strings.Contains(all.String(), "+86138****0002") {
		t.Errorf("masked callee missing from logs:\n%s", all.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestAcceptedResponse(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		fmt.Fprint(w, `{"resultcode":"0","resultdesc":"Success","sessionId":"1202_566_0_20161228102743@callenabler.home1.com","idlePort":7,"extra":true}`)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	req := validClick2Call()
	req.ReturnIdlePort = true
	resp, err := c.Click2Call(context.Background(), req)
	if err != nil {
		t.Fatalf("Click2Call: %v", err)
	}
	if resp.SessionID != "1202_566_0_20161228102743@callenabler.home1.com" || resp.IdlePort == nil || *resp.IdlePort != 7 {
		t.Fatalf("response = %+v", resp)
	}
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

func BenchmarkNotify(b *testing.B) {
	srv := httptest.NewServer(replyJSON(200, "0", "Success", "s-1"))
	defer srv.Close()
	c, err := NewClient(Config{BaseURL: srv.URL, AppKey: testAppKey, AppSecret: testAppSecret})
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	req := validNotify()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Notify(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
