package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

var (
	// ErrInvalidURL means a callback URL is malformed or not an http(s) URL
	// with a plain host: no scheme, another scheme, no host, or userinfo.
	ErrInvalidURL = errors.New("invalid webhook URL")
	// ErrForbiddenAddress means a callback URL names, or its host resolves
	// to, an address the Guard refuses (loopback, private, link-local,
	// metadata…), or a host written as an ambiguous number.
	ErrForbiddenAddress = errors.New("webhook address not allowed")
	// ErrTooManyRedirects means a delivery was redirected more than
	// MaxRedirects times.
	ErrTooManyRedirects = errors.New("too many webhook redirects")
)

// MaxRedirects is how many redirects a Guard's HTTP client follows.
const MaxRedirects = 3

// URLError is the refusal of one URL by CheckURL or a redirect check. URL is
// already redacted (scheme, host and path only). Err is ErrInvalidURL,
// ErrForbiddenAddress or ErrTooManyRedirects.
type URLError struct {
	URL    string
	Reason string
	Err    error
}

func (e *URLError) Error() string {
	return fmt.Sprintf("check webhook URL %s: %s: %v", e.URL, e.Reason, e.Err)
}

func (e *URLError) Unwrap() error { return e.Err }

// deniedRange is one refused prefix and the reason given for it.
type deniedRange struct {
	prefix netip.Prefix
	reason string
}

// denied lists what a Guard refuses unless its allow-list opens it.
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are unmapped before the check;
// NAT64 and 6to4 addresses are also judged by the IPv4 address they embed.
var denied = func() []deniedRange {
	rows := []struct{ cidr, reason string }{
		{"0.0.0.0/8", "\"this network\" (0/8)"},
		{"10.0.0.0/8", "private (10/8)"},
		{"100.64.0.0/10", "carrier-grade NAT (100.64/10)"},
		{"127.0.0.0/8", "loopback (127/8)"},
		{"169.254.0.0/16", "link-local / cloud metadata (169.254/16)"},
		{"172.16.0.0/12", "private (172.16/12)"},
		{"192.0.0.0/24", "IETF protocol assignments (192.0.0/24)"},
		{"192.168.0.0/16", "private (192.168/16)"},
		{"198.18.0.0/15", "benchmarking (198.18/15)"},
		{"224.0.0.0/4", "multicast (224/4)"},
		{"240.0.0.0/4", "reserved / broadcast (240/4)"},
		{"::/128", "unspecified (::)"},
		{"::1/128", "loopback (::1)"},
		{"::/96", "IPv4-compatible IPv6 (::/96)"},
		{"100::/64", "discard-only (100::/64)"},
		{"fc00::/7", "unique local (fc00::/7)"},
		{"fe80::/10", "link-local (fe80::/10)"},
		{"fec0::/10", "site-local (fec0::/10)"},
		{"ff00::/8", "multicast (ff00::/8)"},
	}
	out := make([]deniedRange, len(rows))
	for i, r := range rows {
		out[i] = deniedRange{netip.MustParsePrefix(r.cidr), r.reason}
	}
	return out
}()

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
	loopback4   = netip.MustParseAddr("127.0.0.1")
	metadata4   = netip.MustParseAddr("169.254.169.254")
)

// wellKnownNames are host names refused by name at the edge, judged by the
// address they stand for, so an allow-list that opens that address opens
// the name too. Suffix entries start with a dot.
var wellKnownNames = []struct {
	name string
	addr netip.Addr
}{
	{"localhost", loopback4},
	{".localhost", loopback4},
	{"metadata.google.internal", metadata4},
	{"metadata.goog", metadata4},
	{"metadata", metadata4},
	{"instance-data", metadata4},
	{"instance-data.ec2.internal", metadata4},
}

