package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// machine notes the machine and the versions in the table.
func (b *bench) machine(ctx context.Context) {
	model := "unknown"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	redisVersion := "unknown"
	if raw, err := b.rdb.Info(ctx, "server").Result(); err == nil {
		redisVersion = parseInfo(raw)["redis_version"]
	}
	b.rp.note("all", "machine", "%d CPUs (%s), %s %s/%s, Redis %s", runtime.NumCPU(), model,
		runtime.Version(), runtime.GOOS, runtime.GOARCH, redisVersion)
}

// phase measures one in-process phase: wall time, this process' CPU time, the Redis server's
// CPU time, and, when --cpuprofile is set, a CPU profile.
type phase struct {
	b       *bench
	name    string
	t0      time.Time
	cpu0    time.Duration
	ri0     redisInfo
	profile *os.File
}

func (b *bench) begin(ctx context.Context, name string) *phase {
	p := &phase{b: b, name: name, ri0: b.redisInfo(ctx)}
	if b.profile != "" {
		f, err := os.Create(filepath.Join(b.profile, name+".cpu.pprof"))
		if err == nil {
			if err := pprof.StartCPUProfile(f); err != nil {
				_ = f.Close()
			} else {
				p.profile = f
			}
		}
	}
	p.cpu0 = cpuTime()
	p.t0 = time.Now()
	return p
}

// phaseResult is what a phase cost.
type phaseResult struct {
	wall     time.Duration
	cpu      time.Duration // this process, user+system
	redisCPU float64       // seconds, the whole Redis server (other clients included)
	commands int64         // commands the Redis server processed (other clients included)
	ri0, ri1 redisInfo
}

func (p *phase) end(ctx context.Context) phaseResult {
	wall := time.Since(p.t0)
	cpu := cpuTime() - p.cpu0
	if p.profile != nil {
		pprof.StopCPUProfile()
		_ = p.profile.Close()
	}
	ri1 := p.b.redisInfo(ctx)
	cmds, rcpu := p.ri0.diff(ri1)
	return phaseResult{wall: wall, cpu: cpu, redisCPU: rcpu, commands: cmds, ri0: p.ri0, ri1: ri1}
}

func perJob(v float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return v / float64(n)
}

func itoa(n int) string { return strconv.Itoa(n) }

// loadAvg is the 1-minute load average (other users of the machine show here).
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
