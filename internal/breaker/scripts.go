package breaker

import "github.com/redis/go-redis/v9"

// allowScript reads the shared state and, when the breaker is half-open and the probe slot is
// free, takes the probe for the caller.
//
//	KEYS[1] open, KEYS[2] trip, KEYS[3] probe
//	ARGV[1] the caller's probe token
//	ARGV[2] the base cool-down in ms (when the trip key is gone)
//
// Returns {verdict, ttl_ms, cooldown_ms}: verdict 0 closed; 1 open, ttl = rest of the cool-down;
// 2 half-open and the probe is the caller's; 3 half-open and the probe is someone else's, ttl =
// until it can be taken again.
var allowScript = redis.NewScript(`
local cd = tonumber(redis.call('GET', KEYS[2]))
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  return {1, ttl, cd or tonumber(ARGV[2])}
end
if not cd then
  return {0, 0, 0}
end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', cd) then
  return {2, cd, cd}
end
local pttl = redis.call('PTTL', KEYS[3])
if pttl < 0 then pttl = cd end
return {3, pttl, cd}
`)

// tripScript opens the breaker: with the base cool-down from closed, with double the last
// cool-down (at most the maximum) from half-open. An open breaker is left as it is.
//
//	KEYS[1] open, KEYS[2] trip, KEYS[3] probe
//	ARGV[1] base cool-down ms, ARGV[2] maximum cool-down ms, ARGV[3] forgetAfter ms
//
// Returns {opened (1, or 0 when it was open already), ttl_ms, cooldown_ms}.
var tripScript = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
local cd = tonumber(redis.call('GET', KEYS[2]))
if ttl > 0 then
  return {0, ttl, cd or tonumber(ARGV[1])}
end
if cd then
  cd = math.min(cd * 2, tonumber(ARGV[2]))
else
  cd = tonumber(ARGV[1])
end
redis.call('SET', KEYS[1], cd, 'PX', cd)
redis.call('SET', KEYS[2], cd, 'PX', cd + tonumber(ARGV[3]))
redis.call('DEL', KEYS[3])
return {1, cd, cd}
`)

// closeScript closes the breaker after a successful probe, unless it is open again (another
// instance's probe failed meanwhile).
//
//	KEYS[1] open, KEYS[2] trip, KEYS[3] probe
//
// Returns {closed (1|0), ttl_ms of the open key when not closed}.
var closeScript = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  return {0, ttl}
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return {1, 0}
`)