// Guard is the outbound-URL policy for webhooks: it refuses loopback,
// private, link-local (including cloud metadata), unspecified, multicast,
// CGNAT and reserved addresses, their IPv4-mapped forms, and well-known
// internal names, unless an allow-list prefix opens them. A Guard is safe
// for concurrent use.
type Guard struct {
	allow    []netip.Prefix
	resolver *net.Resolver // nil: the default resolver; tests set a fake
}

// NewGuard returns a Guard whose allow-list opens the given prefixes (for
// example 127.0.0.1/32 in a demo, or a producer's private range reached
// through a VPN). A nil or empty list opens nothing.
func NewGuard(allow []netip.Prefix) *Guard {
	a := make([]netip.Prefix, 0, len(allow))
	for _, p := range allow {
		if p.IsValid() {
			a = append(a, p.Masked())
		}
	}
	return &Guard{allow: a}
}

// allowed reports whether the allow-list opens addr (plain or unmapped).
func (g *Guard) allowed(addr netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(addr) || p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// refusal returns why addr is refused, or "" when it may be reached.
func (g *Guard) refusal(addr netip.Addr) string {
	addr = addr.WithZone("")
	if !addr.IsValid() {
		return "invalid address"
	}
	if g.allowed(addr) {
		return ""
	}
	a := addr.Unmap()
	for _, d := range denied {
		if d.prefix.Contains(a) {
			if a != addr {
				return "IPv4-mapped " + d.reason
			}
			return d.reason
		}
	}
	if a.Is6() {
		b := a.As16()
		var embedded netip.Addr
		switch {
		case nat64Prefix.Contains(a):
			embedded = netip.AddrFrom4([4]byte(b[12:16]))
		case sixToFour.Contains(a):
			embedded = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if embedded.IsValid() {
			if r := g.refusal(embedded); r != "" {
				return "IPv6 embedding " + r
			}
		}
	}
	return ""
}

// CheckURL is the edge check of a callback URL: http or https only, a host,
// no userinfo; an IP-literal host must not be refused; a host written as a
// number in another form ("2130706433", "0x7f.1", "0177.0.0.1") is refused;
// well-known internal names (localhost, metadata.google.internal…) are judged
// by their address. Other names are not resolved here: DialContext checks
// what they resolve to at connect time. Errors are *URLError.
func (g *Guard) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return &URLError{URL: "<unparseable>", Reason: "does not parse", Err: ErrInvalidURL}
	}
	red := redactURL(u)
	fail := func(reason string, err error) error { return &URLError{URL: red, Reason: reason, Err: err} }
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return fail("no scheme (want http or https)", ErrInvalidURL)
	default:
		return fail("scheme must be http or https", ErrInvalidURL)
	}
	if u.Opaque != "" {
		return fail("not a hierarchical URL", ErrInvalidURL)
	}
	if u.User != nil {
		return fail("userinfo not allowed", ErrInvalidURL)
	}
	if p := u.Port(); p != "" {
		if n, perr := parsePort(p); perr != nil || n == 0 {
			return fail("invalid port", ErrInvalidURL)
		}
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return fail("no host", ErrInvalidURL)
	}
	if addr, perr := netip.ParseAddr(host); perr == nil {
		if r := g.refusal(addr); r != "" {
			return fail("address is "+r, ErrForbiddenAddress)
		}
		return nil
	}
	if strings.HasPrefix(u.Host, "[") {
		return fail("invalid IPv6 literal", ErrInvalidURL)
	}
	if !isHostName(host) {
		return fail("host name must be ASCII letters, digits, '-', '_' and '.' (use punycode)", ErrInvalidURL)
	}
	if endsInNumber(host) {
		return fail("host is an ambiguous numeric IPv4 form", ErrForbiddenAddress)
	}
	for _, n := range wellKnownNames {
		if host == n.name || (strings.HasPrefix(n.name, ".") && strings.HasSuffix(host, n.name)) {
			if r := g.refusal(n.addr); r != "" {
				return fail("host name stands for "+r, ErrForbiddenAddress)
			}
		}
	}
	return nil
}

