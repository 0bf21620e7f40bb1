-- acquire: reclaim expired leases, promote due retries, then grant up to max ready chunks.
-- KEYS[1..7] as in _lib.lua
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] ttl, microseconds   ARGV[7] max chunks   ARGV[8] worker id   ARGV[9] max attempts
-- ARGV[10] reclaim/promote batch limit   ARGV[11] random seed for the tokens' random part
-- Returns {expired, dead-lettered, grants, ready left, next retry due in us (-1: none)} where
-- each grant is
--   {local id, token, start, end, attempts, deadline, traceparent, last error, {job ids}}
-- A token is (grant counter * 2^20 + a random 20-bit part): it grows on every grant and cannot
-- be guessed from another one. "ready left" > 0 with fewer grants than asked means the dataset
-- is at its cap (or the scan bound was hit): the caller must not take it for empty.
local ttl, want = tonumber(ARGV[6]), tonumber(ARGV[7])
local worker, max_attempts, limit = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
math.randomseed(tonumber(ARGV[11]))
local expired, dead = reclaim(max_attempts, limit)
promote(limit)
if CAP > 0 then want = math.min(want, CAP - redis.call('ZCARD', K_LEASES)) end
local out, scanned = {}, 0
-- Bounded: chunks of paused or cancelled jobs met on the way are parked or dropped.
while #out < want and scanned < want + 200 do
  local top = redis.call('ZPOPMIN', K_READY, 1)
  if #top == 0 then break end
  scanned = scanned + 1
  local lid = top[1]
  local mode = jobs_mode(lid)
  local ck = ckey(lid)
  if mode == 'running' then
    local token = redis.call('INCR', K_TOKEN) * 1048576 + math.random(0, 1048575)
    local attempts = redis.call('HINCRBY', ck, 'attempts', 1)
    local deadline = NOW + ttl
    redis.call('HSET', ck, 'state', 'leased', 'token', I(token), 'worker', worker,
      'deadline', I(deadline), 'granted', I(NOW), 'pu', 0, 'pr', 0)
    redis.call('ZADD', K_LEASES, I(deadline), lid)
    jobs_leased(lid, 1)
    local c = redis.call('HMGET', ck, 's', 'e', 'tp', 'err')
    out[#out + 1] = {lid, I(token), c[1], c[2], I(attempts), I(deadline), c[3] or '', c[4] or '',
      redis.call('SMEMBERS', cjkey(lid))}
  elseif mode == 'paused' then
    redis.call('HSET', ck, 'state', 'parked')
    redis.call('SADD', K_PARKED, lid)
  else
    drop_chunk(lid)
  end
end
local due_in = -1
local d = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
if d[2] then due_in = math.max(0, tonumber(d[2]) - NOW) end
return {expired, dead, out, redis.call('ZCARD', K_READY), I(due_in)}
