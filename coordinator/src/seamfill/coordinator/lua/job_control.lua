-- job_control: pause, resume or cancel a job.
-- KEYS[1..7] as in _lib.lua
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] job local id   ARGV[7] action: "pause", "resume" or "cancel"
-- Returns the job's new state. Errors: JobNotFound, JobNotRunning (state does not allow it).
local j, action = ARGV[6], ARGV[7]
local jk, jp = jkey(j), jpkey(j)
local st = redis.call('HGET', jk, 'state')
if not st then return fail('JobNotFound', 'job ' .. DS .. ':' .. j .. ' does not exist (or expired)') end
local function refuse(what)
  return fail('JobNotRunning', 'job ' .. DS .. ':' .. j .. ' is ' .. st .. ': only ' .. what)
end
if action == 'pause' then
  if st ~= 'running' then return refuse('a running job can be paused') end
  -- Queued chunks are parked lazily by Acquire; heartbeats tell holders to stop.
  redis.call('HSET', jk, 'state', 'paused', 'updated', I(NOW))
elseif action == 'resume' then
  if st ~= 'paused' then return refuse('a paused job can be resumed') end
  redis.call('HSET', jk, 'state', 'running', 'updated', I(NOW))
  local woke = false
  for _, lid in ipairs(redis.call('SMEMBERS', jp)) do
    if redis.call('HGET', ckey(lid), 'state') == 'parked' then
      redis.call('SREM', K_PARKED, lid)
      redis.call('HSET', ckey(lid), 'state', 'queued')
      redis.call('ZADD', K_READY, redis.call('HGET', ckey(lid), 'score'), lid)
      woke = true
    end
  end
  if woke then wake() end
elseif action == 'cancel' then
  if st ~= 'running' and st ~= 'paused' then return refuse('a running or paused job can be cancelled') end
  redis.call('HSET', jk, 'state', 'cancelled', 'updated', I(NOW), 'leased', 0)
  for _, lid in ipairs(redis.call('SMEMBERS', jp)) do
    redis.call('SREM', cjkey(lid), j)
    if redis.call('SCARD', cjkey(lid)) == 0 then
      local cs = redis.call('HGET', ckey(lid), 'state')
      if cs == 'leased' then
        redis.call('HSET', ckey(lid), 'cancelled', 1)
      elseif cs then
        drop_chunk(lid)
      end
    end
  end
  redis.call('DEL', jp)
  redis.call('EXPIRE', jk, JOB_TTL)
else
  return fail('InvalidArgument', 'action ' .. action .. ' is not pause, resume or cancel')
end
publish_job(j)
return redis.call('HGET', jk, 'state')
