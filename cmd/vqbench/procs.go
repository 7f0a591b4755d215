package main

import (
	"bufio"
	"context"
	"fmt"
	"github.com/voicequeue/voicequeue/internal/procs"
	"os"
	"path/filepath"
	"runtime"
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

// build builds the binaries once, into the work directory, with `go build`.
func (b *bench) build(ctx context.Context) (*binaries, error) {
	if b.bins != nil {
		return b.bins, nil
	}
	root, err := procs.ModuleRoot("vqbench")
	if err != nil {
		return nil, err
	}
	out := filepath.Join(b.dir, "bin")
	pkgs := []string{"./cmd/worker", "./cmd/gateway", "./cmd/enqueue"}
	haveSim := false
	if _, err := os.Stat(filepath.Join(root, "cmd", "voicesim", "main.go")); err == nil {
		pkgs = append(pkgs, "./cmd/voicesim")
		haveSim = true
	}
	t0 := time.Now()
	if err := procs.Build(ctx, root, out, pkgs...); err != nil && haveSim {
		// cmd/voicesim may not build: run the simulator as `vqbench sim` instead.
		b.progress("build with cmd/voicesim failed (%s); using `vqbench sim` instead", firstLine(err.Error()))
		haveSim = false
		pkgs = pkgs[:3]
		if err := procs.Build(ctx, root, out, pkgs...); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
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

// proc is a child process with its output in a log file in the work directory.
type proc = procs.Proc

// start starts a process with exactly env (plus PATH and HOME) as its environment.
func (b *bench) start(name, path string, args []string, env map[string]string) (*proc, error) {
	return procs.Start(name, path, args, env, filepath.Join(b.dir, name+".log"), false)
}

// waitHTTP polls url until it answers 200 or the process exits or ctx ends.
var waitHTTP = procs.WaitHTTP

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
