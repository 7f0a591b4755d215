package webhook

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGuardCheckURL(t *testing.T) {
	t.Parallel()
	g := NewGuard(nil)
	tests := []struct {
		name string
		url  string
		want error // nil: allowed
	}{
		// allowed
		{"public https name", "https://hooks.example.com/voicequeue?token=x", nil},
		{"public http name with port", "http://hooks.example.com:8080/cb", nil},
		{"public IPv4", "https://93.184.215.14/hook", nil},
		{"public IPv6", "https://[2606:4700:4700::1111]/hook", nil},
		{"upper-case scheme", "HTTPS://hooks.example.com/", nil},
		{"name with digits not last", "https://123.example.com/", nil},
		{"hex-looking label not last", "https://0xdead.example.com/", nil},
		{"172.32 is public", "http://172.32.0.1/", nil},
		{"100.128 is public", "http://100.128.0.1/", nil},
		{"IPv4-mapped public", "http://[::ffff:93.184.215.14]/", nil},
		{"NAT64 of public", "http://[64:ff9b::5db8:d70e]/", nil},

		// not an http(s) URL
		{"empty", "", ErrInvalidURL},
		{"no scheme", "hooks.example.com/path", ErrInvalidURL},
		{"ftp", "ftp://hooks.example.com/", ErrInvalidURL},
		{"file", "file:///etc/passwd", ErrInvalidURL},
		{"gopher", "gopher://127.0.0.1:6379/_FLUSHALL", ErrInvalidURL},
		{"opaque", "http:hooks.example.com", ErrInvalidURL},
		{"no host", "http:///path", ErrInvalidURL},
		{"port only", "http://:8080/", ErrInvalidURL},
		{"userinfo", "https://user:s3cret@hooks.example.com/?token=s3cret", ErrInvalidURL},
		{"user only", "https://user@hooks.example.com/", ErrInvalidURL},
		{"port zero", "http://hooks.example.com:0/", ErrInvalidURL},
		{"port too big", "http://hooks.example.com:65536/", ErrInvalidURL},
		{"unicode host", "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", ErrInvalidURL},
		{"percent-encoded host", "http://%31%32%37.0.0.1/", ErrInvalidURL},
		{"space in host", "http://hooks example.com/", ErrInvalidURL},
		{"control char", "http://hooks.example.com\x00.evil/", ErrInvalidURL},
		{"double dot", "http://hooks..example.com/", ErrInvalidURL},

		// IPv4 ranges
		{"this network 0/8", "http://0.1.2.3/", ErrForbiddenAddress},
		{"unspecified v4", "http://0.0.0.0:8080/", ErrForbiddenAddress},
		{"private 10/8", "http://10.0.0.1/", ErrForbiddenAddress},
		{"private 10/8 top", "http://10.255.255.255/", ErrForbiddenAddress},
		{"CGNAT 100.64/10", "http://100.64.0.1/", ErrForbiddenAddress},
		{"CGNAT 100.127", "http://100.127.255.254/", ErrForbiddenAddress},
		{"Alibaba metadata (CGNAT)", "http://100.100.100.200/latest/meta-data/", ErrForbiddenAddress},
		{"loopback 127.0.0.1", "http://127.0.0.1/", ErrForbiddenAddress},
		{"loopback 127.1.2.3", "http://127.1.2.3:6379/", ErrForbiddenAddress},
		{"link-local 169.254/16", "http://169.254.1.1/", ErrForbiddenAddress},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/iam/?token=s3cret", ErrForbiddenAddress},
		{"private 172.16/12", "http://172.16.0.1/", ErrForbiddenAddress},
		{"private 172.31", "http://172.31.255.255/", ErrForbiddenAddress},
		{"IETF 192.0.0/24", "http://192.0.0.1/", ErrForbiddenAddress},
		{"private 192.168/16", "http://192.168.1.1/", ErrForbiddenAddress},
		{"benchmarking 198.18/15", "http://198.19.0.1/", ErrForbiddenAddress},
		{"multicast 224/4", "http://224.0.0.1/", ErrForbiddenAddress},
		{"multicast 239", "http://239.255.255.250/", ErrForbiddenAddress},
		{"reserved 240/4", "http://240.0.0.1/", ErrForbiddenAddress},
		{"broadcast", "http://255.255.255.255/", ErrForbiddenAddress},
		{"trailing dot on literal", "http://127.0.0.1./", ErrForbiddenAddress},

		// IPv6 ranges
		{"unspecified v6", "http://[::]/", ErrForbiddenAddress},
		{"loopback v6", "http://[::1]:8080/", ErrForbiddenAddress},
		{"loopback v6 long form", "http://[0:0:0:0:0:0:0:1]/", ErrForbiddenAddress},
		{"IPv4-compatible", "http://[::127.0.0.1]/", ErrForbiddenAddress},
		{"discard 100::/64", "http://[100::1]/", ErrForbiddenAddress},
		{"unique local fc00::/7", "http://[fc00::1]/", ErrForbiddenAddress},
		{"unique local fd", "http://[fd12:3456::1]/", ErrForbiddenAddress},
		{"AWS IPv6 metadata", "http://[fd00:ec2::254]/", ErrForbiddenAddress},
		{"link-local fe80::/10", "http://[fe80::1]/", ErrForbiddenAddress},
		{"link-local with zone", "http://[fe80::1%25eth0]/", ErrForbiddenAddress},
		{"site-local fec0::/10", "http://[fec0::1]/", ErrForbiddenAddress},
		{"multicast ff00::/8", "http://[ff02::1]/", ErrForbiddenAddress},

		// IPv4-mapped and embedding forms
		{"mapped loopback dotted", "http://[::ffff:127.0.0.1]/", ErrForbiddenAddress},
		{"mapped loopback hex", "http://[::ffff:7f00:1]/", ErrForbiddenAddress},
		{"mapped metadata", "http://[0:0:0:0:0:ffff:a9fe:a9fe]/", ErrForbiddenAddress},
		{"mapped private 10", "http://[::ffff:10.0.0.1]/", ErrForbiddenAddress},
		{"mapped private 192.168", "http://[::ffff:192.168.0.1]/", ErrForbiddenAddress},
		{"mapped CGNAT", "http://[::ffff:100.64.0.1]/", ErrForbiddenAddress},
		{"mapped unspecified", "http://[::ffff:0.0.0.0]/", ErrForbiddenAddress},
		{"NAT64 of loopback", "http://[64:ff9b::7f00:1]/", ErrForbiddenAddress},
		{"NAT64 of metadata", "http://[64:ff9b::169.254.169.254]/", ErrForbiddenAddress},
		{"6to4 of private", "http://[2002:a00:1::]/", ErrForbiddenAddress},

		// numbers that inet_aton and browsers read as IPv4
		{"decimal loopback", "http://2130706433/", ErrForbiddenAddress},
		{"decimal public", "http://134744072/", ErrForbiddenAddress},
		{"hex loopback", "http://0x7f000001/", ErrForbiddenAddress},
		{"octal loopback", "http://0177.0.0.1/", ErrForbiddenAddress},
		{"short form", "http://127.1/", ErrForbiddenAddress},
		{"hex dotted", "http://0x7f.0.0.1/", ErrForbiddenAddress},
		{"leading zeros", "http://127.000.000.001/", ErrForbiddenAddress},
		{"octal metadata", "http://0251.0376.0251.0376/", ErrForbiddenAddress},
		{"mixed hex last", "http://169.254.169.0xfe/", ErrForbiddenAddress},
		{"decimal with trailing dot", "http://2130706433./", ErrForbiddenAddress},

		// well-known names
		{"localhost", "http://localhost:8080/", ErrForbiddenAddress},
		{"LOCALHOST", "http://LOCALHOST/", ErrForbiddenAddress},
		{"localhost with dot", "http://localhost./", ErrForbiddenAddress},
		{"sub.localhost", "http://api.localhost/", ErrForbiddenAddress},
		{"GCP metadata", "http://metadata.google.internal/computeMetadata/v1/", ErrForbiddenAddress},
		{"GCP metadata dot", "http://metadata.google.internal./", ErrForbiddenAddress},
		{"metadata.goog", "http://metadata.goog/", ErrForbiddenAddress},
		{"bare metadata", "http://metadata/", ErrForbiddenAddress},
		{"EC2 instance-data", "http://instance-data/latest/", ErrForbiddenAddress},
		{"EC2 instance-data fqdn", "http://instance-data.ec2.internal/", ErrForbiddenAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := g.CheckURL(tt.url)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckURL(%q) = %v, want %v", tt.url, err, tt.want)
			}
			var ue *URLError
			if !errors.As(err, &ue) || ue.Reason == "" {
				t.Fatalf("CheckURL(%q) = %#v, want *URLError with a reason", tt.url, err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %q leaks query or userinfo", err)
			}
		})
	}
}

