package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/app"
	"github.com/voicequeue/voicequeue/internal/jobstatus"
)

// TestCluster runs the integration suite once against a three-master Redis Cluster that the test
// starts on loopback ports, through the client app.NewRedis builds from the documented
// `redis+cluster://` REDIS_URL form: every job kind and deterministic outcome end to end
// (testEndToEnd), then batches, idempotency, cancel, redials, callee caps and the circuit
// breaker, which all keep several keys per job or per limiter. Each part runs on an emptied
// cluster with a harness of its own. It is skipped only when redis-server or redis-cli is not
// installed.
func TestCluster(t *testing.T) {
	url := startCluster(t)
	rdb, err := app.NewRedis(url)
	if err != nil {
		t.Fatalf("NewRedis(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("NewRedis(%s) built a %T, want *redis.ClusterClient", url, rdb)
	}
	clusterReady(t, cc)

	parts := []struct {
		name string
		cfg  func(*app.Config)
		run  func(t *testing.T, h *harness)
	}{
		{"end_to_end", nil, testEndToEnd},
		{"batch_idempotency_cancel", nil, testClusterAPI},
		{"redials", func(c *app.Config) {
			n, d := 1, 50*time.Millisecond
			c.Redials = map[string]*int{"notify": &n}
			c.RedialDelays = map[string]*time.Duration{"notify": &d}
		}, testClusterRedials},
		{"callee_caps", func(c *app.Config) {
			caps := "1/60s"
			c.CalleeCaps = map[string]*string{"verify": &caps}
			c.CallRate, c.CallBurst, c.MaxConcurrentCalls = 50, 1, 5
		}, testClusterCalleeCap},
		{"provider_outage", func(c *app.Config) {
			c.BreakerThreshold, c.BreakerCooldown, c.BreakerMaxCooldown = 3, 200*time.Millisecond, 400*time.Millisecond
		}, testClusterOutage},
	}
	for _, p := range parts {
		t.Run(p.name, func(t *testing.T) {
			flushCluster(t, cc)
			h := newHarness(t, harnessOptions{rdb: cc, cfg: func(c *app.Config) {
				c.RedisURL = url
				if p.cfg != nil {
					p.cfg(c)
				}
			}})
			p.run(t, h)
			checkSpreadOverMasters(t, cc)
			checkNoClusterErrors(t, h.logs.String())
		})
	}
}

// testClusterAPI: a batch, an idempotent resubmission and a cancel, whose keys (record,
// idempotency index, asynq task) fall in different slots.
func testClusterAPI(t *testing.T, h *harness) {
	var batch struct {
		Accepted int `json:"accepted"`
		Results  []struct {
			ID    string `json:"id"`
			Error string `json:"error"`
		} `json:"results"`
	}
	jobs := map[string]any{"jobs": []map[string]any{
		{"kind": "verify", "to": "+8613800000061"},
		{"kind": "notify", "to": "+8613800000062", "voice_file": "a.wav", "idempotency_key": "cluster-batch-1"},
		{"kind": "click2call", "from": "+8613800000063", "to": "+8613800000064"},
	}}
	if code := h.do("POST", "/v1/jobs/batch", jobs, &batch); code != 200 || batch.Accepted != 3 {
		t.Fatalf("POST /v1/jobs/batch = %d %+v", code, batch)
	}
	for _, r := range batch.Results {
		if rec := h.waitSettled(r.ID, true); rec.State != jobstatus.StateCompleted || h.callsFor(r.ID) != 1 {
			t.Errorf("batch job %s: %s with %d calls, want completed with 1", r.ID, rec.State, h.callsFor(r.ID))
		}
	}
	var again struct {
		ID       string `json:"id"`
		Existing bool   `json:"existing"`
	}
	job := map[string]any{"kind": "notify", "to": "+8613800000062", "voice_file": "a.wav", "idempotency_key": "cluster-batch-1"}
	if code := h.do("POST", "/v1/jobs", job, &again); code != 200 || again.ID != batch.Results[1].ID {
		t.Errorf("resubmission with the same idempotency key = %d %+v, want 200 and job %s", code, again, batch.Results[1].ID)
	}

	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	id := h.submit(map[string]any{"kind": "notify", "to": "+8613800000065", "voice_file": "a.wav", "scheduled_at": at})
	var rec jobstatus.Record
	if code := h.do("DELETE", "/v1/jobs/"+id, nil, &rec); code != 200 || rec.State != jobstatus.StateCanceled {
		t.Fatalf("DELETE = %d, state %s", code, rec.State)
	}
	if n, err := h.rdb.ZCard(t.Context(), "asynq:{notify}:scheduled").Result(); err != nil || n != 0 {
		t.Errorf("%d scheduled tasks left after cancel (err %v)", n, err)
	}
}

// testClusterRedials: a busy notify job is dialled again from its stored task payload.
func testClusterRedials(t *testing.T, h *harness) {
	busy := h.submit(map[string]any{"kind": "notify", "to": "+8613800000486", "voice_file": "a.wav"})
	rec := h.waitFor(busy, 20*time.Second, func(r jobstatus.Record) bool {
		return r.State == jobstatus.StateBusy && r.Attempts == 2 && r.CDR != nil
	})
	if want := "queued,dispatching,calling,busy,queued,dispatching,calling,busy"; states(rec) != want {
		t.Errorf("events %s, want %s", states(rec), want)
	}
	if n := h.callsFor(busy); n != 2 {
		t.Errorf("simulator saw %d calls, want 2 (1 + 1 redial)", n)
	}
}

// testClusterCalleeCap: the per-callee cap holds across jobs.
func testClusterCalleeCap(t *testing.T, h *harness) {
	first := h.submit(map[string]any{"kind": "verify", "to": "+8613800000071"})
	if rec := h.waitSettled(first, true); rec.State != jobstatus.StateCompleted {
		t.Fatalf("first verify ended %s", rec.State)
	}
	second := h.submit(map[string]any{"kind": "verify", "to": "+8613800000071"})
	rec := h.waitFor(second, 10*time.Second, func(r jobstatus.Record) bool { return r.State.Final() })
	if rec.State != jobstatus.StateThrottled || h.callsFor(second) != 0 {
		t.Errorf("second verify: %s (%s) with %d calls, want throttled with none", rec.State, rec.Reason, h.callsFor(second))
	}
}

// testClusterOutage: during a provider outage the shared breaker opens, and every job completes
// after recovery.
func testClusterOutage(t *testing.T, h *harness) {
	h.sim.SetOutage("503", true)
	var ids []string
	for i := range 6 {
		ids = append(ids, h.submit(map[string]any{"kind": "notify", "to": fmt.Sprintf("+86138000008%02d", i), "voice_file": "a.wav"}))
	}
	deadline := time.Now().Add(10 * time.Second)
	for counter(t, h.registry, "voicequeue_breaker_transitions_total", map[string]string{"to": "open"}) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never opened during the outage")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.sim.SetOutage("503", false)
	for _, id := range ids {
		rec := h.waitFor(id, 30*time.Second, func(r jobstatus.Record) bool { return r.State.Final() })
		if rec.State != jobstatus.StateCompleted || h.callsFor(id) != 1 {
			t.Errorf("job %s ended %s (%s) with %d calls, want completed with 1", id, rec.State, rec.Reason, h.callsFor(id))
		}
	}
}

// startCluster starts three redis-server cluster nodes on free loopback ports (killed when the
// test ends), joins them into a cluster of three masters with redis-cli and returns the
// REDIS_URL of the cluster.
func startCluster(t *testing.T) string {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: skipping the Redis Cluster run (apt-get install redis-server)")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed: skipping the Redis Cluster run (apt-get install redis-tools)")
	}
	dir := t.TempDir()
	addrs := make([]string, 3)
	for i := range addrs {
		port := freeClusterPort(t)
		addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
		var out bytes.Buffer
		cmd := exec.Command(server,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(port)+".conf"),
			"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server on %s: %v", addrs[i], err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		waitPing(t, addrs[i], &out)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, a := range addrs {
		waitClusterOK(t, a)
	}
	return "redis+cluster://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
}

