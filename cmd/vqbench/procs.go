package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// binaries are the commands built for the targets that run processes.
type binaries struct {
	worker, gateway, enqueue string
	// voicesim is cmd/voicesim when the repository has it; otherwise "" and the simulator runs
	// as `vqbench sim`, the same package wrapped by this binary.
	voicesim string
	self     string
}

// build builds the binaries once, into the work directory, with `go build` (the go command that
// runs this bench, found through GOROOT, or "go" on PATH).
func (b *bench) build(ctx context.Context) (*binaries, error) {
	if b.bins != nil {
		return b.bins, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(b.dir, "bin")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	pkgs := []string{"./cmd/worker", "./cmd/gateway", "./cmd/enqueue"}
	haveSim := false
	if _, err := os.Stat(filepath.Join(root, "cmd", "voicesim", "main.go")); err == nil {
		pkgs = append(pkgs, "./cmd/voicesim")
		haveSim = true
	}
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, goCommand(), append([]string{"build", "-o", out + string(os.PathSeparator)}, pkgs...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil && haveSim {
		// cmd/voicesim may be half-written by someone else: build without it.
		b.progress("build with cmd/voicesim failed (%v: %s); using `vqbench sim` instead", err, firstLine(stderr.String()))
		haveSim = false
		stderr.Reset()
		cmd = exec.CommandContext(ctx, goCommand(), append([]string{"build", "-o", out + string(os.PathSeparator)}, pkgs[:3]...)...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, io.Discard, &stderr
		err = cmd.Run()
		if err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs[:3], " "), err, stderr.String())
		}
	} else if err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, stderr.String())
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	bins := &binaries{
		worker: filepath.Join(out, "worker"), gateway: filepath.Join(out, "gateway"),
		enqueue: filepath.Join(out, "enqueue"), self: self,
	}
	if haveSim {
		bins.voicesim = filepath.Join(out, "voicesim")
	}
	b.progress("built %s in %.1fs", strings.Join(pkgs, " "), time.Since(t0).Seconds())
	b.bins = bins
	return bins, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// goCommand is the go tool of this toolchain when it can be found, else "go".
func goCommand() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// moduleRoot finds the directory of go.mod from the working directory upwards.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "cmd", "worker")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run vqbench from inside the voicequeue module (go.mod not found)")
		}
		dir = parent
	}
}

// proc is a child process with its output in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start starts a process with exactly env (plus PATH and HOME) as its environment.
func (b *bench) start(name, path string, args []string, env map[string]string) (*proc, error) {
	logPath := filepath.Join(b.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits up to grace, then SIGKILL.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill sends SIGKILL and waits.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last lines of the process log.
func (p *proc) tail(n int) string {
	raw, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitHTTP polls url until it answers 200 or the process exits or ctx ends.
func waitHTTP(ctx context.Context, url string, p *proc, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v", url, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// procStatus reads VmRSS and VmHWM (bytes) of a process from /proc/PID/status.
func procStatus(pid int) (rss, hwm int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) < 1 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			hwm = n << 10
		}
	}
	return rss, hwm, sc.Err()
}

// rssSampler samples a process' VmRSS until stopped and keeps the largest value.
type rssSampler struct {
	mu   sync.Mutex
	max  int64
	n    int
	sum  int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, _, err := procStatus(pid); err == nil {
				s.mu.Lock()
				s.max = max(s.max, rss)
				s.sum += rss
				s.n++
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// end stops sampling and returns the peak and mean RSS.
func (s *rssSampler) end() (peak, mean int64) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n > 0 {
		mean = s.sum / int64(s.n)
	}
	return s.max, mean
}

// cpuTime is this process' user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the user+system CPU time of a child process so far, from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which is in parentheses and may hold spaces).
	s := string(raw)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

func gomaxprocs() int { return runtime.GOMAXPROCS(0) }
