-- fail: the worker could not fill the chunk. Retry later (exponential backoff with jitter) or,
-- when terminal or out of attempts, move it to the dead-letter set.
-- KEYS[1..7] as in _lib.lua
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] local id   ARGV[7] token   ARGV[8] reason   ARGV[9] retryable (1/0)
-- ARGV[10] max attempts   ARGV[11] backoff base, us   ARGV[12] backoff cap, us
-- ARGV[13] jitter in [0, 1)   ARGV[14] worker id
-- Returns {attempts, dead-lettered (1/0), retry at (us, 0 when dead)}
local lid, token, reason = ARGV[6], ARGV[7], ARGV[8]
local retryable, max_attempts = ARGV[9] == '1', tonumber(ARGV[10])
local base, cap, jitter = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local err = check_lease(lid, token, ARGV[14])
if err then return err end
local ck = ckey(lid)
local attempts = tonumber(redis.call('HGET', ck, 'attempts') or '0')
unlease(lid)
redis.call('HSET', ck, 'err', reason)
if not retryable or attempts >= max_attempts then
  dead_letter(lid, reason)
  return {attempts, 1, 0}
end
local delay = math.min(cap, base * math.pow(2, attempts - 1))
delay = math.floor(delay / 2 + delay / 2 * jitter)
local at = NOW + delay
redis.call('HSET', ck, 'state', 'backoff')
redis.call('ZADD', K_DELAYED, I(at), lid)
redis.call('HINCRBY', K_STATS, 'retries', 1)
return {attempts, 0, I(at)}
