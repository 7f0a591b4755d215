// Package ratelimit holds the call policies that every worker process shares through Redis:
// the account's global call rate, the concurrent-call cap, per-callee frequency caps, local-time
// calling windows and the back-off that follows provider feedback.
//
// Redis is the only authority. Every decision that two pods could race on is one Lua script,
// so it is atomic, and the scripts read Redis' own clock (TIME), so pods with skewed clocks never
// disagree. Every key lives under one hash tag per script ({…}, see keys.go) so the package
// works on Redis Cluster, and every key carries a TTL, so nothing outlives its use. When Redis
// cannot be reached the policies fail closed: they return an error wrapping ErrUnavailable and
// no call is placed.
//
// # Global rate: GCRA with priorities
//
// Limiter implements the generic cell rate algorithm (GCRA, as in go-redis/redis_rate). For a
// Limit of Rate r and Burst b, the emission interval is T = 1/r (rounded up to a microsecond,
// so rounding can only make the limiter stricter) and the tolerance is τ = (b−1)·T. Redis stores
// one number per key: the theoretical arrival time TAT, the instant at which the bucket is full
// again. With D = max(TAT, now) − now, the amount of schedule already handed out, a request is
// admitted when D ≤ τ and then TAT advances by T. Grants therefore come at most b at once and
// then one per T: in any window of length L there are at most ⌈(L+τ)/T⌉ of them, which for
// Burst 1 means strict spacing and never more than r calls in any one-second window. A larger
// burst lets the first second run over the cap by b−1, so keep Burst small for a hard cap.
//
// Priorities share the same bucket in two ways:
//
//   - Reserve. A lower priority must leave part of the tolerance to higher ones: it is admitted
//     only when D ≤ τ − ρ, where ρ is LimiterOptions.Reserve × Burst tokens (rounded up) for
//     PriorityLow and half of that for PriorityNormal, never more than b−1 tokens. PriorityHigh
//     uses the whole tolerance. With only bulk traffic the bucket settles at D ≈ τ − ρ and bulk
//     still gets one token every T, the full rate; a verify request arriving then finds ρ
//     tokens of headroom at once.
//   - Booking. Wait may book a slot in the future (TAT advances now, the caller sleeps until
//     the slot), so waiting workers never race each other and a slot is never lost to a late
//     timer. PriorityHigh may book as far ahead as its maxWait; lower priorities may book at
//     most one emission interval ahead and otherwise poll. A lower priority can thus push D to
//     at most τ − ρ + 2T, so a high-priority request waits at most 2T − ρ behind lower ones:
//     two emission intervals with Burst 1, one (or none) with a reserve of a token or more.
//
// A booked slot whose waiter gives up (its context ends) is forfeited, never handed back: the
// limiter errs on the side of fewer calls. An optional in-process x/time/rate limiter
// (LimiterOptions.LocalSmoothing) can sit in front to spare Redis when one process alone has
// used the whole budget; it only ever says no, it never grants a token on its own.
//
// # The worker's claim: Capacity
//
// The worker does not use Limiter and Slots one after the other: Capacity claims a token (by the
// same GCRA, with the same priorities and booking rules, at the rate Adaptive has set, less a
// margin for jitter) and a call slot together in one script, or neither. A
// process's lower-priority claims take turns, so waiting workers do not all run the script each
// time a token comes due. Capacity books the token and returns its instant (ClaimResult.Due)
// instead of sleeping, so the caller can do its own work meanwhile and send at the instant.
// Limiter, Slots and Adaptive stay the primitives: Slots.Release frees what Capacity took, and
// Adaptive.Decrease lowers the rate it enforces.
//
// # Concurrent calls
//
// Slots keeps one sorted set per key: member = holder (the job ID), score = lease expiry.
// Acquire drops expired leases, checks the count and adds the holder in one script; acquiring
// again with the same holder only renews its lease. The lease bounds how long a lost
// end-of-call push can hold capacity.
//
// # Per-callee caps
//
// CalleeLimiter keeps a sliding-window log per (group, callee): a sorted set of the calls made,
// member = holder (job ID and attempt), score = time. Check counts each configured window,
// and records the call only if every cap admits it, in one script. The callee's number appears
// in keys only as a keyed hash (HMAC-SHA256, truncated), never in clear.
//
// # Calling windows
//
// Window is a local wall-clock interval, e.g. 08:00–21:00. The callee's time zones come from
// the number (libphonenumber's time-zone map); when a number maps to several zones the window
// must be open in all of them at once, which is the conservative choice: nobody is called at
// night in any zone the number could be in. NextOpen handles DST transitions exactly.
//
// # Back-off on provider feedback
//
// Adaptive lowers an account's effective rate on a rate-class reply (multiplicative decrease,
// at most once per hold-off), keeps it there for a cool-down and then adds a step per interval
// until the configured cap is reached again (AIMD). The state is in Redis, so every pod slows
// down together, and its key expires when the rate is back at the cap.
package ratelimit