// Every row of the deny table is refused at its first and last address, in
// IPv4-mapped form too, and the allow-list opens exactly the prefix given.
func TestGuardDenyTable(t *testing.T) {
	t.Parallel()
	g := NewGuard(nil)
	for _, d := range denied {
		t.Run(d.prefix.String(), func(t *testing.T) {
			t.Parallel()
			first := d.prefix.Addr()
			last := lastAddr(d.prefix)
			for _, a := range []netip.Addr{first, last} {
				if g.refusal(a) == "" {
					t.Errorf("%s is allowed, want refused (%s)", a, d.reason)
				}
				if a.Is4() {
					mapped := netip.AddrFrom16(a.As16())
					if r := g.refusal(mapped); !strings.HasPrefix(r, "IPv4-mapped") {
						t.Errorf("%s refusal %q, want IPv4-mapped …", mapped, r)
					}
				}
			}
			open := NewGuard([]netip.Prefix{d.prefix})
			for _, a := range []netip.Addr{first, last} {
				if r := open.refusal(a); r != "" {
					t.Errorf("allow %s: %s still refused: %s", d.prefix, a, r)
				}
			}
			if next := last.Next(); next.IsValid() && g.refusal(next) == "" && open.refusal(next) != "" {
				t.Errorf("allow %s opened nothing past it but refused %s", d.prefix, next)
			}
		})
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestGuardAllowList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		allow []string
		url   string
		want  error
	}{
		{"loopback opened", []string{"127.0.0.1/32"}, "http://127.0.0.1:8080/", nil},
		{"loopback opened, mapped form", []string{"127.0.0.1/32"}, "http://[::ffff:127.0.0.1]/", nil},
		{"loopback opened, localhost follows", []string{"127.0.0.1/32"}, "http://localhost:8080/", nil},
		{"loopback opened, neighbour still refused", []string{"127.0.0.1/32"}, "http://127.0.0.2/", ErrForbiddenAddress},
		{"loopback opened, ::1 still refused", []string{"127.0.0.1/32"}, "http://[::1]/", ErrForbiddenAddress},
		{"VPN range opened", []string{"10.1.0.0/16"}, "https://10.1.2.3/hook", nil},
		{"VPN range opened, rest of 10/8 refused", []string{"10.1.0.0/16"}, "https://10.2.0.1/hook", ErrForbiddenAddress},
		{"unmasked prefix is masked", []string{"10.1.2.3/16"}, "https://10.1.200.1/", nil},
		{"metadata address opens metadata names", []string{"169.254.169.254/32"}, "http://metadata.google.internal/", nil},
		{"v6 ULA opened", []string{"fd00::/8"}, "http://[fd00::5]/", nil},
		{"allow-list does not open ambiguous numbers", []string{"0.0.0.0/0"}, "http://2130706433/", ErrForbiddenAddress},
		{"allow-list does not open bad schemes", []string{"0.0.0.0/0"}, "ftp://10.0.0.1/", ErrInvalidURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var allow []netip.Prefix
			for _, s := range tt.allow {
				allow = append(allow, netip.MustParsePrefix(s))
			}
			err := NewGuard(allow).CheckURL(tt.url)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("CheckURL(%q) with allow %v = %v, want %v", tt.url, tt.allow, err, tt.want)
			}
		})
	}
}

