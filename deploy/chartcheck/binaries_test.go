package chartcheck

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// binaryHelp is what a binary's --help says it reads.
type binaryHelp struct {
	flags    map[string]bool   // flag names
	env      map[string]bool   // environment variables, including NAME_FILE of secrets
	defaults map[string]string // environment variable → default shown
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
	helpMu    sync.Mutex
	helpCache = map[string]*binaryHelp{}
)

// binaryPath builds cmd/gateway, cmd/worker and cmd/voicesim of the application module once per
// test process and returns the path of name.
func binaryPath(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "chartcheck-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+string(os.PathSeparator), "./cmd/gateway", "./cmd/worker", "./cmd/voicesim")
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build the binaries (in %s): %v\n%s", repoRoot, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	flagLineRE   = regexp.MustCompile(`^  -([a-z0-9][a-z0-9-]*)(?: \S+)?$`)
	envRE        = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)\)`)
	defaultRE    = regexp.MustCompile(`\(default "?([^")]*)"?\)`)
	secretLineRE = regexp.MustCompile(`^  ([A-Z][A-Z0-9_]*)$`)
	fileEnvRE    = regexp.MustCompile(`\(or ([A-Z][A-Z0-9_]*_FILE)\)`)
)

// help runs `name --help` and reads the flags and variables it lists.
func help(t *testing.T, name string) *binaryHelp {
	t.Helper()
	helpMu.Lock()
	defer helpMu.Unlock()
	if h, ok := helpCache[name]; ok {
		return h
	}
	cmd := exec.Command(binaryPath(t, name), "--help")
	cmd.Env = []string{} // defaults as the image has them, not this machine's environment
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", name, err, out)
	}
	h := parseHelp(string(out))
	if len(h.flags) < 3 || len(h.env) < 3 {
		t.Fatalf("%s --help lists %d flags and %d variables: the parser does not understand it:\n%s", name, len(h.flags), len(h.env), out)
	}
	helpCache[name] = h
	return h
}

func parseHelp(text string) *binaryHelp {
	h := &binaryHelp{flags: map[string]bool{}, env: map[string]bool{}, defaults: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLineRE.FindStringSubmatch(line); m != nil {
			h.flags[m[1]] = true
			continue
		}
		if m := secretLineRE.FindStringSubmatch(line); m != nil {
			h.env[m[1]] = true
		}
		for _, m := range fileEnvRE.FindAllStringSubmatch(line, -1) {
			h.env[m[1]] = true
		}
		for _, m := range envRE.FindAllStringSubmatch(line, -1) {
			h.env[m[1]] = true
			if d := defaultRE.FindStringSubmatch(line); d != nil {
				h.defaults[m[1]] = d[1]
			}
		}
	}
	return h
}

func TestParseHelp(t *testing.T) {
	const text = `Usage: worker [flags]

  -admin-addr string
    	admin listen address: /healthz, /readyz, /metrics (env VOICEQUEUE_ADMIN_ADDR) (default ":9091")
  -dev
    	embedded demo
  -concurrency int
    	worker: tasks processed at once (env VOICEQUEUE_CONCURRENCY) (default 20)

Secrets (environment only, or NAME_FILE naming a file that holds the value):
  VOICEQUEUE_APP_SECRET
    	provider APP_Secret (or VOICEQUEUE_APP_SECRET_FILE)
`
	h := parseHelp(text)
	for _, f := range []string{"admin-addr", "dev", "concurrency"} {
		if !h.flags[f] {
			t.Errorf("flag %s not found", f)
		}
	}
	for _, e := range []string{"VOICEQUEUE_ADMIN_ADDR", "VOICEQUEUE_CONCURRENCY", "VOICEQUEUE_APP_SECRET", "VOICEQUEUE_APP_SECRET_FILE"} {
		if !h.env[e] {
			t.Errorf("variable %s not found", e)
		}
	}
	if h.defaults["VOICEQUEUE_ADMIN_ADDR"] != ":9091" || h.defaults["VOICEQUEUE_CONCURRENCY"] != "20" {
		t.Errorf("defaults %v", h.defaults)
	}
	if h.env["NAME_FILE"] || h.flags["name"] {
		t.Errorf("prose parsed as a setting: %v %v", h.env, h.flags)
	}
}

// binaryOf returns the binary a container runs, from its command.
func binaryOf(t *testing.T, c corev1.Container) string {
	t.Helper()
	if len(c.Command) != 1 || !strings.HasPrefix(c.Command[0], "/usr/local/bin/") {
		t.Fatalf("container %s: command %v, want one of the image's /usr/local/bin binaries", c.Name, c.Command)
	}
	return path.Base(c.Command[0])
}

