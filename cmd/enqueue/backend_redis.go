package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicequeue/voicequeue/internal/queue"
	"github.com/voicequeue/voicequeue/internal/webhook"
)

// redisBackend submits straight to Redis with the same queue.Submitter the gateway uses, so a
// job is accepted by exactly the same rules either way.
type redisBackend struct {
	sub     *queue.Submitter
	rdb     redis.UniversalClient
	canSeal bool          // a code key is configured: verify jobs can be submitted
	timeout time.Duration // per batch
}

// redisConfig is what a redisBackend needs.
type redisConfig struct {
	URL              string
	DefaultRegion    string
	CodeKey          []byte // nil: verify jobs are refused (their code could not be opened by the worker)
	CheckCallbackURL func(string) error
	Timeout          time.Duration // per batch; 0 = none beyond ctx
	Conns            int           // commands in flight at once (pool size unless the URL sets pool_size)
	Logger           *slog.Logger
}

// parseRedisURL checks a --redis value.
func parseRedisURL(raw string) (*redis.Options, error) {
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, usagef("redis: must be a URL such as redis://127.0.0.1:6379/0: %v", redactRedisError(err, raw))
	}
	return opts, nil
}

// redactRedisError keeps a password that may be in the URL out of an error message.
func redactRedisError(err error, raw string) string {
	msg := err.Error()
	if i := strings.Index(raw, "@"); i > 0 {
		msg = strings.ReplaceAll(msg, raw[:i], "redis://…")
	}
	return msg
}

func newRedisBackend(cfg redisConfig) (*redisBackend, error) {
	opts, err := parseRedisURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	key := cfg.CodeKey
	canSeal := key != nil
	if !canSeal {
		// The Submitter needs a key even when no verify job is submitted; a throwaway one is
		// never used because verify jobs are refused below.
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	if opts.PoolSize == 0 && cfg.Conns > 0 {
		opts.PoolSize = cfg.Conns
	}
	rdb := redis.NewClient(opts)
	sub, err := queue.NewSubmitter(queue.SubmitterOptions{
		Redis:            rdb,
		DefaultRegion:    cfg.DefaultRegion,
		CodeKey:          key,
		CheckCallbackURL: cfg.CheckCallbackURL,
		Logger:           cfg.Logger,
	})
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("open redis backend: %w", err)
	}
	return &redisBackend{sub: sub, rdb: rdb, canSeal: canSeal, timeout: cfg.Timeout}, nil
}

// secretEnv reads a secret the way the gateway and worker do (internal/config): NAME, or the
// file named by NAME_FILE, which wins.
func secretEnv(getenv func(string) string, name string) (string, error) {
	v := strings.TrimSpace(getenv(name))
	if path := strings.TrimSpace(getenv(name + "_FILE")); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", usagef("%s_FILE: %v", name, err)
		}
		v = strings.TrimRight(string(b), "\r\n")
	}
	return v, nil
}

// codeKey returns the key that seals verification codes, derived exactly as the worker derives
// the key that opens them: queue.DeriveKey(VOICEQUEUE_CODE_KEY, "code"), or from
// VOICEQUEUE_PUSH_SECRET when no code key is set (each also from NAME_FILE). nil when neither is
// set.
func codeKey(getenv func(string) string) ([]byte, error) {
	for _, name := range []string{"VOICEQUEUE_CODE_KEY", "VOICEQUEUE_PUSH_SECRET"} {
		v, err := secretEnv(getenv, name)
		if err != nil {
			return nil, err
		}
		if v != "" {
			return queue.DeriveKey(v, "code"), nil
		}
	}
	return nil, nil
}

// callbackGuard vets callback URLs as the gateway does: private addresses are refused unless
// VOICEQUEUE_CALLBACK_ALLOW_CIDRS opens them.
func callbackGuard(getenv func(string) string) (*webhook.Guard, error) {
	var allow []netip.Prefix
	for _, s := range strings.Split(getenv("VOICEQUEUE_CALLBACK_ALLOW_CIDRS"), ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, usagef("VOICEQUEUE_CALLBACK_ALLOW_CIDRS: %q: %v", truncate(s, 50), err)
		}
		allow = append(allow, p)
	}
	return webhook.NewGuard(allow), nil
}

var errNoCodeKey = &queue.FieldError{Field: "kind", Message: "verify jobs through --redis need VOICEQUEUE_CODE_KEY or VOICEQUEUE_PUSH_SECRET, as the worker has (it opens the codes with a key derived from them)"}

// Submit implements backend.
func (b *redisBackend) Submit(ctx context.Context, req queue.Request) (queue.SubmitResult, error) {
	if req.Kind == string(queue.KindVerify) && !b.canSeal {
		return queue.SubmitResult{}, errNoCodeKey
	}
	res, err := b.sub.Submit(ctx, req)
	if err != nil {
		var fe *queue.FieldError
		if errors.As(err, &fe) {
			return queue.SubmitResult{}, fe
		}
		return queue.SubmitResult{}, fmt.Errorf("submit job: %w", err)
	}
	return res, nil
}

// SubmitBatch implements backend. Verify items are refused one by one when no code key is set.
func (b *redisBackend) SubmitBatch(ctx context.Context, reqs []queue.Request) ([]queue.BatchItem, error) {
	send, pos := reqs, []int(nil) // pos[i] = index in reqs of send[i] when some are held back
	var refused []queue.BatchItem
	if !b.canSeal {
		send = make([]queue.Request, 0, len(reqs))
		for i, r := range reqs {
			if r.Kind == string(queue.KindVerify) {
				refused = append(refused, queue.BatchItem{Index: i, Error: errNoCodeKey.Message, Field: errNoCodeKey.Field})
				continue
			}
			send = append(send, r)
			pos = append(pos, i)
		}
	}
	var items []queue.BatchItem
	if len(send) > 0 {
		if b.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, b.timeout)
			defer cancel()
		}
		var err error
		if items, err = b.sub.SubmitBatch(ctx, send); err != nil {
			return nil, fmt.Errorf("submit batch: %w", err)
		}
		if len(items) != len(send) {
			return nil, fmt.Errorf("submit batch: %d results for %d jobs", len(items), len(send))
		}
	}
	if pos != nil || refused != nil {
		for i := range items {
			items[i].Index = pos[items[i].Index]
		}
		items = append(items, refused...)
	}
	return orderItems(items, len(reqs))
}

// Status implements backend.
func (b *redisBackend) Status(ctx context.Context, id string) (json.RawMessage, error) {
	rec, err := b.sub.Status(ctx, id)
	if errors.Is(err, queue.ErrNotFound) {
		return nil, fmt.Errorf("get job %s: %w", id, errJobNotFound)
	}
	return rec, err
}

// Cancel implements backend.
func (b *redisBackend) Cancel(ctx context.Context, id string) (json.RawMessage, error) {
	rec, err := b.sub.Cancel(ctx, id)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return nil, fmt.Errorf("cancel job %s: %w", id, errJobNotFound)
	case errors.Is(err, queue.ErrAlreadyDispatched):
		return nil, fmt.Errorf("cancel job %s: %w", id, errAlreadyDispatched)
	}
	return rec, err
}

// Close implements backend: the Submitter first, then the Redis client it does not own.
func (b *redisBackend) Close() error {
	return errors.Join(b.sub.Close(), b.rdb.Close())
}
