package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is the run's own redis-server: loopback, a free port, AOF persistence (fsync every
// second, and on shutdown) in a directory of the run. It is restarted on the same port and
// directory, so it comes back with its data.
type redisServer struct {
	bin  string
	addr string
	dir  string
	log  string
	p    *proc
}

func newRedisServer(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH (apt-get install redis-server): %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "redis")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, fmt.Errorf("create redis directory: %w", err)
	}
	return &redisServer{bin: bin, addr: addr, dir: data, log: filepath.Join(dir, "redis.log")}, nil
}

func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

func (r *redisServer) args() []string {
	_, port, _ := strings.Cut(r.addr, ":")
	return []string{
		"--port", port, "--bind", "127.0.0.1", "--protected-mode", "yes",
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "everysec",
		"--save", "", "--daemonize", "no", "--logfile", "",
		"--maxclients", "2000",
	}
}

// start starts redis-server and waits until it answers PING with its data loaded.
func (r *redisServer) start(ctx context.Context) error {
	p, err := startProc("redis", r.bin, r.args(), nil, r.log)
	if err != nil {
		return err
	}
	r.p = p
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// PING answers LOADING while the AOF is read; wait for a real answer.
		if err := rdb.Ping(ctx).Err(); err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("redis-server exited on start: %v (see %s)", p.Err(), r.log)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s not ready after 20s", r.addr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop shuts Redis down with SIGTERM (it writes and fsyncs the AOF before exiting); it reports
// whether the shutdown was clean within 15 s (else the process is killed).
func (r *redisServer) stop() bool {
	if r.p == nil {
		return true
	}
	return r.p.Stop(15 * time.Second)
}

// restart stops Redis and starts it again on the same port and directory. It returns how long
// Redis did not answer, and the key counts just before and after.
func (r *redisServer) restart(ctx context.Context) (down time.Duration, before, after int64, err error) {
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
	defer rdb.Close()
	before, _ = rdb.DBSize(ctx).Result()
	t0 := time.Now()
	if !r.stop() {
		return 0, before, 0, fmt.Errorf("redis-server did not shut down within 15s (killed)")
	}
	if err := r.start(ctx); err != nil {
		return time.Since(t0), before, 0, fmt.Errorf("start redis-server again: %w", err)
	}
	down = time.Since(t0)
	after, _ = rdb.DBSize(ctx).Result()
	return down, before, after, nil
}

// aofEnabled reads from INFO persistence whether the server runs with AOF on.
func aofEnabled(ctx context.Context, rdb *redis.Client) bool {
	raw, err := rdb.Info(ctx, "persistence").Result()
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(raw, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == "aof_enabled" {
			n, _ := strconv.Atoi(v)
			return n == 1
		}
	}
	return false
}
