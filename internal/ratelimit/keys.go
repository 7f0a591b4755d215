package ratelimit

import (
	"fmt"
	"strings"
)

// Every Redis key the package uses is built here. Each script touches the keys of one hash tag
// only ({…}: Redis Cluster hashes just the part inside the braces), so every script runs on a
// single Cluster slot. The per-account keys share the account's tag, so a future script may
// read the limiter and the back-off state together.
//
//	<prefix>{<key>}:gcra          string: GCRA theoretical arrival time, µs      (Limiter)
//	<prefix>{<key>}:slots         zset: holder → lease expiry, ms               (Slots)
//	<prefix>{<key>}:aimd          hash: rate after the last decrease, cool-down (Adaptive)
//	<prefix>callee:{<group>:<h>}  zset: holder → call time, ms; h = HMAC(number) (CalleeLimiter)
//
// Every key is given a TTL by the script that writes it; see each script.

// DefaultKeyPrefix starts every key unless an Options struct sets another prefix.
const DefaultKeyPrefix = "voicequeue:ratelimit:"

// maxNameLen bounds caller-supplied names in keys.
const maxNameLen = 200

func gcraKey(prefix, key string) string  { return prefix + "{" + key + "}:gcra" }
func slotsKey(prefix, key string) string { return prefix + "{" + key + "}:slots" }
func aimdKey(prefix, key string) string  { return prefix + "{" + key + "}:aimd" }

func calleeKey(prefix, group, numberHash string) string {
	return prefix + "callee:{" + group + ":" + numberHash + "}"
}

// checkName rejects names that would break the hash tag or bloat keys. Names are identifiers
// (an app key's ID, a kind group), never secrets and never phone numbers.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("ratelimit: empty %s", what)
	case len(s) > maxNameLen:
		return fmt.Errorf("ratelimit: %s longer than %d bytes", what, maxNameLen)
	case strings.ContainsAny(s, "{}"):
		return fmt.Errorf("ratelimit: %s %q contains a brace", what, s)
	}
	return nil
}

func prefixOrDefault(p string) string {
	if p == "" {
		return DefaultKeyPrefix
	}
	return p
}
