package app

import (
	"cmp"
	"fmt"
	"net/url"
	"runtime"
	"strings"

	"github.com/redis/go-redis/v9"
)

// NewRedis builds the one Redis client a process shares, from REDIS_URL:
//
//	redis://[user:pass@]host:6379/0                          standalone (rediss:// for TLS)
//	redis://[user:pass@]sentinel1:26379/0?master_name=mymaster&addr=sentinel2:26379
//	                                                          Sentinel (the hosts are sentinels)
//	redis+cluster://[user:pass@]node1:7000?addr=node2:7001&addr=node3:7002
//	                                                          Cluster (rediss+cluster:// for TLS)
//
// Unless the URL sets pool_size, the connection pool (per node on a Cluster) holds up to
// minPoolSize connections (see there).
func NewRedis(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	poolSize := 0 // go-redis' default
	if !u.Query().Has("pool_size") {
		poolSize = max(minPoolSize, 10*runtime.GOMAXPROCS(0))
	}
	switch {
	case strings.HasSuffix(u.Scheme, "+cluster"):
		u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
		opts, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL (cluster): %w", err)
		}
		opts.PoolSize = cmp.Or(opts.PoolSize, poolSize)
		return redis.NewClusterClient(opts), nil
	case u.Query().Get("master_name") != "":
		opts, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL (sentinel): %w", err)
		}
		opts.PoolSize = cmp.Or(opts.PoolSize, poolSize)
		return redis.NewFailoverClient(opts), nil
	default:
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		opts.PoolSize = cmp.Or(opts.PoolSize, poolSize)
		return redis.NewClient(opts), nil
	}
}

// minPoolSize is the smallest connection pool a process gets when REDIS_URL does not set
// pool_size. go-redis' default, 10 × GOMAXPROCS, is 20 connections on a 2-CPU pod, while the
// gateway alone runs far more commands at once: each batch in flight enqueues its tasks on 16
// goroutines (asynq has no batch enqueue; `enqueue file` keeps 4 batches in flight: 64), beside
// the push handlers (the bench drives 32 connections) and single submissions; a worker at
// concurrency 100 has up to 100 handlers each waiting on Redis, plus asynq's own loops. With 20
// connections those goroutines queue in the pool (ConnPool.Get was 7.6 % of the gateway's CPU in
// the bulk-submit profile, docs/benchmarks.md). Connections are dialled only when needed and
// closed when idle, so the larger cap costs nothing at rest; 128 per process is far below
// Redis' default maxclients (10,000) even with dozens of pods.
const minPoolSize = 128
