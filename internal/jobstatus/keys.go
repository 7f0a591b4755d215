package jobstatus

import (
	"crypto/sha256"
	"encoding/hex"
)

// Every Redis key this package uses is built here.
//
//	<prefix>:{<job id>}:job        string: the job record (compact JSON, see record.go); TTL Retention
//	<prefix>:session:<session id>  string: job ID for a provider sessionId; TTL Retention
//	<prefix>:idem:<sha256(key)>    string: job ID for a producer idempotency key; TTL IdempotencyTTL
//
// The job key carries the hash tag {job id} so that any key added for a job later lands in the
// same Redis Cluster slot. Each script touches exactly one key, so the session and idempotency
// indexes (looked up by something other than the job ID) live in their own slots.
type keys struct{ prefix string }

func (k keys) job(id string) string { return k.prefix + ":{" + id + "}:job" }

func (k keys) session(sessionID string) string { return k.prefix + ":session:" + sessionID }

// idem hashes the producer's key: fixed length, no hash-tag braces, and nothing the producer put
// in it (an order number, a phone number) is readable in Redis.
func (k keys) idem(key string) string {
	sum := sha256.Sum256([]byte(key))
	return k.prefix + ":idem:" + hex.EncodeToString(sum[:16])
}