// freeClusterPort returns a free loopback port whose cluster bus port (port + 10000) is free too.
func freeClusterPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		_ = bus.Close()
		return port
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

func waitPing(t *testing.T, addr string, out *bytes.Buffer) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(t.Context()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s not answering after 10s:\n%s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitClusterOK waits until the node reports cluster_state:ok with every slot assigned.
func waitClusterOK(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := c.ClusterInfo(t.Context()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_assigned:16384") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster node %s not ok after 20s: %v\n%s", addr, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterReady waits until the client knows three masters.
func clusterReady(t *testing.T, cc *redis.ClusterClient) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cc.ReloadState(t.Context())
		var masters atomic.Int32 // ForEachMaster calls fn concurrently
		err := cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error {
			masters.Add(1)
			return c.Ping(ctx).Err()
		})
		if err == nil && masters.Load() == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster client sees %d masters (err %v), want 3", masters.Load(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func flushCluster(t *testing.T, cc *redis.ClusterClient) {
	t.Helper()
	err := cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error {
		return c.FlushAll(ctx).Err()
	})
	if err != nil {
		t.Fatalf("flush the cluster: %v", err)
	}
}

// checkSpreadOverMasters asserts that the keys of the run landed on more than one master: the
// run exercised cross-slot access rather than one lucky slot.
func checkSpreadOverMasters(t *testing.T, cc *redis.ClusterClient) {
	t.Helper()
	var mu sync.Mutex // ForEachMaster calls fn concurrently
	var withKeys []string
	err := cc.ForEachMaster(t.Context(), func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		if n > 0 {
			mu.Lock()
			withKeys = append(withKeys, c.Options().Addr)
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		t.Fatalf("DBSIZE on the masters: %v", err)
	}
	if len(withKeys) < 2 {
		t.Errorf("keys on %d master(s) %v, want them spread over at least 2", len(withKeys), withKeys)
	}
}

// checkNoClusterErrors fails on log lines where Redis refused a command because of the cluster:
// keys of different slots in one script or transaction (CROSSSLOT), or a redirection the client
// did not follow.
func checkNoClusterErrors(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		for _, bad := range []string{"CROSSSLOT", "MOVED ", "ASK ", "CLUSTERDOWN", "TRYAGAIN"} {
			if strings.Contains(line, bad) {
				t.Errorf("cluster error in the logs: %s", line)
				break
			}
		}
	}
}
