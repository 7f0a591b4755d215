// Package jobstatus keeps the job record and its state machine in Redis: atomic, idempotent,
// never moving backwards. The gateway (API and provider pushes), the worker and the CLI share it.
//
// # States
//
//	queued / scheduled → dispatching → calling → ringing → answered → completed
//	and from any of these to a final state: completed no_answer busy rejected failed expired
//	canceled throttled unknown
//
// Ranks: queued = scheduled (0) < dispatching (1) < calling (2) < ringing (3) < answered (4) <
// final (5). Without a From guard a change applies only forwards; a final state never changes,
// except unknown ("the provider's reply never came"), which a later push or CDR resolves. Worker-
// controlled moves (a retry back to queued, a cancel, a redial) name the states they may start
// from (Transition.From). Store.Transition documents every rule; transition_test.go holds the
// whole from × to table, run on miniredis and on the real Redis.
//
// # Storage
//
// One Redis string per job, `<prefix>:{<job id>}:job`, holding compact JSON with short keys
// (record.go); a finished call with six events and a CDR takes about 730 bytes of MEMORY USAGE.
// Every change is one Lua script on that one key (read, decide, rewrite, refresh the TTL), so it
// is atomic and one round trip, and it runs unchanged on miniredis (GET/SET and cjson only). The
// sessionId → job index and the idempotency index are separate keys (they are looked up by
// something other than the job ID, so they cannot share its Cluster slot): the session index is
// written once (SET NX) in the same pipeline as the transition script, the idempotency key is
// claimed before the record is written (see Store.Create; Store.CreateMany does both steps for a
// whole batch in two pipelines). Everything expires: records after Options.Retention (refreshed on
// each change), the session index Retention after its call's first push, idempotency keys after
// Options.IdempotencyTTL. Times are kept to the millisecond.
//
// Store.Apply is Transition for callers that need the record only when the job became final (the
// push handler): the record is then neither sent back nor decoded on the other pushes.
//
// Events record state changes only. A CDR that arrives for a job already final attaches to
// Record.CDR without a state change and without an event; DTMF digits and a raised attempt count
// likewise change the record but add no event.
//
// # Dial guard
//
// Store.BeginDial is called by the worker right before the provider request. It records an open
// dial on the record (and moves the job to dispatching) in the same atomic step, so a task that
// comes back after a crash or a shutdown cut-off finds the open dial and is told AlreadyDialled:
// it must wait for the pushes (and end the job unknown after its own timeout) instead of calling
// again. The open dial closes when the dial's result is recorded by any Transition out of
// dispatching.
//
// # What is never stored
//
// No verification code: the record has no field for one and nothing here receives it. Record.To
// must be masked (+86138****0001); Create refuses a value with a run of more than six digits.
// Event.Detail is free text from the caller: it must not hold a phone number or a code.
package jobstatus
