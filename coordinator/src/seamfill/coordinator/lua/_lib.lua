-- Shared prelude, prepended to every dataset script (scripts.py does the concatenation).
--
-- Calling convention of every dataset script:
--   KEYS[1] ready    KEYS[2] leases   KEYS[3] delayed  KEYS[4] parked
--   KEYS[5] dead     KEYS[6] token    KEYS[7] stats    KEYS[8..] script-specific
--   ARGV[1] key base of the dataset ("P{D}:")   ARGV[2] the dataset's concurrency cap (0 = none)
--   ARGV[3] job channel   ARGV[4] wake channel   ARGV[5] dataset name   ARGV[6..] script-specific
-- Chunk and job keys are built from the base, so they share the dataset's hash-tag slot.
-- Errors are raised as "SEAMFILL <ErrorClass> <message>" and mapped to seamfill errors in Python.
-- Every script validates and computes before its first write: Redis does not roll a script
-- back, so an error raised after a write would leave half a transition.
--
-- Time: NOW comes from Redis's own clock (TIME), never from the caller, so leases, backoff and
-- rate limits hold across replicas with skewed clocks. The stats hash may hold 'clock_offset_us'
-- (never set in production) so tests can move the engine's clock forward without sleeping.
--
-- Numbers: Lua holds doubles and redis.call formats numbers with %.14g, which would round
-- 16-digit microsecond timestamps; every number sent to Redis goes through I() first.

local B, CAP, JOBCH, WAKECH, DS = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local K_READY, K_LEASES, K_DELAYED, K_PARKED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_DEAD, K_TOKEN, K_STATS = KEYS[5], KEYS[6], KEYS[7]
local JOB_TTL = 7 * 86400
local PROGRESS_EVERY_US = 250000
local NOW
do
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
    + tonumber(redis.call('HGET', K_STATS, 'clock_offset_us') or '0')
end
local WOKE = false

local function I(n) return string.format('%d', n) end
local function fail(class, msg) return redis.error_reply('SEAMFILL ' .. class .. ' ' .. msg) end
local function ckey(lid) return B .. 'chunk:' .. lid end
local function cjkey(lid) return B .. 'cjobs:' .. lid end
local function jkey(j) return B .. 'job:' .. j end
local function jpkey(j) return B .. 'jpend:' .. j end

local function parse(m)
  local a, b = string.match(m, '^(%-?%d+):(%-?%d+)$')
  return tonumber(a), tonumber(b)
end

