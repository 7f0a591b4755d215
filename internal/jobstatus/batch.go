package jobstatus

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// CreateResult is the outcome of one record of CreateMany: what Create would have returned for it.
type CreateResult struct {
	Record  Record // as stored
	Created bool   // this call wrote it: the caller enqueues the job
	Err     error  // this record's error; Record and Created are zero with it
}

// CreateMany creates each of recs by Create's rules, with the same results, in at most two
// pipelined round trips for the whole batch instead of one or two per record: the idempotency
// keys are claimed first (one pipeline, sent only when some record has a key), then every record
// is written (one pipeline). Each job and each key has its own Cluster slot; a ClusterClient
// splits each pipeline by node and sends the parts concurrently.
//
// The results are in the order of recs, each with its own error: a bad record gets ErrInvalid
// and is not sent; a Redis failure fails the records whose commands it hit, and only those. When
// several records of a batch carry the same idempotency key, exactly one of them creates the job
// (normally the first) and the others return it with Created false, as if sent one by one.
func (s *Store) CreateMany(ctx context.Context, recs []Record) []CreateResult {
	results := make([]CreateResult, len(recs))
	type pending struct {
		i     int
		rec   Record
		first Event
		raw   string
	}
	work := make([]pending, 0, len(recs))
	var keyed []int // indexes into work of the records with an idempotency key
	for i, rec := range recs {
		first, err := s.prepareCreate(&rec)
		if err != nil {
			results[i].Err = fmt.Errorf("create job: %w", err)
			continue
		}
		if rec.IdempotencyKey != "" {
			keyed = append(keyed, len(work))
		}
		work = append(work, pending{i: i, rec: rec, first: first})
	}

	// Round trip 1: claim the idempotency keys.
	if len(keyed) > 0 {
		ttl := s.idemTTL.Milliseconds()
		cmds := evalMany(ctx, s.rdb, claimScript, len(keyed), func(k int) ([]string, []any) {
			p := &work[keyed[k]]
			return []string{s.keys.idem(p.rec.IdempotencyKey)}, []any{p.rec.ID, ttl}
		})
		for k, cmd := range cmds {
			p := &work[keyed[k]]
			id, err := cmd.Text()
			switch {
			case err != nil:
				results[p.i].Err = fmt.Errorf("create job: claim idempotency key: %w", err)
			case !validID(id):
				results[p.i].Err = fmt.Errorf("create job: idempotency index holds a bad job ID %q", id)
			default:
				p.rec.ID = id
			}
		}
	}

	// Round trip 2: write the records.
	send := make([]*pending, 0, len(work))
	for j := range work {
		p := &work[j]
		if results[p.i].Err != nil {
			continue
		}
		raw, err := encodeNew(p.rec, p.first)
		if err != nil {
			results[p.i].Err = fmt.Errorf("create job: %w", err)
			continue
		}
		p.raw = raw
		send = append(send, p)
	}
	retention := s.retention.Milliseconds()
	cmds := evalMany(ctx, s.rdb, createScript, len(send), func(k int) ([]string, []any) {
		return []string{s.keys.job(send[k].rec.ID)}, []any{send[k].raw, retention}
	})
	for k, cmd := range cmds {
		p := send[k]
		res, err := cmd.Slice()
		if err != nil {
			results[p.i].Err = fmt.Errorf("create job: %w", err)
			continue
		}
		out, created, err := createReply(p.rec, p.first, p.raw, res)
		if err != nil {
			results[p.i].Err = fmt.Errorf("create job: %w", err)
			continue
		}
		results[p.i] = CreateResult{Record: out, Created: created}
	}
	return results
}

// evalMany runs script n times in one pipeline, call(i) giving the keys and arguments of the
// i-th run, and returns the commands in order (each with its reply or error). Runs refused with
// NOSCRIPT (the first use on a server, or a node of a Cluster) are sent again with the script's
// source in a second pipeline: a refused run did not execute, so this never runs one twice.
func evalMany(ctx context.Context, rdb redis.UniversalClient, script *redis.Script, n int,
	call func(i int) (keys []string, args []any)) []*redis.Cmd {
	cmds := make([]*redis.Cmd, n)
	if n == 0 {
		return cmds
	}
	pipe := rdb.Pipeline()
	for i := range n {
		keys, args := call(i)
		cmds[i] = script.EvalSha(ctx, pipe, keys, args...)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	var retry []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) == 0 {
		return cmds
	}
	pipe = rdb.Pipeline()
	for _, i := range retry {
		keys, args := call(i)
		cmds[i] = script.Eval(ctx, pipe, keys, args...)
	}
	_, _ = pipe.Exec(ctx)
	return cmds
}
