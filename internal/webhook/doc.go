// Package webhook delivers a job's final record to its producer's callback_url,
// signed, without letting that URL reach internal addresses (SSRF).
//
// Three pieces, usable apart:
//
//   - Sign and Verify: an HMAC-SHA256 over "<unix seconds>.<raw body>", sent in
//     the SignatureHeader as "t=<unix seconds>,v1=<hex>" (several v1 entries
//     during key rotation). Producers verify with Verify or the recipe in
//     docs/webhooks.md.
//   - Guard: the URL policy. CheckURL is the cheap edge check (scheme, host,
//     userinfo, literal and ambiguous IP hosts, well-known internal names);
//     DialContext re-checks every resolved address just before connecting, so a
//     name that resolves (or re-binds) to an internal address is refused
//     without a packet being sent; HTTPClient combines both and re-checks each
//     redirect.
//   - Deliverer: the asynq handler for TaskType. One POST per attempt; 2xx is
//     done, 408/429/5xx/network errors retry with RetryDelay, other statuses and
//     refused addresses stop at once (asynq.SkipRetry).
//
// Delivery is at least once: a receiver should treat a repeated (job_id, state)
// as a duplicate.
package webhook
