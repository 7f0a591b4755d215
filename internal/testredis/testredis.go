// Package testredis gives tests a Redis of their own: an in-process miniredis for unit speed, or
// a database on the real server at REDIS_URL for integration, leased so that test processes
// running in parallel never share one, and flushed before and after use.
package testredis

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// DefaultURL is the real server used when REDIS_URL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// leasePrefix names the keys in DB 0 that record which test database is taken.
const leasePrefix = "voicequeue:testlease:db:"

// leaseTTL bounds how long a crashed test process can keep a database.
const leaseTTL = 10 * time.Minute

// Mini starts an in-process miniredis that is closed when the test ends.
func Mini(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return mr, rdb
}

// URL returns REDIS_URL or DefaultURL.
func URL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Real leases a database on the real Redis server at REDIS_URL (databases 1–15; DB 0 only holds
// the leases), flushes it, and returns its options and a client. The database is flushed again and
// released when the test ends. The test fails when the server is unreachable: the suite promises
// integration coverage, so a missing server is an error, not a skip (set VOICEQUEUE_SKIP_REAL_REDIS=1
// to skip deliberately).
func Real(t testing.TB) (*redis.Options, *redis.Client) {
	t.Helper()
	if os.Getenv("VOICEQUEUE_SKIP_REAL_REDIS") == "1" {
		t.Skip("VOICEQUEUE_SKIP_REAL_REDIS=1: skipping a test that needs the real Redis")
	}
	base, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatalf("testredis: parse REDIS_URL %q: %v", URL(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	leaseOpts := *base
	leaseOpts.DB = 0
	leases := redis.NewClient(&leaseOpts)
	defer leases.Close()
	if err := leases.Ping(ctx).Err(); err != nil {
		t.Fatalf("testredis: real Redis at %s is not reachable (start it with `redis-server --daemonize yes --port 6379 --save \"\"`): %v", base.Addr, err)
	}
	token := strconv.Itoa(os.Getpid()) + ":" + strconv.FormatInt(time.Now().UnixNano(), 10)
	db := -1
	for db < 0 {
		for n := 1; n <= 15; n++ {
			ok, err := leases.SetNX(ctx, leasePrefix+strconv.Itoa(n), token, leaseTTL).Result()
			if err != nil {
				t.Fatalf("testredis: lease a database: %v", err)
			}
			if ok {
				db = n
				break
			}
		}
		if db < 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("testredis: no free test database on %s after waiting", base.Addr)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	opts := *base
	opts.DB = db
	rdb := redis.NewClient(&opts)
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("testredis: flush db %d: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rdb.FlushDB(ctx).Err()
		_ = rdb.Close()
		l := redis.NewClient(&leaseOpts)
		defer l.Close()
		// Release only our own lease.
		if v, _ := l.Get(ctx, leasePrefix+strconv.Itoa(db)).Result(); v == token {
			_ = l.Del(ctx, leasePrefix+strconv.Itoa(db)).Err()
		}
	})
	return &opts, rdb
}

// Addr formats the options as host:port/db for log messages.
func Addr(o *redis.Options) string { return fmt.Sprintf("%s/%d", o.Addr, o.DB) }
