-- ensure: plan a job's chunks; a chunk already planned is shared, never duplicated.
-- KEYS[1..7] as in _lib.lua; KEYS[8] coverage of the series; KEYS[9] jobs index
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] job local id   ARGV[7] symbol   ARGV[8] job start   ARGV[9] job end
-- ARGV[10] priority class (1..3)   ARGV[11] requested_by   ARGV[12] traceparent
-- ARGV[13..] triples (cell start, chunk start, chunk end), in the job's chunk order
-- Returns {chunks total, chunks newly queued, chunks shared with other jobs}
local K_COV, K_JOBS = KEYS[8], KEYS[9]
local j, sym, prio = ARGV[6], ARGV[7], tonumber(ARGV[10])
local jk, jp = jkey(j), jpkey(j)
redis.call('HSET', jk, 'sym', sym, 's', ARGV[8], 'e', ARGV[9], 'prio', ARGV[10],
  'state', 'running', 'total', 0, 'done', 0, 'failed', 0, 'leased', 0, 'rows', 0,
  'created', I(NOW), 'updated', I(NOW), 'by', ARGV[11], 'tp', ARGV[12], 'err', '')
redis.call('ZADD', K_JOBS, I(NOW), j)
local total, fresh, shared = 0, 0, 0
for i = 13, #ARGV, 3 do
  local cell, s, e = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if not cov_covers(K_COV, s, e) then
    local lid = sym .. '@' .. cell
    local ck = ckey(lid)
    -- Fair between jobs: a job's n-th chunk ranks with every other job's n-th chunk.
    local score = prio * 1e12 + total
    local c = redis.call('HMGET', ck, 'state', 's', 'e', 'score')
    local st = c[1]
    if not st then
      redis.call('HSET', ck, 'sym', sym, 'cell', cell, 's', I(s), 'e', I(e), 'state', 'queued',
        'score', I(score), 'attempts', 0, 'tp', ARGV[12], 'err', '')
      redis.call('ZADD', K_READY, I(score), lid)
      fresh = fresh + 1
    else
      shared = shared + 1
      local os, oe = tonumber(c[2]), tonumber(c[3])
      local ns, ne = math.min(os, s), math.max(oe, e)
      redis.call('HDEL', ck, 'cancelled')
      if st == 'leased' then
        -- A worker holds the old range: remember the wider want, Complete re-queues the rest.
        if ns < os or ne > oe then redis.call('HSET', ck, 'ws', I(ns), 'we', I(ne)) end
        redis.call('HINCRBY', jk, 'leased', 1)
      else
        redis.call('HSET', ck, 's', I(ns), 'e', I(ne))
      end
      if score < tonumber(c[4]) then redis.call('HSET', ck, 'score', I(score)) end
      if st == 'dead' then
        -- A new request gives a dead chunk a fresh start.
        redis.call('ZREM', K_DEAD, lid)
        redis.call('HSET', ck, 'attempts', 0, 'state', 'queued')
        redis.call('ZADD', K_READY, redis.call('HGET', ck, 'score'), lid)
        fresh = fresh + 1
      elseif st == 'parked' then
        redis.call('SREM', K_PARKED, lid)
        redis.call('HSET', ck, 'state', 'queued')
        redis.call('ZADD', K_READY, redis.call('HGET', ck, 'score'), lid)
        fresh = fresh + 1
      elseif st == 'queued' then
        redis.call('ZADD', K_READY, redis.call('HGET', ck, 'score'), lid)
      end
    end
    redis.call('SADD', cjkey(lid), j)
    redis.call('SADD', jp, lid)
    total = total + 1
  end
end
redis.call('HSET', jk, 'total', total)
if total == 0 then
  redis.call('HSET', jk, 'state', 'done')
  redis.call('EXPIRE', jk, JOB_TTL)
end
if fresh > 0 then redis.call('PUBLISH', WAKECH, DS) end
return {total, fresh, shared}