func TestGuardControl(t *testing.T) {
	t.Parallel()
	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("192.168.7.0/24")})
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "93.184.215.14:443", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
		{"tcp4", "192.168.7.9:80", true},
		{"tcp4", "127.0.0.1:80", false},
		{"tcp4", "169.254.169.254:80", false},
		{"tcp6", "[::1]:80", false},
		{"tcp6", "[::ffff:127.0.0.1]:80", false},
		{"tcp6", "[fe80::1%eth0]:80", false},
		{"tcp4", "192.168.8.1:80", false},
		{"udp4", "93.184.215.14:53", false},
		{"tcp4", "not-an-address", false},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.address, func(t *testing.T) {
			t.Parallel()
			err := g.control(context.Background(), tt.network, tt.address, nil)
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("control(%s, %s) = %v, want ok=%v", tt.network, tt.address, err, tt.ok)
			}
		})
	}
}

// countingServer is an httptest server on 127.0.0.1 that counts the
// connections it accepted. Connections are registered in the accept loop
// before they are served, so once a later request has been answered every
// earlier connection attempt has been counted.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// connsAfterProbe makes one allowed request to srv and returns how many
// connections srv had accepted before it.
func connsAfterProbe(t *testing.T, srv *httptest.Server, conns *atomic.Int64) int64 {
	t.Helper()
	c := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}).HTTPClient(5 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL + "/probe")
	if err != nil {
		t.Fatalf("probe request: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return conns.Load() - 1
}

func serverPort(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if h := u.Hostname(); h != "127.0.0.1" {
		t.Skipf("test server listens on %s, not 127.0.0.1", h)
	}
	return u.Port()
}

// fakeResolver answers every A query with v4 and every AAAA query with v6,
// in process, so tests can point any name at loopback without real DNS.
func fakeResolver(t *testing.T, v4, v6 netip.Addr) *net.Resolver {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			client, server := net.Pipe()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer server.Close()
				serveFakeDNS(server, v4, v6)
			}()
			return client, nil
		},
	}
}

