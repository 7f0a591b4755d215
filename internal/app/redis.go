package app

import (
	"fmt"
	"net/url"
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
func NewRedis(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	switch {
	case strings.HasSuffix(u.Scheme, "+cluster"):
		u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
		opts, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL (cluster): %w", err)
		}
		return redis.NewClusterClient(opts), nil
	case u.Query().Get("master_name") != "":
		opts, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL (sentinel): %w", err)
		}
		return redis.NewFailoverClient(opts), nil
	default:
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		return redis.NewClient(opts), nil
	}
}