func parsePort(p string) (int, error) {
	if len(p) > 5 || !isDigits(p) {
		return 0, errors.New("bad port")
	}
	n := 0
	for i := 0; i < len(p); i++ {
		n = n*10 + int(p[i]-'0')
	}
	if n > 65535 {
		return 0, errors.New("bad port")
	}
	return n, nil
}

// isHostName reports whether h has only the characters a DNS host name may
// have (lower-cased), so no resolver reads it as something else.
func isHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return !strings.Contains(h, "..") && !strings.HasPrefix(h, ".")
}

// endsInNumber follows the WHATWG URL "ends in a number" rule: when the last
// label is all digits or 0x-hex, browsers and inet_aton-based resolvers read
// the host as an IPv4 address in some form (decimal, octal, hex, short).
// No real TLD is numeric, so such hosts are refused rather than guessed at.
func endsInNumber(h string) bool {
	last := h
	if i := strings.LastIndexByte(h, '.'); i >= 0 {
		last = h[i+1:]
	}
	if isDigits(last) {
		return true
	}
	if strings.HasPrefix(last, "0x") {
		for i := 2; i < len(last); i++ {
			c := last[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	return false
}

// dialer returns the guarded dialer: each address the name resolved to is
// checked in ControlContext, after the socket is created and before connect,
// so nothing is sent to a refused address and a re-bound name gains nothing.
func (g *Guard) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:        10 * time.Second,
		KeepAlive:      30 * time.Second,
		Resolver:       g.resolver,
		ControlContext: g.control,
	}
}

func (g *Guard) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("check dial network %s: %w", network, ErrForbiddenAddress)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("check dial address %q: %w", address, ErrForbiddenAddress)
	}
	if r := g.refusal(ap.Addr()); r != "" {
		return fmt.Errorf("check dial address %s (%s): %w", ap.Addr().WithZone(""), r, ErrForbiddenAddress)
	}
	return nil
}

// DialContext connects like net.Dialer.DialContext for tcp, tcp4 and tcp6,
// refusing at connect time every resolved address the Guard refuses. It fits
// http.Transport.DialContext.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("dial %s %s: network not allowed: %w", network, address, ErrForbiddenAddress)
	}
	return g.dialer().DialContext(ctx, network, address)
}

// CheckRedirect fits http.Client.CheckRedirect: it refuses a redirect past
// MaxRedirects or to a URL that CheckURL refuses, before any connection to
// the new location is made.
func (g *Guard) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return &URLError{URL: redactURL(req.URL), Reason: fmt.Sprintf("more than %d redirects", MaxRedirects), Err: ErrTooManyRedirects}
	}
	return g.CheckURL(req.URL.String())
}

// HTTPClient returns a client for webhook delivery: the guarded dialer, TLS
// verification on (TLS 1.2+), no proxy (HTTP(S)_PROXY is ignored so the
// check applies to the real destination), CheckURL before every request and
// redirect, at most MaxRedirects redirects, and timeout per request
// (0 means none: then bound each request by its context).
func (g *Guard) HTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            g.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport:     &guardedTransport{guard: g, next: tr},
		CheckRedirect: g.CheckRedirect,
		Timeout:       timeout,
	}
}

// guardedTransport runs CheckURL on every request before handing it on, so
// the client refuses names and literals even without a prior edge check.
type guardedTransport struct {
	guard *Guard
	next  *http.Transport
}

func (t *guardedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.guard.CheckURL(req.URL.String()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// underlying transport.
func (t *guardedTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }

// redactURL keeps scheme, host (with port) and path: no userinfo, query or
// fragment, which may carry tokens.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return r.String()
}

// RedactURL returns raw with userinfo, query and fragment removed, for logs
// and errors; "<unparseable>" when raw does not parse.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable>"
	}
	return redactURL(u)
}