local function zrem_all(key, members)
  for i = 1, #members, 500 do
    redis.call('ZREM', key, unpack(members, i, math.min(i + 499, #members)))
  end
end

-- Add [s, e) to a coalesced coverage ZSET, merging every interval it overlaps or touches.
local function cov_add(key, s, e)
  if e <= s then return end
  local ns, ne, doomed, offset = s, e, {}, 0
  while true do
    local batch = redis.call('ZRANGEBYSCORE', key, I(s), '+inf', 'LIMIT', offset, 64)
    local stop = false
    for _, m in ipairs(batch) do
      local a, b = parse(m)
      if a > e then stop = true; break end
      doomed[#doomed + 1] = m
      if a < ns then ns = a end
      if b > ne then ne = b end
    end
    if stop or #batch < 64 then break end
    offset = offset + 64
  end
  zrem_all(key, doomed)
  redis.call('ZADD', key, I(ne), I(ns) .. ':' .. I(ne))
end

-- Remove [s, e) from a coverage ZSET, keeping the parts of cut intervals outside it.
local function cov_remove(key, s, e)
  if e <= s then return end
  local doomed, keep, offset = {}, {}, 0
  while true do
    local batch = redis.call('ZRANGEBYSCORE', key, '(' .. I(s), '+inf', 'LIMIT', offset, 64)
    local stop = false
    for _, m in ipairs(batch) do
      local a, b = parse(m)
      if a >= e then stop = true; break end
      doomed[#doomed + 1] = m
      if a < s then keep[#keep + 1] = {a, s} end
      if b > e then keep[#keep + 1] = {e, b} end
    end
    if stop or #batch < 64 then break end
    offset = offset + 64
  end
  zrem_all(key, doomed)
  for _, r in ipairs(keep) do redis.call('ZADD', key, I(r[2]), I(r[1]) .. ':' .. I(r[2])) end
end

-- Is [s, e) inside one covered interval? Coalesced, so it is the first one ending at or after e.
local function cov_covers(key, s, e)
  local m = redis.call('ZRANGEBYSCORE', key, I(e), '+inf', 'LIMIT', 0, 1)[1]
  if not m then return false end
  local a = parse(m)
  return a <= s
end

local function publish_job(j) redis.call('PUBLISH', JOBCH, DS .. ':' .. j) end

-- Tell waiting Acquire calls that the dataset has work (at most once per script run).
local function wake()
  if not WOKE then
    WOKE = true
    redis.call('PUBLISH', WAKECH, DS)
  end
end

-- A chunk's want: the coalesced, sorted ranges of its cell that some job still needs, kept in
-- the chunk hash as "a:b,c:d". Its fetch range (s, e) is the first of them: two gaps in one
-- cell are fetched one after the other (Complete queues the rest), never as their hull, which
-- would fetch the covered bars between them again.
local function want_parse(str)
  local out = {}
  for a, b in string.gmatch(str or '', '(%-?%d+):(%-?%d+)') do out[#out + 1] = {tonumber(a), tonumber(b)} end
  return out
end

local function want_str(w)
  local parts = {}
  for i, r in ipairs(w) do parts[i] = I(r[1]) .. ':' .. I(r[2]) end
  return table.concat(parts, ',')
end

-- The union of two range lists, coalesced and sorted.
local function want_union(a, b)
  local all = {}
  for _, r in ipairs(a) do all[#all + 1] = r end
  for _, r in ipairs(b) do all[#all + 1] = r end
  table.sort(all, function(x, y) return x[1] < y[1] end)
  local out = {}
  for _, r in ipairs(all) do
    local last = out[#out]
    if last and r[1] <= last[2] then
      if r[2] > last[2] then last[2] = r[2] end
    else
      out[#out + 1] = {r[1], r[2]}
    end
  end
  return out
end

-- The ranges of w outside [s, e).
local function want_minus(w, s, e)
  local out = {}
  for _, r in ipairs(w) do
    if r[1] < s then out[#out + 1] = {r[1], math.min(r[2], s)} end
    if r[2] > e then out[#out + 1] = {math.max(r[1], e), r[2]} end
  end
  return out
end

local function want_meets(w, s, e)
  for _, r in ipairs(w) do
    if r[1] < e and r[2] > s then return true end
  end
  return false
end

-- 'running' when a running job waits on the chunk (or no job does and nobody cancelled it:
-- an operator requeued it), 'paused' when only paused ones do, 'none' when nobody wants it.
local function jobs_mode(lid)
  if redis.call('HGET', ckey(lid), 'cancelled') then return 'none' end
  local jobs = redis.call('SMEMBERS', cjkey(lid))
  if #jobs == 0 then return 'running' end
  local mode = 'none'
  for _, j in ipairs(jobs) do
    local st = redis.call('HGET', jkey(j), 'state')
    if st == 'running' then return 'running' end
    if st == 'paused' then mode = 'paused' end
  end
  return mode
end

local function jobs_leased(lid, delta)
  for _, j in ipairs(redis.call('SMEMBERS', cjkey(lid))) do
    if redis.call('EXISTS', jkey(j)) == 1 then redis.call('HINCRBY', jkey(j), 'leased', delta) end
  end
end

local function drop_chunk(lid)
  redis.call('DEL', ckey(lid), cjkey(lid))
  redis.call('ZREM', K_READY, lid)
  redis.call('ZREM', K_DELAYED, lid)
  redis.call('ZREM', K_LEASES, lid)
  redis.call('ZREM', K_DEAD, lid)
  redis.call('SREM', K_PARKED, lid)
end

-- Finish job j when nothing of it is pending: done, or failed when a chunk was dead-lettered.
local function job_finish_check(j)
  if redis.call('SCARD', jpkey(j)) > 0 then return false end
  local st, planning = unpack(redis.call('HMGET', jkey(j), 'state', 'planning'))
  if planning then return false end
  if st ~= 'running' and st ~= 'paused' then return false end
  local failed = tonumber(redis.call('HGET', jkey(j), 'failed') or '0')
  redis.call('HSET', jkey(j), 'state', failed > 0 and 'failed' or 'done', 'updated', I(NOW))
  redis.call('EXPIRE', jkey(j), JOB_TTL)
  return true
end

-- Account chunk lid's end (outcome 'done' or 'dead') in job j. True when that finished the job.
local function job_settle(lid, j, outcome, rows, err)
  local jk = jkey(j)
  if redis.call('EXISTS', jk) == 0 then return false end
  if redis.call('SREM', jpkey(j), lid) == 1 then
    if outcome == 'done' then
      redis.call('HINCRBY', jk, 'done', 1)
      redis.call('HINCRBY', jk, 'rows', rows)
    else
      redis.call('HINCRBY', jk, 'failed', 1)
      redis.call('HSET', jk, 'err', err)
    end
  end
  redis.call('HSET', jk, 'updated', I(NOW))
  local finished = job_finish_check(j)
  -- Progress wakes watchers at most every PROGRESS_EVERY_US per job (every replica receives each
  -- message; watchers also look on their own every second); the job's end always does.
  if finished or NOW - tonumber(redis.call('HGET', jk, 'pub') or '0') >= PROGRESS_EVERY_US then
    redis.call('HSET', jk, 'pub', I(NOW))
    publish_job(j)
  end
  return finished
end

-- A chunk reached its end: account it in each waiting job.
-- Returns the ids of the jobs that finished because of it.
local function chunk_settle(lid, outcome, rows, err)
  local finished = {}
  for _, j in ipairs(redis.call('SMEMBERS', cjkey(lid))) do
    if job_settle(lid, j, outcome, rows, err) then finished[#finished + 1] = j end
  end
  return finished
end

-- Put a chunk that is no longer leased where it belongs: ready, parked, or gone.
local function requeue(lid)
  local mode = jobs_mode(lid)
  local ck = ckey(lid)
  if mode == 'running' then
    redis.call('HSET', ck, 'state', 'queued')
    redis.call('ZADD', K_READY, redis.call('HGET', ck, 'score'), lid)
    wake()
    return 'queued'
  elseif mode == 'paused' then
    redis.call('HSET', ck, 'state', 'parked')
    redis.call('SADD', K_PARKED, lid)
    return 'parked'
  end
  drop_chunk(lid)
  return 'dropped'
end

-- The chunk is no longer leased. On a capped dataset the freed slot wakes waiting workers
-- whenever work is ready (a worker refused at the cap waits for exactly this).
local function unlease(lid)
  redis.call('ZREM', K_LEASES, lid)
  jobs_leased(lid, -1)
  if CAP > 0 and redis.call('ZCARD', K_READY) > 0 then wake() end
end

local function dead_letter(lid, err)
  redis.call('HSET', ckey(lid), 'state', 'dead', 'err', err)
  redis.call('ZADD', K_DEAD, I(NOW), lid)
  redis.call('HINCRBY', K_STATS, 'dead', 1)
  return chunk_settle(lid, 'dead', 0, err)
end

-- Expired leases go back to the queue (or to the dead set after max_attempts grants).
local function reclaim(max_attempts, limit)
  local expired, dead, woke = 0, 0, false
  local due = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', '(' .. I(NOW), 'LIMIT', 0, limit)
  for _, lid in ipairs(due) do
    unlease(lid)
    expired = expired + 1
    redis.call('HINCRBY', K_STATS, 'lease_expiries', 1)
    local attempts = tonumber(redis.call('HGET', ckey(lid), 'attempts') or '0')
    if attempts >= max_attempts then
      dead_letter(lid, 'lease expired ' .. I(attempts) .. ' times: the worker died or hung')
      dead = dead + 1
    else
      redis.call('HSET', ckey(lid), 'err', 'lease expired')
      if requeue(lid) == 'queued' then woke = true end
    end
  end
  return expired, dead, woke
end

-- Chunks whose retry time has come go back to the queue.
local function promote(limit)
  local due = redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', I(NOW), 'LIMIT', 0, limit)
  local woke = false
  for _, lid in ipairs(due) do
    redis.call('ZREM', K_DELAYED, lid)
    if requeue(lid) == 'queued' then woke = true end
  end
  return #due, woke
end

-- Check that (lid, token) is the live lease of worker. Returns the error reply, or nil.
local function check_lease(lid, token, worker)
  local c = redis.call('HMGET', ckey(lid), 'state', 'token', 'deadline', 'worker')
  if not c[1] then
    return fail('LeaseLost', 'lease ' .. DS .. '/' .. lid .. ' is not leased (finished, cancelled or unknown):'
      .. ' stop work on it and do not complete it')
  end
  if c[1] ~= 'leased' or c[2] ~= token then
    return fail('LeaseLost', 'token ' .. token .. ' of lease ' .. DS .. '/' .. lid .. ' is stale: the chunk '
      .. 'was leased again; stop work on it')
  end
  if c[4] ~= worker then
    return fail('PermissionDenied', 'lease ' .. DS .. '/' .. lid .. ' was granted to another worker:'
      .. ' only the worker_id it was granted to may heartbeat, complete, fail or release it')
  end
  if tonumber(c[3]) < NOW then
    return fail('LeaseLost', 'lease ' .. DS .. '/' .. lid .. ' expired: heartbeat more often than the TTL')
  end
  return nil
end