// serveFakeDNS answers length-prefixed (stream) DNS queries on c until it
// is closed.
func serveFakeDNS(c net.Conn, v4, v6 netip.Addr) {
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
			return
		}
		// Question: labels up to a zero byte, then type and class.
		i := 12
		for i < len(q) && q[i] != 0 {
			i += int(q[i]) + 1
		}
		end := i + 5
		if end > len(q) {
			return
		}
		qtype := binary.BigEndian.Uint16(q[i+1:])
		var rdata []byte
		switch qtype {
		case 1:
			rdata = v4.AsSlice()
		case 28:
			rdata = v6.AsSlice()
		}
		resp := []byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}
		resp = append(resp, q[12:end]...)
		if rdata != nil {
			resp[7] = 1                                       // one answer
			resp = append(resp, 0xc0, 12)                     // name: pointer to the question
			resp = binary.BigEndian.AppendUint16(resp, qtype) // type
			resp = append(resp, 0, 1, 0, 0, 0, 60)            // class IN, TTL 60
			resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
			resp = append(resp, rdata...)
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

func TestGuardDialRefusesNamesResolvingToLoopback(t *testing.T) {
	t.Parallel()
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	port := serverPort(t, srv)

	t.Run("localhost via DialContext", func(t *testing.T) {
		g := NewGuard(nil)
		c, err := g.DialContext(context.Background(), "tcp", net.JoinHostPort("localhost", port))
		if err == nil {
			c.Close()
			t.Fatal("DialContext(localhost) connected, want refused")
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Fatalf("DialContext(localhost) = %v, want ErrForbiddenAddress", err)
		}
	})
	t.Run("any name via HTTPClient", func(t *testing.T) {
		// What a public name re-bound to loopback looks like to us: the edge
		// check passes (names are not resolved there), the dial refuses.
		g := NewGuard(nil)
		g.resolver = fakeResolver(t, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"))
		u := "http://" + net.JoinHostPort("rebind.example.com", port) + "/hook"
		if err := g.CheckURL(u); err != nil {
			t.Fatalf("CheckURL(%s) = %v, want nil", u, err)
		}
		c := g.HTTPClient(5 * time.Second)
		defer c.CloseIdleConnections()
		resp, err := c.Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Fatal("POST to a name resolving to loopback succeeded, want refused")
		}
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Fatalf("POST = %v, want ErrForbiddenAddress", err)
		}
	})
	t.Run("the resolver is used", func(t *testing.T) {
		// Same fake DNS, loopback opened: the name connects, so the refusal
		// above came from the address check, not from a failed lookup.
		g := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
		g.resolver = fakeResolver(t, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"))
		c := g.HTTPClient(5 * time.Second)
		defer c.CloseIdleConnections()
		resp, err := c.Get("http://" + net.JoinHostPort("rebind.example.com", port) + "/")
		if err != nil {
			t.Fatalf("GET with loopback allowed: %v", err)
		}
		resp.Body.Close()
	})
	if n := connsAfterProbe(t, srv, conns); n != 1 {
		t.Fatalf("server accepted %d connections before the probe, want 1 (only the allowed one)", n)
	}
}

// hostRecorder records the host of every request a client sends and refuses
// any host outside loopback itself, so even a broken guard could not send
// traffic away from this machine.
type hostRecorder struct {
	next http.RoundTripper
	// names lets host names through: only for a Guard whose resolver is a
	// fakeResolver pointing at loopback.
	names bool
	mu    sync.Mutex
	hosts []string
}

func (r *hostRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.hosts = append(r.hosts, req.URL.Host)
	r.mu.Unlock()
	_, perr := netip.ParseAddr(req.URL.Hostname())
	if req.URL.Hostname() != "127.0.0.1" && !(r.names && perr != nil) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("test transport: refusing non-loopback host " + req.URL.Host)
	}
	return r.next.RoundTrip(req)
}

