-- requeue_dead: give dead-lettered chunks a fresh start (attempts reset).
-- KEYS[1..7] as in _lib.lua
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] "1" to requeue every dead chunk (up to ARGV[7]), else ARGV[8..] are local ids
-- ARGV[7] limit
-- Returns the number of chunks requeued
local lids
if ARGV[6] == '1' then
  lids = redis.call('ZRANGE', K_DEAD, 0, tonumber(ARGV[7]) - 1)
else
  lids = {}
  for i = 8, #ARGV do lids[#lids + 1] = ARGV[i] end
end
local n = 0
for _, lid in ipairs(lids) do
  local ck = ckey(lid)
  if redis.call('HGET', ck, 'state') == 'dead' then
    redis.call('ZREM', K_DEAD, lid)
    redis.call('HSET', ck, 'attempts', 0, 'err', '')
    -- Jobs still alive wait on it again; finished or expired ones let it go.
    for _, j in ipairs(redis.call('SMEMBERS', cjkey(lid))) do
      local st = redis.call('HGET', jkey(j), 'state')
      if st == 'running' or st == 'paused' or st == 'failed' then
        if redis.call('SADD', jpkey(j), lid) == 1 then redis.call('HINCRBY', jkey(j), 'failed', -1) end
        if st == 'failed' then
          redis.call('HSET', jkey(j), 'state', 'running', 'updated', I(NOW))
          redis.call('PERSIST', jkey(j))
        end
        publish_job(j)
      else
        redis.call('SREM', cjkey(lid), j)
      end
    end
    requeue(lid)
    n = n + 1
  end
end
if n > 0 then wake() end
return n
