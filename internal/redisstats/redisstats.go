// Package redisstats counts what a go-redis client sends to Redis, for tests and benchmarks that
// assert or report round trips per operation.
package redisstats

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// RoundTrips is a go-redis hook (add it with AddHook) that counts round trips: one per command
// sent on its own, one per pipeline executed, whatever it holds; and the commands sent.
type RoundTrips struct {
	single, pipelines, pipelined atomic.Int64
}

// DialHook implements redis.Hook.
func (c *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.single.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.pipelines.Add(1)
		c.pipelined.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// Count returns the round trips and commands counted so far.
func (c *RoundTrips) Count() (roundTrips, commands int64) {
	s, p, n := c.single.Load(), c.pipelines.Load(), c.pipelined.Load()
	return s + p, s + n
}

// Take returns the round trips and commands counted since the last Take, and starts again.
func (c *RoundTrips) Take() (roundTrips, commands int64) {
	s, p, n := c.single.Swap(0), c.pipelines.Swap(0), c.pipelined.Swap(0)
	return s + p, s + n
}