func (r *hostRecorder) CloseIdleConnections() {
	r.next.(interface{ CloseIdleConnections() }).CloseIdleConnections()
}

func (r *hostRecorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.hosts...)
}

// recordingClient is g.HTTPClient with its transport wrapped in a hostRecorder.
func recordingClient(t *testing.T, g *Guard) (*http.Client, *hostRecorder) {
	t.Helper()
	c := g.HTTPClient(5 * time.Second)
	rec := &hostRecorder{next: c.Transport}
	c.Transport = rec
	t.Cleanup(c.CloseIdleConnections)
	return c, rec
}

func TestHTTPClientRedirects(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", r.URL.Query().Get("u"))
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv, _ := countingServer(t, mux)
	serverPort(t, srv)
	self := strings.TrimPrefix(srv.URL, "http://")
	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})

	tests := []struct {
		name   string
		target string // redirect target
		want   error  // nil: followed
	}{
		{"metadata", "http://169.254.169.254/latest/meta-data/", ErrForbiddenAddress},
		{"private 10/8", "http://10.0.0.1/hook", ErrForbiddenAddress},
		{"mapped private", "http://[::ffff:10.0.0.1]/", ErrForbiddenAddress},
		{"loopback outside the allow-list", "http://127.0.0.2:80/", ErrForbiddenAddress},
		{"v6 loopback", "http://[::1]:80/", ErrForbiddenAddress},
		{"metadata name", "http://metadata.google.internal/computeMetadata/v1/", ErrForbiddenAddress},
		{"decimal IP", "http://2852039166/", ErrForbiddenAddress},
		{"scheme change", "gopher://127.0.0.1:6379/_INFO", ErrInvalidURL},
		{"userinfo", "http://user:pw@" + self + "/ok", ErrInvalidURL},
		{"same server", "http://" + self + "/ok", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, rec := recordingClient(t, g)
			start := srv.URL + "/to?u=" + url.QueryEscape(tt.target)
			resp, err := c.Post(start, "application/json", strings.NewReader(`{"id":"job_1"}`))
			if resp != nil {
				resp.Body.Close()
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("redirect to %s: %v, want followed", tt.target, err)
				}
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("redirect to %s: %v, want %v", tt.target, err, tt.want)
			}
			for _, h := range rec.seen() {
				if h != self {
					t.Fatalf("a request was sent to %s; hosts seen %v", h, rec.seen())
				}
			}
		})
	}
	t.Run("loop stops after MaxRedirects", func(t *testing.T) {
		t.Parallel()
		c, rec := recordingClient(t, g)
		resp, err := c.Post(srv.URL+"/loop", "application/json", strings.NewReader("{}"))
		if resp != nil {
			resp.Body.Close()
		}
		if !errors.Is(err, ErrTooManyRedirects) {
			t.Fatalf("redirect loop: %v, want ErrTooManyRedirects", err)
		}
		if n := len(rec.seen()); n != MaxRedirects+1 {
			t.Fatalf("redirect loop sent %d requests, want %d", n, MaxRedirects+1)
		}
	})
}