// flagsOf returns the flag names in args ("--name=value", "-name value", "--name").
func flagsOf(args []string) []string {
	var out []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		out = append(out, name)
	}
	return out
}

// portOf returns the port of a listen address like ":8080" or "0.0.0.0:8080".
func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

// addrVars are, per binary, the variables holding its listen addresses and the container port
// name each must match.
var addrVars = map[string]map[string]string{
	"gateway":  {"VOICEQUEUE_HTTP_ADDR": "http", "VOICEQUEUE_ADMIN_ADDR": "admin"},
	"worker":   {"VOICEQUEUE_ADMIN_ADDR": "admin"},
	"voicesim": {"VOICESIM_ADDR": "http"},
}

// TestChartEnvExistsInBinaries: every variable and flag the chart gives a container is one its
// binary reads (a misspelt variable would be ignored silently), and every container port is the
// one the binary listens on.
func TestChartEnvExistsInBinaries(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			for _, p := range envProblems(t, s.render(t)) {
				t.Error(p)
			}
		})
	}
	// The check itself: a misspelt variable and a port that moved must be caught.
	for _, tt := range []struct {
		name string
		set  map[string]any
		want string
	}{
		{"misspelt variable", map[string]any{"config": map[string]any{"extraEnv": map[string]any{"VOICEQUEUE_CALL_RATEE": 5}}},
			"variable VOICEQUEUE_CALL_RATEE is not read by gateway"},
		{"admin address moved by hand", map[string]any{"gateway": map[string]any{"extraEnv": map[string]any{"VOICEQUEUE_ADMIN_ADDR": ":9999"}}},
			"container port admin is 9090, but gateway listens on :9999"},
		{"simulator variable given to the worker", map[string]any{"worker": map[string]any{"extraEnv": map[string]any{"VOICESIM_SPEED": 2}}},
			"variable VOICESIM_SPEED is not read by worker"},
	} {
		t.Run("catches "+tt.name, func(t *testing.T) {
			rel := scenario{name: tt.name, set: tt.set}.render(t)
			problems := envProblems(t, rel)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %q lack %q", problems, tt.want)
			}
		})
	}
}

// envProblems lists the variables, flags and ports of rel's containers that their binaries do
// not know or do not listen on.
func envProblems(t *testing.T, rel *Release) []string {
	t.Helper()
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for name, d := range rel.Deployments() {
		for _, c := range d.Spec.Template.Spec.Containers {
			bin := binaryOf(t, c)
			h := help(t, bin)
			env := containerEnv(t, rel, c)
			for k := range env {
				if !h.env[k] {
					add("%s: variable %s is not read by %s (see %s --help)", short(name), k, bin, bin)
				}
			}
			for _, f := range flagsOf(c.Args) {
				if !h.flags[f] {
					add("%s: flag --%s is not a flag of %s", short(name), f, bin)
				}
			}
			vars, ok := addrVars[bin]
			if !ok {
				add("%s: no listen addresses known for %s", short(name), bin)
				continue
			}
			var portNames []string
			for v, portName := range vars {
				addr, set := env[v]
				if !set {
					addr = h.defaults[v]
				}
				want := portOf(t, addr)
				portNames = append(portNames, portName)
				i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == portName })
				if i < 0 {
					add("%s: no container port %q for %s=%s", short(name), portName, v, addr)
				} else if c.Ports[i].ContainerPort != want {
					add("%s: container port %s is %d, but %s listens on %s", short(name), portName, c.Ports[i].ContainerPort, bin, addr)
				}
			}
			for _, p := range c.Ports {
				if !slices.Contains(portNames, p.Name) {
					add("%s: container port %s (%d) is not one %s listens on", short(name), p.Name, p.ContainerPort, bin)
				}
			}
		}
	}
	return problems
}

