package jobstatus

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts. Each touches exactly one key (Cluster-safe), runs atomically, and uses only
// GET/SET and cjson, which both Redis and miniredis provide. Numbers in the stored JSON pass
// through Lua doubles: they are integers well below 2^53 (unix milliseconds, counts).

// claimScript claims an idempotency key for a job ID, or returns the ID that already holds it.
//
// KEYS[1] idempotency index key
// ARGV[1] job ID to claim with
// ARGV[2] TTL in milliseconds
// Returns the job ID that holds the key (ARGV[1] when this call claimed it).
var claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
`)

// createScript writes a new record unless the job already exists.
//
// KEYS[1] job key
// ARGV[1] stored record (compact JSON)
// ARGV[2] retention in milliseconds
// Returns {1} when created (the caller has the record it sent), {0, existing record} otherwise.
var createScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return {0, v} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
`)

// luaCommon is shared by the state-changing scripts: ranks and the event appender.
var luaCommon = `
local rank = {queued=0, scheduled=0, dispatching=1, calling=2, ringing=3, answered=4}
local function rk(s) return rank[s] or 5 end
local function addEvent(r, st, at, att, sidx, src, detail)
  local e = r.e
  e[#e+1] = st .. '|' .. tostring(at - r.c) .. '|' .. (att > 0 and tostring(att) or '') .. '|' ..
    (sidx > 0 and tostring(sidx) or '') .. '|' .. src .. '|' .. detail
  if #e > ` + strconv.Itoa(maxEvents) + ` then table.remove(e, 2) end
end
`

// transitionScript applies one Transition (see Store.Transition for the rules).
//
// KEYS[1]  job key
// ARGV[1]  target state
// ARGV[2]  event time, unix ms
// ARGV[3]  source
// ARGV[4]  attempt (0 = none)
// ARGV[5]  sessionId ("" = none)
// ARGV[6]  detail
// ARGV[7]  From states, space-separated ("" = no From guard)
// ARGV[8]  CDR in stored form ("" = none)
// ARGV[9]  digits ("" = none)
// ARGV[10] now, unix ms (updated time)
// ARGV[11] retention in milliseconds
// ARGV[12] target state instead of ARGV[1] when the job is answered ("" = none)
// ARGV[13] detail instead of ARGV[6] when ARGV[12] is used
// ARGV[14] "1": refuse an attempt (ARGV[4]) lower than the record's attempts as stale
// ARGV[15] "1": always return the record; "0": only when the job became final ("" otherwise)
// Returns {status, record, changed (0/1), state changed (0/1), previous state, target state} with
// status one of "ok", "conflict" (From guard failed), "stale" (a sessionId that is not the job's
// current one), "oldattempt" (ARGV[14] refused an earlier attempt); the target state is ARGV[1]
// or ARGV[12], whichever applied. {"notfound"} when the job does not exist.
var transitionScript = redis.NewScript(luaCommon + `
local raw = redis.call('GET', KEYS[1])
if not raw then return {'notfound'} end
local full = ARGV[15] == '1'
local rawOut = full and raw or ''
local r = cjson.decode(raw)
local to, at, src, att, sess = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), ARGV[5]
local detail, from, cdr, digits = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local cur = r.s
if ARGV[14] == '1' and att < (r.a or 0) then return {'oldattempt', rawOut, 0, 0, cur, to} end
if ARGV[12] ~= '' and cur == 'answered' then to = ARGV[12]; detail = ARGV[13] end
if from ~= '' then
  local ok = false
  for st in string.gmatch(from, '%S+') do if st == cur then ok = true end end
  if not ok then return {'conflict', rawOut, 0, 0, cur, to} end
end
local changed = false
local sidx = 0
if sess ~= '' then
  local ss = r.ss or {}
  for i = 1, #ss do if ss[i] == sess then sidx = i end end
  local si = r.si or 0
  if sidx == 0 then
    if si ~= 0 then return {'stale', rawOut, 0, 0, cur, to} end
    ss[#ss+1] = sess
    r.ss = ss
    sidx = #ss
    r.si = sidx
    changed = true
  elseif sidx ~= si then
    return {'stale', rawOut, 0, 0, cur, to}
  end
end
local applies
if from ~= '' then applies = (to ~= cur)
elseif to == cur then applies = false
elseif cur == 'unknown' then applies = rk(to) >= 2
elseif rk(cur) == 5 then applies = false
else applies = rk(to) > rk(cur) end
if applies then
  r.s = to
  addEvent(r, to, at, att, sidx, src, detail)
  if rk(to) == 5 and detail ~= '' then r.r = detail else r.r = nil end
  if cur == 'dispatching' then r.dm = nil; r.dt = nil; r.dk = nil end
  if from ~= '' and rk(to) <= 1 then r.si = nil; r.cdr = nil; r.d = nil end
  changed = true
end
if att > (r.a or 0) then r.a = att; changed = true end
if cdr ~= '' and r.cdr == nil then r.cdr = cjson.decode(cdr); changed = true end
if digits ~= '' and r.d == nil then r.d = digits; changed = true end
if not changed then return {'ok', rawOut, 0, 0, cur, to} end
r.u = tonumber(ARGV[10])
local out = cjson.encode(r)
redis.call('SET', KEYS[1], out, 'PX', ARGV[11])
local final = applies and rk(to) == 5 and (rk(cur) ~= 5 or cur == 'unknown')
if not full and not final then out = '' end
return {'ok', out, 1, applies and 1 or 0, cur, to}
`)

// beginDialScript records a dial before the provider request leaves (see Store.BeginDial).
//
// KEYS[1] job key
// ARGV[1] attempt (≥ 1), or 0 for the record's attempts + 1
// ARGV[2] dial time, unix ms
// ARGV[3] now, unix ms (updated time)
// ARGV[4] retention in milliseconds
// ARGV[5] the caller's dial token, or "" (see Store.BeginDialAs)
// Returns {status, record}: "granted" (recorded, dial now), "dialled" (a dial is open or the call
// exists: do not dial), "conflict" (the state allows no dial); {"notfound"} when the job does not
// exist.
var beginDialScript = redis.NewScript(luaCommon + `
local raw = redis.call('GET', KEYS[1])
if not raw then return {'notfound'} end
local r = cjson.decode(raw)
local att, at, tok = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[5]
if att == 0 then att = (r.a or 0) + 1 end
local cur = r.s
if cur == 'dispatching' and r.dm and tok ~= '' and r.dk == tok then
  return {'granted', raw} -- the same caller asking again: its open dial is still its own
end
if (cur == 'dispatching' and r.dm) or cur == 'calling' or cur == 'ringing' or cur == 'answered' then
  return {'dialled', raw}
end
if rk(cur) > 1 then return {'conflict', raw} end
if cur ~= 'dispatching' then
  r.s = 'dispatching'
  addEvent(r, 'dispatching', at, att, 0, 'worker', 'dial')
end
r.dm = att
r.dt = at
if tok ~= '' then r.dk = tok else r.dk = nil end
if att > (r.a or 0) then r.a = att end
r.u = tonumber(ARGV[3])
local out = cjson.encode(r)
redis.call('SET', KEYS[1], out, 'PX', ARGV[4])
return {'granted', out}
`)
