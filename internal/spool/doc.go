// Package spool keeps provider pushes on local disk while Redis is unreachable, and replays them
// in order once it is back.
//
// The platform never re-sends a status push, so the gateway must not lose one because Redis is
// down. When recording a push fails, the gateway appends the push to the spool, which writes it
// and calls fsync before Append returns, and answers 200. When the spool is full, Append returns
// ErrFull and the gateway answers 503 (a CDR push is then re-sent by the platform; a status push
// is lost, and counted). A background replayer (Run) replays the spool once Redis is healthy.
//
// # Guarantees
//
//   - Durability: a record whose Append returned nil survives a process crash or power loss (it is
//     on disk after fsync). A record whose Append returned an error may or may not be replayed.
//   - Order: Replay applies records in the order their Appends took effect. Concurrent Appends
//     are ordered by the spool's lock.
//   - At-least-once apply: every durable record is applied until apply returns nil (or ErrSkip).
//     Within one process a record is never applied twice. Only a crash (or a failed write of the
//     acknowledgement) between apply returning nil and the fsync of its acknowledgement makes
//     the next Replay apply that same record again: at most one record per crash, the last one
//     applied.
//   - Exactly-once effect: at-least-once apply plus an idempotent apply. The gateway relies on
//     this: job-state transitions in jobstatus are idempotent and never move backwards, so
//     applying a push twice has the effect of applying it once.
//   - Torn writes: a record cut short by a crash, or followed by garbage, is detected by its
//     length and CRC when the spool is opened; it and anything after it in that segment are
//     dropped (logged, and counted as dropped_corrupt). Such a record was never acknowledged,
//     because its fsync had not returned.
//
// # On disk
//
// The directory holds segment files named <seq as 16 hex digits>.seg, an acknowledgement file
// "ack" and a lock file "LOCK" (flock: one process per directory). Appends go to the newest
// segment; a segment is sealed at SegmentBytes and a new one started; a segment is deleted once
// every record in it was replayed, and the newest one too when replay has caught up, so an empty
// spool takes no space.
//
// A record is
//
//	uint32 LE  n: length of the payload
//	uint32 LE  CRC-32C (Castagnoli) of the payload
//	payload:   version byte (1) | kind length byte | kind | int64 LE append time (Unix ns) | body
//
// The ack file has two 32-byte slots written alternately, each
//
//	uint64 LE generation | uint64 LE segment seq | uint64 LE offset | uint32 LE CRC-32C of the 24 bytes before | 4 bytes zero
//
// The valid slot with the higher generation is the replay position: everything before offset
// in that segment, and every segment before it, is done. A torn slot write leaves the other slot,
// one record older: that record is applied again, which the at-least-once contract allows.
package spool