// TestBinariesServeTheirProbes starts each binary as the chart configures it (every optional
// part on), against an in-process Redis and with its listen addresses moved to free loopback
// ports, and asks each probe and each Ingress path what the kubelet and the Ingress would ask:
// liveness must answer 200, readiness 200 (Redis is reachable), the pushes and the API anything
// but 404. With Redis gone, the worker turns unready and the gateway stays ready (push spool).
// Then SIGTERM must stop it cleanly within its terminationGracePeriodSeconds.
func TestBinariesServeTheirProbes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binaries")
	}
	rel := scenarios[2].render(t)
	secret := map[string][]byte{}
	for _, o := range rel.Find("Secret") {
		secret = o.Value.(*corev1.Secret).Data
	}
	var ingressPaths []string
	for _, o := range rel.Find("Ingress") {
		ing := o.Value.(*networkingv1.Ingress)
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				ingressPaths = append(ingressPaths, p.Path)
			}
		}
	}

	for name, d := range rel.Deployments() {
		t.Run(short(name), func(t *testing.T) {
			mr := miniredis.RunT(t)
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			bin := binaryOf(t, c)
			env := containerEnv(t, rel, c)
			for k, v := range env {
				if ref, ok := strings.CutPrefix(v, "secret:"); ok {
					_, key, _ := strings.Cut(ref, "/")
					env[k] = string(secret[key])
				}
			}
			if _, ok := env["REDIS_URL"]; ok {
				env["REDIS_URL"] = "redis://" + mr.Addr() + "/0"
			}
			// Volumes: a directory per mount; a provider CA bundle where the chart mounts one.
			for _, m := range c.VolumeMounts {
				dir := t.TempDir()
				if m.Name == "provider-ca" {
					writeTestCA(t, filepath.Join(dir, "ca.crt"))
				}
				for k, v := range env {
					if rest, ok := strings.CutPrefix(v, m.MountPath); ok {
						env[k] = dir + rest
					}
				}
			}
			// Listen addresses: each container port moves to a free loopback port.
			local := map[string]string{} // port name → host:port
			for v, portName := range addrVars[bin] {
				addr := freeAddr(t)
				env[v] = addr
				local[portName] = addr
			}
			proc := start(t, binaryPath(t, bin), env)

			get := func(method, portName, p string) int {
				t.Helper()
				addr, ok := local[portName]
				if !ok {
					t.Fatalf("port %s is not a port %s listens on", portName, bin)
				}
				return request(t, proc, method, "http://"+addr+p)
			}
			for _, pr := range []struct {
				kind  string
				probe *corev1.Probe
			}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}} {
				if code := get("GET", pr.probe.HTTPGet.Port.String(), pr.probe.HTTPGet.Path); code != http.StatusOK {
					t.Errorf("%s probe GET %s on port %s: %d, want 200", pr.kind, pr.probe.HTTPGet.Path, pr.probe.HTTPGet.Port.String(), code)
				}
			}
			if bin == "gateway" {
				for _, p := range ingressPaths {
					target := p + "/" + string(secret["push-secret"]) + "/status"
					if p == "/v1" {
						target = "/v1/jobs"
					}
					if code := get("POST", "http", target); code == http.StatusNotFound {
						t.Errorf("Ingress path %s: POST %s on the http port is 404: the gateway does not serve it", p, target)
					}
				}
				if code := get("GET", "admin", "/metrics"); code != http.StatusOK {
					t.Errorf("GET /metrics on the admin port: %d", code)
				}
			}
			// Redis goes away: the worker leaves the Service's endpoints, the gateway stays (its
			// spool keeps the pushes, which are never re-sent).
			if bin != "voicesim" {
				mr.Close()
				want := map[string]int{"gateway": http.StatusOK, "worker": http.StatusServiceUnavailable}[bin]
				if code := get("GET", c.ReadinessProbe.HTTPGet.Port.String(), c.ReadinessProbe.HTTPGet.Path); code != want {
					t.Errorf("readiness with Redis down: %d, want %d", code, want)
				}
				if code := get("GET", c.LivenessProbe.HTTPGet.Port.String(), c.LivenessProbe.HTTPGet.Path); code != http.StatusOK {
					t.Errorf("liveness with Redis down: %d, want 200 (a restart would not bring Redis back)", code)
				}
			}
			grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
			if err := proc.stop(grace); err != nil {
				t.Errorf("SIGTERM: %v\n%s", err, proc.output())
			}
		})
	}
}

// process is a started binary.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() < 64<<10 {
		s.b.Write(p)
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, bin string, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{cmd: cmd, out: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) output() string { return p.out.String() }

// stop sends SIGTERM and waits up to grace for a clean exit.
func (p *process) stop(grace time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		if err != nil {
			return fmt.Errorf("exited with %v", err)
		}
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("still running after the %v grace period; Kubernetes would kill it", grace)
	}
}

// request sends one request, retrying while the process is still starting to listen.
func request(t *testing.T, p *process, method, url string) int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		select {
		case err := <-p.done:
			t.Fatalf("%s exited before serving %s: %v\n%s", p.cmd.Path, url, err, p.output())
		case <-ctx.Done():
			t.Fatalf("%s %s: %v\n%s", method, url, err, p.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeTestCA writes a self-signed CA certificate in PEM, as a provider CA bundle.
func writeTestCA(t *testing.T, file string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chartcheck test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