func TestHTTPClientRefusesWithoutEdgeCheck(t *testing.T) {
	t.Parallel()
	// A caller that forgot CheckURL still cannot reach a refused literal:
	// the transport checks before dialing (the recorder would refuse the
	// non-loopback host itself, so assert the guard's error).
	g := NewGuard(nil)
	// Should the check ever break, names still must not reach real DNS.
	g.resolver = fakeResolver(t, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"))
	c := g.HTTPClient(5 * time.Second)
	defer c.CloseIdleConnections()
	for _, u := range []string{"http://169.254.169.254/", "http://metadata.google.internal/", "http://[::ffff:10.0.0.1]/"} {
		resp, err := c.Get(u)
		if resp != nil {
			resp.Body.Close()
		}
		var ue *URLError
		if !errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &ue) {
			t.Errorf("GET %s = %v, want *URLError wrapping ErrForbiddenAddress", u, err)
		}
	}
}

func TestHTTPClientTransport(t *testing.T) {
	t.Parallel()
	// Settings with no loopback-observable behaviour, checked directly:
	// net/http never proxies loopback, so a proxy test could not fail here.
	c := NewGuard(nil).HTTPClient(5 * time.Second)
	tr := c.Transport.(*guardedTransport).next
	if tr.Proxy != nil {
		t.Error("transport uses a proxy (HTTP(S)_PROXY would bypass the address check)")
	}
	if tr.DialContext == nil || tr.DialTLSContext != nil {
		t.Error("transport does not dial through the guard only")
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("TLS verification is off")
	}
	if c.CheckRedirect == nil || c.Timeout != 5*time.Second {
		t.Errorf("CheckRedirect set %v, timeout %v", c.CheckRedirect != nil, c.Timeout)
	}
}

func TestHTTPClientVerifiesTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	serverPort(t, srv)
	c := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}).HTTPClient(5 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("GET to a server with an untrusted certificate succeeded")
	}
	var ue *tls.CertificateVerificationError
	if !errors.As(err, &ue) {
		t.Fatalf("GET = %v, want a certificate verification error", err)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://user:pw@hooks.example.com:8443/a/b?token=s3cret#frag", "https://hooks.example.com:8443/a/b"},
		{"http://hooks.example.com", "http://hooks.example.com"},
		{"http://[::1]:80/x?y", "http://[::1]:80/x"},
		{"://bad", "<unparseable>"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := RedactURL(tt.in); got != tt.want {
				t.Fatalf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/x?y=1", "http://127.0.0.1/", "http://[::ffff:7f00:1]/",
		"http://2130706433/", "http://0x7f.1/", "http://localhost./", "http://[fe80::1%25en0]/",
		"http://u:p@h/", "gopher://x", "http://metadata.google.internal/",
	} {
		f.Add(s)
	}
	g := NewGuard(nil)
	f.Fuzz(func(t *testing.T, raw string) {
		err := g.CheckURL(raw)
		if err != nil {
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Fatalf("CheckURL(%q) = %v, not a *URLError", raw, err)
			}
			return
		}
		// Whatever passes is a plain http(s) URL whose literal host, if any,
		// is not refused.
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("CheckURL accepted %q, which does not parse: %v", raw, perr)
		}
		if s := strings.ToLower(u.Scheme); s != "http" && s != "https" || u.User != nil || u.Hostname() == "" {
			t.Fatalf("CheckURL accepted %q", raw)
		}
		if a, perr := netip.ParseAddr(strings.TrimSuffix(u.Hostname(), ".")); perr == nil && g.refusal(a) != "" {
			t.Fatalf("CheckURL accepted %q with refused address %s", raw, a)
		}
		if h := strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
			t.Fatalf("CheckURL accepted %q", raw)
		}
	})
}

func BenchmarkGuardCheckURL(b *testing.B) {
	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")})
	for b.Loop() {
		if err := g.CheckURL("https://hooks.example.com:8443/voicequeue/callback?token=abc"); err != nil {
			b.Fatal(err)
		}
	}
}
